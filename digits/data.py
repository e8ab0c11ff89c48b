"""Step 1, the data set: scikit-learn's 8x8 digits as a LightningDataModule.

It holds the data set's split, scaling and loaders. What else a run trains or is scored
on comes from outside, by class path (``digits.extras``): more images (``sources``, such
as the pen digits) and random changes of the training batches (``transforms``, such as
one-pixel shifts). The module knows none of them by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from digits.batching import BatchTensorDataset, EpochShuffleSampler, keep_batch
from digits.dataset import DigitsSplits, Scale, Split, load, num_classes
from digits.extras import BatchTransform, DataSource, described
from digits.training.lightning_internals import evaluation_sampler, training_batches_before

# Which splits each of Lightning's stages reads (every split outside a stage).
EVERY_SPLIT: tuple[Split, ...] = ("train", "val", "test")
STAGE_SPLITS: dict[str | None, tuple[Split, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}
# A different stream of random numbers for each transform of a step.
TRANSFORM_STREAM = 7_919
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
            shape for a convolution. Not ``standard`` with ``sources``: the border
            pixels hardly vary in load_digits, and other images' ink there would be
            divided by almost 0.
        num_workers: DataLoader worker processes. 0 is fastest here: the data is already
            in memory and a batch is a single indexing operation.
        folds: Cross-validation: cut the non-test images into this many stratified folds
            and validate on fold ``fold`` (``val_size`` is then unused). The test split
            is the same as without folds.
        fold: Which fold validates, 0 to ``folds - 1``.
        repeats: How many times each ``load_digits`` training image is shown per epoch,
            so that the images of ``sources`` do not drown the data set's own.
        sources: More images (``digits.extras.DataSource``): their training images join
            the training split, and their validation and test sets are scored apart,
            under their names (``val/drawn_acc``). The data set's splits stay as they are.
        transforms: Random changes of every training batch, in order
            (``digits.extras.BatchTransform``). Validation and test images are never
            changed.
    """

    def __init__(
        self,
        batch_size: int = 128,
        test_size: float = 0.25,
        val_size: float = 0.1,
        split_seed: int = 0,
        scale: Scale = "raw",
        num_workers: int = 0,
        folds: int | None = None,
        fold: int = 0,
        repeats: int = 1,
        sources: Sequence[DataSource] = (),
        transforms: Sequence[BatchTransform] = (),
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
        if repeats < 1:
            raise ValueError(f"data.repeats must be at least 1, got {repeats}")
        if scale == "standard" and sources:
            raise ValueError(
                "data.scale standard divides each pixel by its spread in load_digits' "
                "training images, near 0 at the border, where other images have ink (it "
                "would become hundreds): use data.scale unit or raw with data.sources"
            )
        self.sources = list(sources)
        self.transforms = list(transforms)
        # save_hyperparameters records the locals: these as {class_path, init_args},
        # plain values a checkpoint can hold (LightningCLI records its config the same way).
        sources = [described(source) for source in self.sources]
        transforms = [described(transform) for transform in self.transforms]
        self.save_hyperparameters()
        self.splits = DigitsSplits(test_size, val_size, split_seed, scale, folds, fold)
        self.splits.indices  # noqa: B018  # milliseconds: find an impossible split now, not mid-run
        self.datasets: dict[str, BatchTensorDataset] = {}
        self._scaling_on: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}

    @property
    def num_features(self) -> int:
        """Pixels per image, read from the data so the model never hard-codes it."""
        return load()[0].shape[1]

    @property
    def num_classes(self) -> int:
        """Distinct labels in the data set."""
        return num_classes()

    @property
    def eval_sets(self) -> list[str]:
        """Names of the validation and test sets after the data set's own, in loader order."""
        return [source.name for source in self.sources if source.name]

    @property
    def train_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("train")

    @property
    def val_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("val")

    @property
    def test_set(self) -> BatchTensorDataset | None:
        return self.datasets.get("test")

    def eval_set(self, name: str, split: Split) -> BatchTensorDataset | None:
        """A source's own validation or test set, by its name."""
        return self.datasets.get(f"{name}_{split}")

    def prepare_data(self) -> None:
        """What the sources keep on disk for the stage's splits, made by one process per
        machine before the others set up (Lightning calls it so): they read it instead."""
        stage = self.trainer.state.fn if self.trainer is not None else None
        for split in STAGE_SPLITS.get(stage, EVERY_SPLIT):
            for source in self.sources:
                source.prepare(split, self.splits)

    def setup(self, stage: str | None = None) -> None:
        """The splits the stage uses, as tensors on the training device, once each.

        A batch is then one index into them. Fitting reads only the training and
        validation images: the test split stays untouched until it is tested.
        """
        # Worker processes cannot share CUDA tensors, so with workers the data stays on the CPU.
        on_device = self.trainer is not None and self.hparams.num_workers == 0
        device = self.trainer.strategy.root_device if on_device else torch.device("cpu")
        scaling = self.splits.scaling
        for split in STAGE_SPLITS.get(stage, EVERY_SPLIT):
            if split in self.datasets:
                continue
            features, targets = self.splits.arrays(split)
            if split == "train":
                repeats = self.hparams.repeats
                features = np.concatenate([features] * repeats)
                targets = np.concatenate([targets] * repeats)
            parts = [(features, targets)]
            for source in self.sources:
                given = source.arrays(split, self.splits)
                if given is None:
                    continue
                pixels, source_targets = given
                if split == "train":
                    parts.append((scaling(pixels), source_targets))
                elif source.name:
                    self.datasets[f"{source.name}_{split}"] = _tensors(
                        scaling(pixels), source_targets, device
                    )
            self.datasets[split] = _tensors(*self._joined(parts), device)

    def _joined(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Images and targets of several parts as one; if any target is a distribution, all are."""
        if any(targets.ndim == 2 for _, targets in parts):
            parts = [(features, self._distributions(targets)) for features, targets in parts]
        return (
            np.concatenate([features for features, _ in parts]),
            np.concatenate([targets for _, targets in parts]),
        )

    def _distributions(self, targets: np.ndarray) -> np.ndarray:
        """Class indices as one-hot rows (distributions stay as they are)."""
        if targets.ndim == 2:
            return targets.astype(np.float32)
        return np.eye(self.num_classes, dtype=np.float32)[targets]

    def train_dataloader(self) -> DataLoader:
        # The order depends on --seed_everything (torch's initial seed, which it sets)
        # and the epoch, nothing else: a resumed run shuffles as the original did.
        dataset = self._dataset("train")
        return self._loader(dataset, EpochShuffleSampler(len(dataset), torch.initial_seed()))

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The data set's validation images, then each source's own set."""
        return self._evaluation_loaders("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._evaluation_loaders("test")

    def predict_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Each transform changes the training batch, on the device, in 0..16 pixels.

        Seeded by the run's seed, the batch's number in the run, the process (under DDP
        each process changes its own share of the batch its own way) and the transform's
        place, so that a resumed run sees the same images as the original at every step,
        and the batches of one optimizer step (gradient accumulation) differ.
        """
        if not self.transforms or self.trainer is None or not self.trainer.training:
            return batch
        features, targets = batch
        batch_seed = torch.initial_seed() * 1_000_003 + training_batches_before(self.trainer)
        batch_seed += self.trainer.global_rank * RANK_STREAM
        pixels = self._unscaled(features)
        for place, transform in enumerate(self.transforms):
            seed = (batch_seed + place * TRANSFORM_STREAM) % 2**63
            pixels = transform.to(pixels.device)(pixels, seed)
        return self._scaled(pixels), targets

    def _unscaled(self, features: torch.Tensor) -> torch.Tensor:
        """The network's inputs back in load_digits' 0..16, where ink means something."""
        mean, std = self._scaling_like(features)
        return features * std + mean

    def _scaled(self, pixels: torch.Tensor) -> torch.Tensor:
        mean, std = self._scaling_like(pixels)
        return (pixels - mean) / std

    def _scaling_like(self, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The scaling's mean and std on ``tensor``'s device, copied there once.

        A copy from the host's memory at every step would make the host wait for the GPU.
        """
        key = (tensor.device, tensor.dtype)
        if key not in self._scaling_on:
            scaling = self.splits.scaling
            self._scaling_on[key] = tuple(
                torch.as_tensor(values, dtype=tensor.dtype, device=tensor.device)
                for values in (scaling.mean, scaling.std)
            )
        return self._scaling_on[key]

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
        if not self.eval_sets:
            return self._evaluation_loader(split)
        names = [split, *(f"{name}_{split}" for name in self.eval_sets)]
        return [self._evaluation_loader(name) for name in names]

    def _evaluation_loader(self, split: str) -> DataLoader:
        """Under DDP, each process evaluates its own share of the images, each image once.

        Lightning's default DistributedSampler repeats images to even out the shares
        (135 validation images over 2 processes would count one twice), so metrics
        would differ from a single-process run. Uneven shares are fine here: evaluation
        synchronises only the metric states, once per loader and epoch, at the end of
        each process's share (a process that is done first waits for the others).
        """
        dataset = self._dataset(split)
        world_size = self.trainer.world_size if self.trainer is not None else 1
        sampler = None
        if world_size > 1:
            sampler = evaluation_sampler(dataset, self.trainer)
        return self._loader(dataset, sampler)


def _tensors(features: np.ndarray, labels: np.ndarray, device: torch.device) -> BatchTensorDataset:
    return BatchTensorDataset(
        torch.from_numpy(np.ascontiguousarray(features)).to(device),
        torch.from_numpy(np.ascontiguousarray(labels)).to(device),
    )
