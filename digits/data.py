"""Step 1, the data set: scikit-learn's 8x8 digits as a LightningDataModule."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

from digits.batching import BatchTensorDataset, EpochShuffleSampler, keep_batch, shift_images
from digits.dataset import DigitsSplits, Scale, Split, load

# Which splits each of Lightning's stages reads.
STAGE_SPLITS: dict[str | None, tuple[Split, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


class DigitsDataModule(L.LightningDataModule):
    """``load_digits`` split into train, validation and test, as tensors on the device.

    Args:
        batch_size: Samples per training batch (the tutorial's 128).
        test_size: Fraction of all images held out for testing (the tutorial's 25%).
        val_size: Fraction of the remaining images held out for validation, which picks
            the best checkpoint so that the test split is never used for a choice.
        split_seed: Seed of the stratified split, separate from the training seed so that
            models can be compared on the same split.
        scale: ``raw`` keeps the tutorial's 0..16 pixel values; ``standard`` subtracts the
            mean and divides by the standard deviation, both fitted on the training split;
            ``unit`` divides by 16, the same for every pixel, which keeps the image's
            shape for a convolution.
        num_workers: DataLoader worker processes. 0 is fastest here: the data is already
            in memory and a batch is a single indexing operation.
        shift: Augmentation: move each training image by up to this many pixels in each
            direction (0 = off). Validation and test images are never moved.
        folds: Cross-validation: cut the non-test images into this many stratified folds
            and validate on fold ``fold`` (``val_size`` is then unused). The test split
            is the same as without folds.
        fold: Which fold validates, 0 to ``folds - 1``.
    """

    def __init__(
        self,
        batch_size: int = 128,
        test_size: float = 0.25,
        val_size: float = 0.1,
        split_seed: int = 0,
        scale: Scale = "raw",
        num_workers: int = 0,
        shift: int = 0,
        folds: int | None = None,
        fold: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
        if not 0 <= shift < 4:
            raise ValueError(f"data.shift must be 0 to 3 pixels, got {shift}")
        self.save_hyperparameters()
        self.splits = DigitsSplits(test_size, val_size, split_seed, scale, folds, fold)
        self.splits.indices  # noqa: B018  # milliseconds: find an impossible split now, not mid-run
        self.datasets: dict[Split, BatchTensorDataset] = {}

    @property
    def num_features(self) -> int:
        """Pixels per image, read from the data so the model never hard-codes it."""
        return load()[0].shape[1]

    @property
    def num_classes(self) -> int:
        """Distinct labels in the data set."""
        return int(load()[1].max()) + 1

    @property
    def train_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("train")

    @property
    def val_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("val")

    @property
    def test_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("test")

    def setup(self, stage: str | None = None) -> None:
        """The splits the stage uses, as tensors on the training device, once each.

        A batch is then one index into them. Fitting reads only the training and
        validation images: the test split stays untouched until it is tested.
        """
        # Worker processes cannot share CUDA tensors, so with workers the data stays on the CPU.
        on_device = self.trainer is not None and self.hparams.num_workers == 0
        device = self.trainer.strategy.root_device if on_device else torch.device("cpu")
        for split in STAGE_SPLITS.get(stage, ("train", "val", "test")):
            if split in self.datasets:
                continue
            features, labels = self.splits.arrays(split)
            self.datasets[split] = BatchTensorDataset(
                torch.from_numpy(features).to(device), torch.from_numpy(labels).to(device)
            )

    def train_dataloader(self) -> DataLoader:
        # The order depends on --seed_everything (torch's initial seed, which it sets)
        # and the epoch, nothing else: a resumed run shuffles as the original did.
        dataset = self._dataset("train")
        return self._loader(dataset, EpochShuffleSampler(len(dataset), torch.initial_seed()))

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Shift training images, on the device, a batch at a time."""
        if self.hparams.shift == 0 or self.trainer is None or not self.trainer.training:
            return batch
        features, targets = batch
        # Seeded by the run's seed and the step: a resumed run shifts as the original.
        generator = torch.Generator(features.device)
        generator.manual_seed((torch.initial_seed() * 1_000_003 + self.trainer.global_step) % 2**63)
        return shift_images(features, self.hparams.shift, generator), targets

    def _dataset(self, split: Split) -> BatchTensorDataset:
        if split not in self.datasets:
            raise RuntimeError("call setup() before asking for a dataloader")
        return self.datasets[split]

    def _loader(self, dataset: BatchTensorDataset, sampler: Sampler | None) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            collate_fn=keep_batch,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def _evaluation_loader(self, split: Split) -> DataLoader:
        """Under DDP, each process evaluates its own share of the images, each image once.

        Lightning's default DistributedSampler repeats images to even out the shares
        (135 validation images over 2 processes would count one twice), so metrics
        would differ from a single-process run. Uneven shares are fine here: evaluation
        synchronises only the metric states, once per epoch.
        """
        dataset = self._dataset(split)
        world_size = self.trainer.world_size if self.trainer is not None else 1
        sampler = None
        if world_size > 1:
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return self._loader(dataset, sampler)
