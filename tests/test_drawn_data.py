"""Drawn digits in training, and the augmentation: what each image of each split is.

The drawn digits join the training split only; the data set's validation and test
splits stay as they were, and the drawn validation and test digits are loaders of their
own. Augmentation changes training batches, never an evaluation batch, and repeats
itself from the seed.
"""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from digits import DigitsClassifier, DigitsDataModule
from digits.dataset import DigitsSplits, load
from digits.extras import BatchTransform
from digits.people.augment import Handwriting, Shift
from digits.people.non_digits import NonDigits
from digits.people.pen_digits import DrawnSplits, PenDigits, read_pen_digits


def ready(**kwargs) -> DigitsDataModule:
    datamodule = DigitsDataModule(**kwargs)
    datamodule.setup()
    return datamodule


def test_non_digits_join_training_with_the_weighted_uniform_distribution_as_target():
    plain, exposed = ready(), ready(sources=[NonDigits(20, weight=0.4)])
    labels = plain.train_set.targets
    targets = exposed.train_set.targets
    assert targets.shape == (len(labels) + 20, 10) and targets.dtype == torch.float32
    assert torch.equal(targets[: len(labels)].argmax(dim=1), labels)
    assert torch.equal(targets[: len(labels)].sum(dim=1), torch.ones(len(labels)))
    assert torch.allclose(targets[len(labels) :], torch.full((20, 10), 0.04))
    assert torch.equal(exposed.train_set.features[: len(labels)], plain.train_set.features)
    assert torch.equal(exposed.val_set.targets, plain.val_set.targets)  # classes, as before


def test_drawn_digits_join_training_and_leave_the_data_sets_evaluation_alone():
    plain, drawn = ready(), ready(sources=[PenDigits()], repeats=2)
    drawn_splits = DrawnSplits()
    train_rows = len(drawn_splits.indices["train"])
    assert len(drawn.train_set) == 2 * len(plain.train_set) + train_rows
    for split in ("val_set", "test_set"):
        assert torch.equal(getattr(drawn, split).features, getattr(plain, split).features)
    assert len(drawn.eval_set("drawn", "val")) == len(drawn_splits.indices["val"])
    assert len(drawn.eval_set("drawn", "test")) == len(drawn_splits.indices["test"])
    assert drawn.eval_sets == ["drawn"] and plain.eval_sets == []
    assert len(drawn.val_dataloader()) == 2 and len(drawn.test_dataloader()) == 2
    assert not isinstance(plain.val_dataloader(), list)


def test_further_drawings_of_the_training_rows_are_other_writers_and_leave_evaluation_alone():
    splits = DigitsSplits()
    once, twice = PenDigits(), PenDigits(variants=2)
    pixels, labels = once.arrays("train", splits)
    more_pixels, more_labels = twice.arrays("train", splits)
    count = len(labels)
    assert len(more_labels) == 2 * count
    np.testing.assert_array_equal(more_pixels[:count], pixels)  # the rows as the page draws them
    np.testing.assert_array_equal(more_labels, np.concatenate([labels, labels]))
    # The further drawing of a row is another hand and another slant, not the same image...
    changed = np.abs(more_pixels[count:] - pixels).sum(axis=1) > 0
    assert changed.mean() > 0.95
    # ... of the same digit: the nearest drawing as the page draws it is mostly the same digit.
    from sklearn.neighbors import KNeighborsClassifier

    nearest = KNeighborsClassifier(3).fit(pixels, labels)
    assert (nearest.predict(more_pixels[count:]) == labels).mean() > 0.85
    np.testing.assert_array_equal(twice.arrays("train", splits)[0], more_pixels)  # repeatable
    for split in ("val", "test"):
        np.testing.assert_array_equal(twice.arrays(split, splits)[0], once.arrays(split, splits)[0])
    with pytest.raises(ValueError, match="variants must be at least 1"):
        PenDigits(variants=0)


def test_drawn_rows_are_split_disjoint_stratified_and_by_the_split_seed():
    labels = read_pen_digits()[1]
    indices = DrawnSplits().indices
    rows = np.concatenate(list(indices.values()))
    assert len(rows) == len(set(rows.tolist())) == len(labels)
    for part in indices.values():
        shares = np.bincount(labels[part], minlength=10) / len(part)
        np.testing.assert_allclose(shares, np.bincount(labels) / len(labels), atol=0.01)
    assert not np.array_equal(DrawnSplits(split_seed=1).indices["test"], indices["test"])


def test_drawn_training_images_are_scaled_as_the_data_sets():
    datamodule = ready(sources=[PenDigits()], scale="unit")
    features = datamodule.train_set.features
    assert features.min() >= 0 and features.max() <= 1
    drawn_pixels, _ = DrawnSplits().arrays("train")
    np.testing.assert_allclose(features[-len(drawn_pixels) :].numpy(), drawn_pixels / 16)


class Batches(L.Callback):
    """The batches the model received, after the data module's on-device changes."""

    def __init__(self) -> None:
        self.train: list[torch.Tensor] = []
        self.val: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train.append(batch[0].clone())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val.append(batch[0].clone())


def batches_seen(seed: int, trainer_args: dict | None = None, **data) -> Batches:
    """Three training steps and two validation batches; ``trainer_args`` change the trainer."""
    L.seed_everything(seed, verbose=False)
    batches = Batches()
    settings = {"max_steps": 3, "limit_val_batches": 2, "val_check_interval": 3}
    trainer = L.Trainer(
        **{**settings, **(trainer_args or {})},
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[batches],
    )
    trainer.fit(DigitsClassifier(), datamodule=DigitsDataModule(**data))
    return batches


def test_augmentation_changes_training_images_only_and_repeats_from_the_seed():
    plain = batches_seen(0)
    augmented = batches_seen(0, transforms=[Handwriting(1.0)])
    again = batches_seen(0, transforms=[Handwriting(1.0)])
    other_seed = batches_seen(1, transforms=[Handwriting(1.0)])
    assert len(augmented.train) == 3 and len(augmented.val) == 2
    for before, after in zip(plain.train, augmented.train, strict=True):
        changed = (before != after).any(dim=1)
        assert changed.float().mean() > 0.9  # (nearly) every image, each its own way
    for before, after in zip(plain.val, augmented.val, strict=True):
        assert torch.equal(before, after)
    for first, second in zip(augmented.train, again.train, strict=True):
        assert torch.equal(first, second)
    assert not torch.equal(augmented.train[0], other_seed.train[0])


def test_augmented_digits_stay_digits_in_the_data_sets_format():
    pixels = torch.from_numpy(load()[0][:256].copy())
    deformed = Handwriting(1.0)(pixels, seed=0)
    assert deformed.shape == pixels.shape and deformed.dtype == pixels.dtype
    assert deformed.min() >= 0 and deformed.max() <= 16
    # The amount of ink stays about the same: a deformed digit, not a blot or a ghost.
    ratio = deformed.sum(dim=1) / pixels.sum(dim=1)
    assert 0.7 < ratio.median() < 1.3
    assert torch.equal(Handwriting(0.0)(pixels, seed=0), pixels)
    assert torch.equal(Handwriting(1.0)(pixels, seed=0), deformed)  # the seed decides it all


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Handwriting(-1.0), "Handwriting.strength"),
        (lambda: Handwriting(5.0), "Handwriting.strength"),
        (lambda: Shift(4), "Shift.pixels"),
        (lambda: NonDigits(0), "NonDigits.count"),
        (lambda: DigitsDataModule(repeats=0), "data.repeats"),
        # load_digits' border pixels barely vary: drawn ink there would become hundreds.
        (lambda: DigitsDataModule(scale="standard", sources=[NonDigits(10)]), "data.scale"),
    ],
)
def test_bad_values_are_refused_with_their_name(make, message):
    with pytest.raises(ValueError, match=message):
        make()


class SeedsSeen(BatchTransform):
    """Changes nothing; notes the seed it is given for each training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.seeds: list[int] = []

    def forward(self, pixels: torch.Tensor, seed: int) -> torch.Tensor:
        self.seeds.append(seed)
        return pixels


def test_every_batch_of_a_step_is_changed_its_own_way_under_gradient_accumulation():
    """Two batches summed into one optimizer step must not get the same random changes."""
    seeds_seen = SeedsSeen()
    batches = batches_seen(0, {"accumulate_grad_batches": 2}, transforms=[seeds_seen])
    assert len(batches.train) == 6  # three steps of two batches
    assert len(seeds_seen.seeds) == 6 and len(set(seeds_seen.seeds)) == 6


class TrainerAt:
    """What the data module reads of a trainer, in process ``global_rank`` of a DDP run,
    at its sixth training batch."""

    def __init__(self, global_rank: int) -> None:
        self.global_rank, self.training = global_rank, True
        self.fit_loop = SimpleNamespace(total_batch_idx=4)


@pytest.mark.parametrize("data", [{"transforms": [Handwriting(1.0)]}, {"transforms": [Shift(1)]}])
def test_each_ddp_process_deforms_its_images_its_own_way_and_reproducibly(data):
    """Two processes that drew the same numbers would deform their halves of a batch alike."""
    L.seed_everything(0, verbose=False)
    datamodule = ready(**data)
    batch = datamodule.train_set.features[:64], datamodule.train_set.targets[:64]

    def seen_by(rank: int) -> torch.Tensor:
        datamodule.trainer = TrainerAt(rank)
        return datamodule.on_after_batch_transfer(batch, 0)[0]

    first, second = seen_by(0), seen_by(1)
    assert not torch.equal(batch[0], first)
    assert (first != second).any(dim=1).float().mean() > 0.5
    assert torch.equal(seen_by(1), second) and torch.equal(seen_by(0), first)
