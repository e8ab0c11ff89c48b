"""Exports load without Lightning and give the checkpoint's probabilities on the test split.

The checkpoint is a standard-scaled one: with the default raw scaling (the identity), an
export that left the scaling out would still pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from digits import DigitsDataModule
from digits.reading.checkpoint import CALIBRATION_STATE
from digits.reading.export import main
from tests.conftest import lightning_probabilities


@pytest.fixture(scope="module")
def expected(trained_standard: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw 0..16 test images, their labels, and the probabilities training's own path gives.

    The checkpoint was calibrated after training: its temperature is not 1, so an export
    that left it out would give other probabilities.
    """
    datamodule = DigitsDataModule.load_from_checkpoint(trained_standard, weights_only=True)
    datamodule.setup("test")  # scaled exactly as the trainer scaled them
    features = datamodule.test_set.features
    probabilities = lightning_probabilities(trained_standard, features).numpy()
    raw_images, labels = datamodule.splits.arrays("test", scaled=False)
    return raw_images, labels, probabilities


def check(exported: np.ndarray, expected: tuple) -> None:
    """The checkpoint's probabilities, to float32 rounding."""
    _, labels, probabilities = expected
    np.testing.assert_allclose(exported, probabilities, rtol=1e-5, atol=1e-6)
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
    assert list(tmp_path.iterdir()) == [output]  # one file: no weights written beside it
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"pixels": expected[0]})
    check(exported, expected)
    (one,) = session.run(None, {"pixels": expected[0][:1]})  # any batch size
    assert one.shape == (1, 10)
    # The threshold and the temperature travel with the graph, as metadata.
    import onnx

    metadata = {prop.key: prop.value for prop in onnx.load(str(output)).metadata_props}
    kept = torch.load(trained_standard, weights_only=True)["callbacks"][CALIBRATION_STATE]
    assert float(metadata["sure_threshold"]) == pytest.approx(kept["threshold"])
    assert float(metadata["temperature"]) == pytest.approx(kept["temperature"])


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_existing_output_is_not_overwritten(trained: Path, tmp_path: Path, capsys):
    taken = tmp_path / "taken.pt"
    taken.write_text("earlier work")
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--format", "torchscript", "--output", str(taken)])
    assert exit_info.value.code == 2
    assert taken.read_text() == "earlier work"
    assert capsys.readouterr().err.strip() == f"error: {taken} exists; choose another --output"


@pytest.mark.parametrize(
    ("format", "name", "other"),
    [("torchscript", "y.onnx", "onnx"), ("onnx", "y.pt", "torchscript")],
)
def test_an_output_named_for_the_other_format_is_one_line_and_exit_2(
    trained: Path, tmp_path: Path, capsys, format: str, name: str, other: str
):
    output = tmp_path / name
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--format", format, "--output", str(output)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --output {output} names a {other} file, and --format is")
    assert not output.exists()


def test_an_output_inside_a_file_is_one_line_and_exit_2(trained: Path, tmp_path: Path, capsys):
    taken = tmp_path / "taken.pt"
    taken.write_text("earlier work")
    output = taken / "inside" / "model.pt"
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--format", "torchscript", "--output", str(output)])
    assert exit_info.value.code == 2
    assert taken.read_text() == "earlier work"
    assert capsys.readouterr().err.strip() == (
        f"error: {taken} is a file, not a folder; choose another --output"
    )


def test_an_output_folder_that_cannot_be_written_is_one_line_and_exit_2(trained: Path, capsys):
    """Even for root, who may write in any folder of a disk: ``/sys`` takes no new file."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(trained), "--output", "/sys/digits-export/model.onnx"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: /sys cannot be written in (")
    assert line.endswith("); choose another --output")
