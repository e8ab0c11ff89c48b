"""How a batch reaches the model: whole batches from in-memory tensors, in a resumable order.

The data set is 1,797 x 64 numbers, so it lives in memory as tensors; a fetch is one
indexing operation per batch instead of per-sample Python and ``default_collate``. The
order of training batches depends only on the seed and the epoch, so that a resumed run
repeats it without any saved random state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler


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
