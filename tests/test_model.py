from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from digits import DigitsClassifier
from digits.metrics import NO_CLASS, ClassAccuracy, class_labels
from digits.networks import MLP, ConvNet


def test_mlp_is_the_tutorials_network_by_default():
    network = MLP()
    linears = [layer for layer in network if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(64, 32), (32, 10)]
    assert any(isinstance(layer, nn.ReLU) for layer in network)
    assert not any(isinstance(layer, nn.Dropout) for layer in network)


def test_mlp_shapes_follow_its_arguments():
    network = MLP(num_features=16, num_classes=3, hidden_sizes=[20, 12], dropout=0.5)
    assert network(torch.randn(5, 16)).shape == (5, 3)
    assert sum(isinstance(layer, nn.Dropout) for layer in network) == 2


def test_mlp_flattens_images_as_they_come():
    with torch.random.fork_rng():  # seeded here, and the other tests' generator untouched
        torch.manual_seed(0)
        network = MLP(num_features=16, num_classes=3)
        images = torch.randn(5, 4, 4)
    flat = network(images.reshape(5, 16))
    assert torch.equal(network(images), flat)
    assert torch.equal(network(images.unsqueeze(1)), flat)  # (N, C, H, W), one channel
    # One sample, unbatched: a matrix-vector product, equal to rounding.
    assert torch.allclose(network(images[0].reshape(16)), flat[0], atol=1e-6)


@pytest.mark.parametrize(
    "shape",
    [(2, 8, 32), (2, 4, 8, 8), (2, 1, 8, 32), (2, 2, 16, 16), (2, 16, 16, 2), (2, 128), (128,)],
)
@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "torchscript"])
# Scripting is deprecated in torch 2.13 but still what a TorchScript user reaches for.
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_convnet_refuses_images_it_would_reshape_into_others(
    shape: tuple[int, ...], scripted: bool
):
    """256 features make a 16x16 square: 8x32 images, four 8x8 channels, two 16x16 ones
    or rows of 128 were read as 16x16 images without a word (or failed later, in the
    loss, for a batch size they changed)."""
    network = ConvNet(num_features=256)
    if scripted:
        network = torch.jit.script(network)
    for fine in ((2, 256), (2, 16, 16), (2, 1, 16, 16), (2, 16, 16, 1)):
        assert network(torch.zeros(fine)).shape == (2, 10)
    assert network(torch.zeros(256)).shape == (1, 10)  # one sample, unbatched
    with pytest.raises((ValueError, torch.jit.Error)) as refused:
        network(torch.zeros(shape))
    size = "x".join(str(side) for side in (shape[1:] if len(shape) > 1 else shape))
    assert (
        f"ConvNet reads images of one channel, 16x16 here (256 features), got {size}; "
        "the MLP reads any shape"
    ) in str(refused.value)


def test_convnet_reads_images_with_their_channel_last():
    """(N, 8, 8, 1), one-channel images as Keras and TensorFlow lay them out, was read
    before the shape check and then refused by it."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = ConvNet().eval()
        images = torch.rand(3, 8, 8)
    assert torch.equal(network(images[..., None]), network(images[:, None]))


def test_convnet_traces_without_a_warning_and_says_how_to_give_one_image():
    """Its shape check compared traced sizes (a TracerWarning on every TorchScript export),
    and an 8x8 image without its batch dimension was said to be "8"."""
    network = ConvNet().eval()  # as export.py traces it: dropout off
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace's own
        traced = torch.jit.trace(network, torch.zeros(2, 64))
    assert traced(torch.zeros(5, 64)).shape == (5, 10)
    for one_image, size in (((8, 8), "8"), ((8, 8, 1), "8x1")):
        with pytest.raises(ValueError) as refused:
            network(torch.zeros(one_image))
        assert str(refused.value) == (
            f"ConvNet reads images of one channel, 8x8 here (64 features), got {size} (one "
            "image? give it a batch dimension: image[None]); the MLP reads any shape"
        )


def test_convnet_says_it_reads_one_channel_square_images():
    """RGB 16x16 images are 768 features: "needs square images" left a stranger stuck."""
    with pytest.raises(ValueError) as refused:
        ConvNet(num_features=3 * 16 * 16)
    assert str(refused.value) == (
        "ConvNet reads square images of one channel, side x side features (64 for 8x8), "
        "got 768 features; the MLP reads any shape"
    )


def test_classifier_outputs_one_logit_per_class():
    model = DigitsClassifier(num_features=64, num_classes=10)
    assert model(torch.randn(7, 64)).shape == (7, 10)


def test_hyperparameters_are_saved_as_plain_values_for_reloading():
    model = DigitsClassifier(network=functools.partial(MLP, hidden_sizes=[16, 8]), lr=0.01)
    assert model.hparams.network == {
        "class_path": "digits.networks.MLP",
        "init_args": {"hidden_sizes": [16, 8]},
    }
    assert model.hparams.lr == 0.01
    rebuilt = DigitsClassifier(**model.hparams)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_convnet_reads_the_8x8_grid():
    network = ConvNet(num_features=64, num_classes=10, channels=4, hidden_size=8)
    assert network(torch.randn(5, 64)).shape == (5, 10)
    convolution = network.features[0]
    assert isinstance(convolution, nn.Conv2d) and convolution.kernel_size == (3, 3)


def test_loss_falls_and_a_small_batch_is_overfitted():
    torch.manual_seed(0)
    model = DigitsClassifier()
    features = torch.rand(32, 64) * 16
    targets = torch.arange(32) % 10
    optimizer = model.configure_optimizers()
    losses = []
    for step in range(300):
        optimizer.zero_grad()
        loss = model.training_step((features, targets), step)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10
    assert (model(features).argmax(dim=1) == targets).all()


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")  # no Trainer
def test_training_metrics_are_plain_accuracy_and_mean_loss():
    model = DigitsClassifier(num_features=2, num_classes=2)
    with torch.no_grad():
        model.network[0].weight.copy_(torch.tensor([[1.0, 0.0]] * 32))
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    targets = torch.tensor([0, 0, 1])
    logits = model(features)
    model.validation_step((features, targets), 0)
    expected_acc = (logits.argmax(dim=1) == targets).float().mean()
    scores = model.metrics["val0"].compute()
    assert scores["val/acc"] == pytest.approx(expected_acc.item())
    expected_loss = nn.functional.cross_entropy(logits, targets)
    assert scores["val/loss"] == pytest.approx(expected_loss.item(), rel=1e-6)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")  # no Trainer
def test_epoch_loss_counts_every_sample_once_however_the_batches_are_cut():
    torch.manual_seed(0)
    model = DigitsClassifier()
    features, targets = torch.randn(135, 64), torch.arange(135) % 10
    for index, rows in enumerate((slice(0, 128), slice(128, 135))):  # as validation cuts it
        model.validation_step((features[rows], targets[rows]), index)
    expected = nn.functional.cross_entropy(model(features), targets)
    assert model.metrics["val0"]["loss"].compute() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")  # no Trainer
def test_a_target_may_be_a_distribution_and_accuracy_counts_only_one_class_targets():
    """Outlier exposure is data: a non-digit's target spreads over the classes."""
    torch.manual_seed(0)
    model = DigitsClassifier(num_features=4, num_classes=4)
    features = torch.randn(3, 4)
    spread = [0.125] * 4  # the uniform distribution times a weight of 0.5
    targets = torch.tensor([[0.0, 1.0, 0.0, 0.0], spread, [1.0, 0.0, 0.0, 0.0]])
    model.validation_step((features, targets), 0)
    logits = model(features)
    scores = model.metrics["val0"].compute()
    log_p = logits.log_softmax(dim=1)
    expected_loss = (-log_p[0, 1] - 0.5 * log_p[1].mean() - log_p[2, 0]) / 3
    assert scores["val/loss"] == pytest.approx(expected_loss.item(), rel=1e-5)
    right = (logits[[0, 2]].argmax(dim=1) == torch.tensor([1, 0])).float().mean()
    assert scores["val/acc"] == pytest.approx(right.item())


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0, 10.0, 25.0])
def test_a_spread_target_has_no_class_whatever_its_weight(weight: float):
    """A non-digit's target is the uniform distribution times its weight: at 10 or more,
    each class gets 1 or more, which is no reason to call it a 0."""
    spread = torch.full((2, 10), weight / 10)
    one_hot = torch.nn.functional.one_hot(torch.tensor([3, 7]), 10).float()
    labels = class_labels(torch.cat([spread, one_hot]))
    assert labels.tolist() == [NO_CLASS, NO_CLASS, 3, 7]


def test_class_accuracy_is_torchmetrics_micro_accuracy_leaving_out_images_of_no_class():
    torch.manual_seed(0)
    ours = ClassAccuracy()
    theirs = MulticlassAccuracy(10, average="micro", ignore_index=NO_CLASS)
    for size in (37, 128, 5):  # batches of different sizes, a third of them of no class
        logits = torch.randn(size, 10)
        targets = torch.randint(0, 10, (size,))
        targets[torch.rand(size) < 1 / 3] = NO_CLASS
        targets[:3] = logits[:3].argmax(dim=1)  # some right
        ours.update(logits, targets)
        theirs.update(logits, targets)
    assert ours.compute().item() == pytest.approx(theirs.compute().item(), abs=1e-7)
    assert 0 < ours.compute().item() < 1
    nothing_counted = torch.full((4,), NO_CLASS)
    ours, theirs = ClassAccuracy(), MulticlassAccuracy(10, average="micro", ignore_index=NO_CLASS)
    ours.update(torch.randn(4, 10), nothing_counted)
    theirs.update(torch.randn(4, 10), nothing_counted)
    assert ours.compute().item() == theirs.compute().item() == 0


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`:UserWarning")  # no Trainer
def test_each_further_evaluation_set_is_scored_under_its_own_name():
    model = DigitsClassifier(eval_sets=["drawn"])
    features, targets = torch.randn(6, 64), torch.arange(6)
    model.validation_step((features, targets), 0, dataloader_idx=1)
    assert not model.metrics["val0"]["acc"].update_called
    assert set(model.metrics["val1"].compute()) == {"val/drawn_acc", "val/drawn_loss"}
    assert model.prefix("test", 1) == "test/drawn_" and model.prefix("test") == "test/"


def test_predict_step_gives_the_digit_and_its_probability():
    model = DigitsClassifier()
    features = torch.randn(4, 64)
    prediction = model.predict_step((features, torch.zeros(4, dtype=torch.long)), 0)
    probabilities = model(features).softmax(dim=1)
    assert torch.equal(prediction["digit"], probabilities.argmax(dim=1))
    assert torch.allclose(prediction["probability"], probabilities.max(dim=1).values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"network": functools.partial(MLP, hidden_sizes=[])}, "hidden_sizes"),
        ({"network": functools.partial(MLP, hidden_sizes=[32, 0])}, "hidden_sizes"),
        ({"network": functools.partial(MLP, dropout=1.0)}, "dropout"),
        ({"network": functools.partial(ConvNet, channels=0)}, "channels"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_values_are_refused_with_their_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsClassifier(**kwargs)
