"""Step 1, the data set: scikit-learn's 8x8 digits as a LightningDataModule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

from digits.batching import BatchTensorDataset, EpochShuffleSampler, keep_batch, shift_images
from digits.dataset import DigitsSplits, Scale, Split, load

if TYPE_CHECKING:
    from digits.augment import Handwriting

# Which splits each of Lightning's stages reads.
STAGE_SPLITS: dict[str | None, tuple[Split, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}
# A different stream of random numbers for each step's augmentation than for its shifts.
AUGMENT_STREAM = 7_919
# And one for each DDP process: more steps apart than any run takes, so that process 0
# (and a single process) draws what it always did. Within 32 bits: torch's CPU generator
# reads only the low 32 bits of a seed.
RANK_STREAM = 1_000_000_007


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
        drawn: Also train on pen digits by 30 other writers, drawn as the page draws
            them (``digits.pen_digits``), and validate and test on drawn digits apart
            (``val/drawn_acc``, ``test/drawn_acc``). The splits of ``load_digits``
            stay as they are.
        dataset_repeats: With ``drawn``, how many times each ``load_digits`` training
            image is shown per epoch, so that the drawn digits (about four times as
            many) do not drown the data set's own.
        augment: Augmentation: deform each training image the way handwriting differs
            (slant, rotation, proportions, wobble, pen width; ``digits.augment``), at
            this strength (0 = off, 1 = the documented ranges). Validation and test
            images are never changed.
        outliers: Outlier exposure: add this many generated non-digits (scribbles,
            dashes, crosses, blobs drawn as the page draws; ``digits.scribbles``) to the
            training split, labelled "not a digit", so that the model learns to be
            unsure of what is unlike any digit.
        outlier_weight: The weight of a non-digit's loss. Its target is the uniform
            distribution scaled by this weight (``outlier_weight / 10`` for each class),
            so that its cross-entropy is the weight times the mean of ``-log p`` over
            the classes (Hendrycks et al., 2019, outlier exposure).
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
        drawn: bool = False,
        dataset_repeats: int = 1,
        augment: float = 0.0,
        outliers: int = 0,
        outlier_weight: float = 0.5,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
        if not 0 <= shift < 4:
            raise ValueError(f"data.shift must be 0 to 3 pixels, got {shift}")
        if dataset_repeats < 1:
            raise ValueError(f"data.dataset_repeats must be at least 1, got {dataset_repeats}")
        if outliers < 0:
            raise ValueError(f"data.outliers must be 0 or more, got {outliers}")
        if outlier_weight < 0:
            raise ValueError(f"data.outlier_weight must be 0 or more, got {outlier_weight}")
        self.save_hyperparameters()
        self.splits = DigitsSplits(test_size, val_size, split_seed, scale, folds, fold)
        self.splits.indices  # noqa: B018  # milliseconds: find an impossible split now, not mid-run
        # What is used is imported where it is used: kornia only with augment.
        self.drawn = None
        if drawn:
            from digits.pen_digits import DrawnSplits

            self.drawn = DrawnSplits(test_size, val_size, split_seed)
        self.handwriting: Handwriting | None = None
        if augment != 0:  # Handwriting refuses a negative strength
            from digits.augment import Handwriting

            self.handwriting = Handwriting(augment)
        self.datasets: dict[str, BatchTensorDataset] = {}

    @property
    def num_features(self) -> int:
        """Pixels per image, read from the data so the model never hard-codes it."""
        return load()[0].shape[1]

    @property
    def num_classes(self) -> int:
        """Distinct labels in the data set."""
        return int(load()[1].max()) + 1

    @property
    def eval_sets(self) -> list[str]:
        """Names of the validation and test sets after the data set's own, in loader order."""
        return ["drawn"] if self.drawn is not None else []

    @property
    def train_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("train")

    @property
    def val_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("val")

    @property
    def test_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("test")

    @property
    def drawn_val_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("drawn_val")

    @property
    def drawn_test_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("drawn_test")

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
            if split == "train":
                features = np.concatenate([features] * self.hparams.dataset_repeats)
                labels = np.concatenate([labels] * self.hparams.dataset_repeats)
            if self.drawn is not None:
                drawn_pixels, drawn_labels = self.drawn.arrays(split)
                drawn_features = self.splits.scaling(drawn_pixels)
                if split == "train":
                    features = np.concatenate([features, drawn_features])
                    labels = np.concatenate([labels, drawn_labels])
                else:
                    self.datasets[f"drawn_{split}"] = _tensors(drawn_features, drawn_labels, device)
            if split == "train" and self.hparams.outliers > 0:
                features, labels = self._with_non_digits(features, labels)
            self.datasets[split] = _tensors(features, labels, device)

    def _with_non_digits(
        self, features: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The training images and generated non-digits, each with a distribution as target.

        A digit's target is its class (one-hot); a non-digit's the uniform distribution
        times ``outlier_weight`` (see the class's docstring).
        """
        from digits.scribbles import TRAINING_KINDS, TRAINING_SEED, non_digit_pixels

        non_digits = non_digit_pixels(self.hparams.outliers, TRAINING_SEED, TRAINING_KINDS)
        classes = self.num_classes
        targets = np.eye(classes, dtype=np.float32)[labels]
        uniform = np.full((len(non_digits), classes), self.hparams.outlier_weight / classes)
        return (
            np.concatenate([features, self.splits.scaling(non_digits)]),
            np.concatenate([targets, uniform.astype(np.float32)]),
        )

    def train_dataloader(self) -> DataLoader:
        # The order depends on --seed_everything (torch's initial seed, which it sets)
        # and the epoch, nothing else: a resumed run shuffles as the original did.
        dataset = self._dataset("train")
        return self._loader(dataset, EpochShuffleSampler(len(dataset), torch.initial_seed()))

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The data set's validation images, and with ``drawn`` the drawn ones second."""
        return self._evaluation_loaders("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._evaluation_loaders("test")

    def predict_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Deform and shift training images, on the device, a batch at a time.

        Seeded by the run's seed, the step and the process (under DDP each process
        deforms its own share of the batch its own way), so that a resumed run sees the
        same images as the original at every step.
        """
        augment, shift = self.hparams.augment, self.hparams.shift
        if (augment == 0 and shift == 0) or self.trainer is None or not self.trainer.training:
            return batch
        features, targets = batch
        step_seed = torch.initial_seed() * 1_000_003 + self.trainer.global_step
        step_seed += self.trainer.global_rank * RANK_STREAM
        if augment > 0:
            pixels = self._unscaled(features)
            # kornia draws from torch's global generator: seed it for this step alone.
            device = features.device
            with torch.random.fork_rng(
                [device] if device.type != "cpu" else [], device_type=device.type
            ):
                torch.manual_seed((step_seed + AUGMENT_STREAM) % 2**63)
                pixels = self.handwriting.to(device)(pixels)
            features = self._scaled(pixels)
        if shift > 0:
            generator = torch.Generator(features.device)
            generator.manual_seed(step_seed % 2**63)
            features = shift_images(features, shift, generator)
        return features, targets

    def _unscaled(self, features: torch.Tensor) -> torch.Tensor:
        """The network's inputs back in load_digits' 0..16, where ink means something."""
        scaling = self.splits.scaling
        return features * _on(scaling.std, features) + _on(scaling.mean, features)

    def _scaled(self, pixels: torch.Tensor) -> torch.Tensor:
        scaling = self.splits.scaling
        return (pixels - _on(scaling.mean, pixels)) / _on(scaling.std, pixels)

    def _dataset(self, split: str) -> BatchTensorDataset:
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

    def _evaluation_loaders(self, split: Split) -> DataLoader | list[DataLoader]:
        if self.drawn is None:
            return self._evaluation_loader(split)
        return [self._evaluation_loader(split), self._evaluation_loader(f"drawn_{split}")]

    def _evaluation_loader(self, split: str) -> DataLoader:
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


def _tensors(features: np.ndarray, labels: np.ndarray, device: torch.device) -> BatchTensorDataset:
    return BatchTensorDataset(
        torch.from_numpy(np.ascontiguousarray(features)).to(device),
        torch.from_numpy(np.ascontiguousarray(labels)).to(device),
    )


def _on(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device)
