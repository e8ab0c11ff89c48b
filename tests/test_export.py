"""Exports load without Lightning and give the checkpoint's outputs on the test split.

The checkpoint is a standard-scaled one: with the default raw scaling (the identity), an
export that left the scaling out would still pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from digits import DigitsClassifier, DigitsDataModule
from digits.export import main


@pytest.fixture(scope="module")
def expected(trained_standard: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw 0..16 test images, their labels, and the logits training's own path gives."""
    datamodule = DigitsDataModule.load_from_checkpoint(trained_standard, weights_only=True)
    datamodule.setup("test")  # scaled exactly as the trainer scaled them
    model = DigitsClassifier.load_from_checkpoint(trained_standard, map_location="cpu").eval()
    with torch.no_grad():
        logits = model(datamodule.test_set.features).numpy()
    raw_images, labels = datamodule.splits.arrays("test", scaled=False)
    return raw_images, labels, logits


def check(exported: np.ndarray, expected: tuple) -> None:
    _, labels, logits = expected
    np.testing.assert_allclose(exported, logits, rtol=1e-4, atol=1e-4)
    assert (exported.argmax(1) == labels).mean() > 0.9


# torch 2.13 deprecates TorchScript (the docs say so and recommend ONNX); the format is
# still offered, so it is still tested.
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_export_matches_the_checkpoint(trained_standard, tmp_path, expected):
    output = tmp_path / "d.pt"
    main(["--ckpt_path", str(trained_standard), "--format", "torchscript", "--output", str(output)])
    with torch.no_grad():
        exported = torch.jit.load(str(output))(torch.from_numpy(expected[0])).numpy()
    check(exported, expected)


def test_onnx_export_matches_the_checkpoint(trained_standard: Path, tmp_path: Path, expected):
    onnxruntime = pytest.importorskip("onnxruntime")
    output = tmp_path / "d.onnx"
    main(["--ckpt_path", str(trained_standard), "--format", "onnx", "--output", str(output)])
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"pixels": expected[0]})
    check(exported, expected)
    (one,) = session.run(None, {"pixels": expected[0][:1]})  # any batch size
    assert one.shape == (1, 10)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_existing_output_is_not_overwritten(trained: Path, tmp_path: Path, capsys):
    taken = tmp_path / "taken.pt"
    taken.write_text("earlier work")
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--format", "torchscript", "--output", str(taken)])
    assert exit_info.value.code == 2
    assert taken.read_text() == "earlier work"
    assert capsys.readouterr().err.strip() == f"error: {taken} exists; choose another --output"
