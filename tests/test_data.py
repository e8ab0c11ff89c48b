from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from digits import DigitsDataModule
from digits.batching import BatchTensorDataset, EpochShuffleSampler
from digits.dataset import DigitsSplits
from tests.conftest import needs_gpu


def ready(**kwargs) -> DigitsDataModule:
    datamodule = DigitsDataModule(**kwargs)
    datamodule.setup()
    return datamodule


def test_split_sizes_add_up_to_the_whole_data_set():
    split = DigitsDataModule().splits.indices
    sizes = {name: len(indices) for name, indices in split.items()}
    assert sizes == {"train": 1212, "val": 135, "test": 450}  # 25% test, 10% of the rest val
    assert sum(sizes.values()) == len(load_digits().target)


def test_splits_are_disjoint_and_cover_every_image():
    split = DigitsDataModule().splits.indices
    train, val, test = (set(split[name].tolist()) for name in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(range(len(load_digits().target)))


def assert_stratified(part: np.ndarray, whole: np.ndarray, labels: np.ndarray) -> None:
    """Each class's count in ``part`` is within one image of its exact proportional share."""
    exact = np.bincount(labels[whole], minlength=10) * len(part) / len(whole)
    assert np.abs(np.bincount(labels[part], minlength=10) - exact).max() <= 1


@pytest.mark.parametrize("split_seed", [0, 1, 7])
def test_splits_are_stratified(split_seed: int):
    labels = load_digits().target
    split = DigitsSplits(split_seed=split_seed).indices
    everything = np.arange(len(labels))
    assert_stratified(split["test"], everything, labels)
    rest = np.concatenate([split["train"], split["val"]])
    assert_stratified(split["val"], rest, labels)


def test_folds_validate_every_non_test_image_once_and_keep_the_test_split():
    labels = load_digits().target
    plain = DigitsSplits(split_seed=3).indices
    folds = [DigitsSplits(split_seed=3, folds=5, fold=fold).indices for fold in range(5)]
    for split in folds:
        assert np.array_equal(split["test"], plain["test"])
        assert not set(split["train"]) & set(split["val"])
        rest = np.concatenate([split["train"], split["val"]])
        assert sorted(rest) == sorted(np.concatenate([plain["train"], plain["val"]]))
        assert_stratified(split["val"], rest, labels)
    validated = np.concatenate([split["val"] for split in folds])
    assert sorted(validated) == sorted(np.concatenate([plain["train"], plain["val"]]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"folds": 1}, "data.folds must be at least 2"), ({"folds": 3, "fold": 3}, "data.fold")],
)
def test_bad_folds_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs)


def test_split_seed_decides_the_split_and_nothing_else():
    same_a, same_b = DigitsDataModule(split_seed=3), DigitsDataModule(split_seed=3)
    other = DigitsDataModule(split_seed=4)
    torch.manual_seed(123)  # the global seed must not matter for the split
    a = same_a.splits.indices
    torch.manual_seed(456)
    b = same_b.splits.indices
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert not np.array_equal(a["test"], other.splits.indices["test"])


def test_raw_scale_keeps_the_tutorials_pixel_values():
    datamodule = ready(scale="raw")
    images = load_digits().data
    train = datamodule.splits.indices["train"]
    assert torch.equal(
        datamodule.train_set.features, torch.tensor(images[train], dtype=torch.float32)
    )


def test_standard_scale_is_fitted_on_the_training_split_only():
    datamodule = ready(scale="standard")
    train_features = datamodule.train_set.features
    # Mean 0 and std 1 on train (pixels that never vary in training stay constant)...
    assert train_features.mean(dim=0).abs().max() < 1e-4
    varying = train_features.std(dim=0, unbiased=False) > 0
    assert torch.allclose(
        train_features.std(dim=0, unbiased=False)[varying], torch.tensor(1.0), atol=1e-4
    )
    # ... and the test split is transformed with the training statistics, not its own.
    images = load_digits().data.astype(np.float32)
    split = datamodule.splits.indices
    mean, std = images[split["train"]].mean(axis=0), images[split["train"]].std(axis=0)
    std[std == 0] = 1
    expected = torch.from_numpy((images[split["test"]] - mean) / std)
    assert torch.allclose(datamodule.test_set.features, expected, atol=1e-5)
    assert datamodule.test_set.features.mean(dim=0).abs().max() > 1e-3


def test_fitting_never_reads_the_test_split():
    datamodule = DigitsDataModule()
    datamodule.setup("fit")
    assert set(datamodule.datasets) == {"train", "val"} and datamodule.test_set is None
    datamodule.setup("test")
    assert datamodule.test_set is not None and len(datamodule.test_set) == 450


def test_tensors_are_float32_features_and_int64_labels():
    datamodule = ready()
    for dataset in (datamodule.train_set, datamodule.val_set, datamodule.test_set):
        assert dataset.features.dtype == torch.float32
        assert dataset.targets.dtype == torch.int64
        assert dataset.features.shape[1] == datamodule.num_features == 64
    assert datamodule.num_classes == 10


def test_a_batch_is_fetched_whole():
    datamodule = ready(batch_size=32)
    features, targets = next(iter(datamodule.val_dataloader()))
    assert features.shape == (32, 64) and targets.shape == (32,)
    assert torch.equal(features, datamodule.val_set.features[:32])


def test_training_batches_cover_the_training_split_once_per_epoch():
    datamodule = ready(batch_size=100)
    loader = datamodule.train_dataloader()
    targets = torch.cat([batch[1] for batch in loader])
    assert len(targets) == len(datamodule.train_set)
    assert torch.equal(targets.sort().values, datamodule.train_set.targets.sort().values)


@pytest.mark.gpu
@needs_gpu
def test_a_batch_is_fetched_on_the_gpu_without_waiting_for_it():
    datamodule = ready(batch_size=128)
    train = datamodule.train_set
    datamodule.datasets["train"] = BatchTensorDataset(train.features.cuda(), train.targets.cuda())
    loader = datamodule.train_dataloader()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any wait for the GPU raises
    try:
        batches = list(loader)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    targets = torch.cat([batch[1] for batch in batches]).cpu()
    assert all(batch[0].is_cuda for batch in batches)
    assert torch.equal(targets.sort().values, train.targets.sort().values)


def test_shuffle_depends_only_on_seed_and_epoch():
    sampler = EpochShuffleSampler(50, seed=7)
    sampler.set_epoch(3)
    epoch_three = list(sampler)
    sampler.set_epoch(4)
    assert list(sampler) != epoch_three
    fresh = EpochShuffleSampler(50, seed=7)
    fresh.set_epoch(3)
    assert list(fresh) == epoch_three
    assert sorted(epoch_three) == list(range(50))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"test_size": 1.0}, "test_size"),
        ({"val_size": 0.0}, "val_size"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_bad_values_are_refused_with_their_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs)
