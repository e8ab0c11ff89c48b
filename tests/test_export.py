"""Exports load without Lightning and give the checkpoint's outputs on the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from digits.dataset import DigitsSplits
from digits.export import main
from digits.model import DigitsClassifier


@pytest.fixture(scope="module")
def expected(trained: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw 0..16 test images and the checkpoint's logits for them."""
    model = DigitsClassifier.load_from_checkpoint(trained, map_location="cpu").eval()
    splits = DigitsSplits.from_settings(torch.load(trained)["datamodule_hyper_parameters"])
    raw_images, _ = splits.arrays("test", scaled=False)
    with torch.no_grad():
        logits = model(torch.from_numpy(splits.scaling(raw_images))).numpy()
    return raw_images.astype(np.float32), logits


# torch 2.13 deprecates TorchScript (the README says so and recommends ONNX); the
# format is still asked for, so it is still tested.
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_export_matches_the_checkpoint(trained: Path, tmp_path: Path, expected):
    output = main(
        ["--ckpt_path", str(trained), "--format", "torchscript", "--output", str(tmp_path / "d.pt")]
    )
    images, logits = expected
    loaded = torch.jit.load(str(output))
    with torch.no_grad():
        exported = loaded(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(exported, logits, rtol=1e-5, atol=1e-5)
    assert (exported.argmax(1) == logits.argmax(1)).all()


def test_onnx_export_matches_the_checkpoint(trained: Path, tmp_path: Path, expected):
    onnxruntime = pytest.importorskip("onnxruntime")
    output = main(
        ["--ckpt_path", str(trained), "--format", "onnx", "--output", str(tmp_path / "d.onnx")]
    )
    images, logits = expected
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"pixels": images})
    np.testing.assert_allclose(exported, logits, rtol=1e-4, atol=1e-4)
    assert (exported.argmax(1) == logits.argmax(1)).all()
    (one,) = session.run(None, {"pixels": images[:1]})  # any batch size
    assert one.shape == (1, 10)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_existing_output_is_not_overwritten(trained: Path, tmp_path: Path, capsys):
    taken = tmp_path / "taken.pt"
    taken.write_text("earlier work")
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--format", "torchscript", "--output", str(taken)])
    assert exit_info.value.code == 2
    assert taken.read_text() == "earlier work"
