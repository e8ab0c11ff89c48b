"""Step 1, the data set: scikit-learn's 8x8 digits as a LightningDataModule.

The whole data set is 1,797 x 64 numbers, so it lives in memory as tensors built once
in ``setup``; the ``Dataset`` hands out a whole batch per fetch, which keeps per-sample
Python (and ``default_collate``) out of the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, Sampler

Scale = Literal["raw", "standard", "unit"]


class BatchTensorDataset(Dataset):
    """Tensors indexed a batch at a time.

    The ``DataLoader`` calls ``__getitems__`` with the batch's indices, so one fetch is
    one fancy-indexing operation per tensor instead of a Python loop over samples.
    """

    def __init__(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        if len(features) != len(targets):
            raise ValueError(f"{len(features)} feature rows but {len(targets)} targets")
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        if self.features.device.type == "cuda":
            # The sampler's indices start on the host. Copied from page-locked memory
            # without blocking, they do not make the host wait for the GPU's previous
            # step; indexing a CUDA tensor with a CPU index would (a blocking copy).
            index = index.pin_memory().to(self.features.device, non_blocking=True)
        return self.features[index], self.targets[index]


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate function for batches that ``__getitems__`` already assembled.

    A module-level function rather than a lambda so that worker processes can pickle it.
    """
    return batch


class EpochShuffleSampler(Sampler[int]):
    """A random permutation per epoch that depends only on a base seed and the epoch.

    Lightning calls ``set_epoch`` before every epoch, so a run resumed at epoch ``k``
    sees exactly the order an uninterrupted run saw, with no generator state to save.
    """

    def __init__(self, num_samples: int, seed: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed((self.seed + self.epoch) % 2**63)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())


def shift_images(features: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Move each (N, side*side) image by its own random offset, filling with 0 (no ink)."""
    count, pixels = features.shape
    side = round(pixels**0.5)
    padded = F.pad(features.reshape(count, side, side), (shift, shift, shift, shift))
    offsets = torch.randint(
        0, 2 * shift + 1, (2, count, 1), generator=generator, device=features.device
    )
    grid = torch.arange(side, device=features.device)
    rows = (offsets[0] + grid)[:, :, None]  # (N, side, 1)
    cols = (offsets[1] + grid)[:, None, :]  # (N, 1, side)
    batch = torch.arange(count, device=features.device)[:, None, None]
    return padded[batch, rows, cols].reshape(count, pixels)


class DigitsDataModule(L.LightningDataModule):
    """scikit-learn's ``load_digits`` split into train, validation and test.

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
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be at least 1, got {batch_size}")
        for name, fraction in (("test_size", test_size), ("val_size", val_size)):
            if not 0 < fraction < 1:
                raise ValueError(f"data.{name} must be between 0 and 1, got {fraction}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be 0 or more, got {num_workers}")
        if not 0 <= shift < 4:
            raise ValueError(f"data.shift must be 0 to 3 pixels, got {shift}")
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.test_size = test_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.scale = scale
        self.num_workers = num_workers
        self.shift = shift
        self.train_set: BatchTensorDataset | None = None
        self.val_set: BatchTensorDataset | None = None
        self.test_set: BatchTensorDataset | None = None
        try:  # Splitting takes milliseconds: find an impossible split now, not mid-run.
            self.split_indices()
        except ValueError as error:
            raise ValueError(
                f"data.test_size={test_size} and data.val_size={val_size} leave a split too "
                f"small to hold every class ({error})"
            ) from None

    @cached_property
    def _raw(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = load_digits(return_X_y=True)
        return images.astype(np.float32), labels.astype(np.int64)

    @property
    def num_features(self) -> int:
        """Pixels per image, read from the data so the model never hard-codes it."""
        return self._raw[0].shape[1]

    @property
    def num_classes(self) -> int:
        """Distinct labels in the data set."""
        return len(np.unique(self._raw[1]))

    def split_indices(self) -> dict[str, np.ndarray]:
        """Row indices of each split into ``load_digits``, stratified by label.

        Public so that other models (the scikit-learn baselines) can be trained and
        scored on exactly the same images.
        """
        return self._split_indices

    @cached_property
    def _split_indices(self) -> dict[str, np.ndarray]:
        # Computed once: __init__ checks it, then setup and scaling read it.
        labels = self._raw[1]
        everything = np.arange(len(labels))
        rest, test = train_test_split(
            everything,
            test_size=self.test_size,
            stratify=labels,
            random_state=self.split_seed,
        )
        train, val = train_test_split(
            rest,
            test_size=self.val_size,
            stratify=labels[rest],
            random_state=self.split_seed,
        )
        return {"train": train, "val": val, "test": test}

    @cached_property
    def scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) that ``scale_images`` applies, fitted on the training split only."""
        images = self._raw[0]
        if self.scale == "standard":
            train_images = images[self.split_indices()["train"]]
            mean, std = train_images.mean(axis=0), train_images.std(axis=0)
            # Border pixels are always 0 in training: keep them at 0 instead of 0/0.
            std[std == 0] = 1.0
            return mean, std
        width = images.shape[1]
        spread = 16.0 if self.scale == "unit" else 1.0
        return np.zeros(width, dtype=np.float32), np.full(width, spread, dtype=np.float32)

    def scale_images(self, images: np.ndarray) -> np.ndarray:
        """Images in load_digits' 0..16 format, as the model sees them (float32)."""
        mean, std = self.scaling
        return np.ascontiguousarray((np.asarray(images, dtype=np.float32) - mean) / std)

    def raw_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's images in load_digits' 0..16 format, and labels: for pictures."""
        images, labels = self._raw
        indices = self.split_indices()[split]
        return images[indices], labels[indices]

    def split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's scaled images and labels as NumPy arrays, for scikit-learn."""
        images, labels = self.raw_split(split)
        return self.scale_images(images), labels

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        device = self._device()

        def tensors(split: str) -> BatchTensorDataset:
            features, labels = self.split_arrays(split)
            return BatchTensorDataset(
                torch.from_numpy(features).to(device), torch.from_numpy(labels).to(device)
            )

        self.train_set, self.val_set, self.test_set = (
            tensors("train"),
            tensors("val"),
            tensors("test"),
        )

    def _device(self) -> torch.device:
        """Where the model trains: the whole data set goes there once, not per batch.

        Worker processes cannot share CUDA tensors, so with workers it stays on the CPU.
        """
        if self.trainer is None or self.num_workers > 0:
            return torch.device("cpu")
        return self.trainer.strategy.root_device

    def _loader(self, dataset: BatchTensorDataset | None, sampler: Sampler | None) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        # The order depends on --seed_everything (torch's initial seed, which it sets)
        # and the epoch, nothing else: a resumed run shuffles as the original did.
        if self.train_set is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        sampler = EpochShuffleSampler(len(self.train_set), torch.initial_seed())
        return self._loader(self.train_set, sampler)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Shift training images, on the device, a batch at a time."""
        if self.shift == 0 or self.trainer is None or not self.trainer.training:
            return batch
        features, targets = batch
        # Seeded by the run's seed and the step: a resumed run shifts as the original.
        generator = torch.Generator(features.device)
        generator.manual_seed((torch.initial_seed() * 1_000_003 + self.trainer.global_step) % 2**63)
        return shift_images(features, self.shift, generator), targets

    def _evaluation_sampler(self, dataset: BatchTensorDataset | None) -> Sampler | None:
        """Under DDP, each process evaluates its own share of the images, each image once.

        Lightning's default DistributedSampler repeats images to even out the shares
        (135 validation images over 2 processes would count one twice), so metrics
        would differ from a single-process run. Uneven shares are fine here: evaluation
        synchronises only the metric states, once per epoch.
        """
        world_size = self.trainer.world_size if self.trainer is not None else 1
        if world_size < 2 or dataset is None:
            return None
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=world_size, rank=self.trainer.global_rank, shuffle=False
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self._evaluation_sampler(self.val_set))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self._evaluation_sampler(self.test_set))

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self._evaluation_sampler(self.test_set))
