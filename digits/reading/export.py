"""Take a trained network out of Python and Lightning: ONNX or TorchScript.

The exported graph includes the checkpoint's input scaling and its calibration, so it
takes what ``load_digits`` gives, float32 pixels in 0..16, shape (N, 64), any N, and
returns the ten probabilities per image, the checkpoint's own (softmax of the logits over
the fitted temperature; argmax is the digit). The ONNX file's metadata holds the
"sure" threshold and the temperature (``sure_threshold``, ``temperature``). A checkpoint
that declines images unlike its training digits (``digits.training.familiar``) keeps
those digits' features for it, which the export leaves out: it says so.

Usage::

    python -m digits.export --ckpt_path RUN/checkpoints/last.ckpt --output digits.onnx
    python -m digits.export --ckpt_path CKPT --format torchscript --output digits.pt

ONNX needs the ``onnx`` extra: ``pip install -e ".[onnx]"`` (onnx, onnxscript, and
onnxruntime to run the result).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import ArgumentParser
from torch import nn

from digits.errors import reading_the_command_line
from digits.paths import check_can_hold_files, check_not_there
from digits.reading.trained import TrainedNetwork, load_trained

Format = Literal["onnx", "torchscript"]


class PixelsToProbabilities(nn.Module):
    """The network with the data module's scaling in front and the calibration behind."""

    def __init__(
        self, network: nn.Module, mean: torch.Tensor, std: torch.Tensor, temperature: float
    ) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.register_buffer("temperature", torch.tensor(temperature))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = self.network((pixels - self.mean) / self.std)
        return (logits / self.temperature).softmax(dim=-1)


def exportable(trained: TrainedNetwork) -> PixelsToProbabilities:
    mean, std = (torch.from_numpy(value) for value in (trained.scaling.mean, trained.scaling.std))
    module = PixelsToProbabilities(trained.network, mean, std, trained.temperature)
    return module.eval()


def export(trained: TrainedNetwork, format: Format, output: Path) -> Path:
    """Write the export; return its path."""
    module = exportable(trained)
    example = torch.zeros(2, module.mean.numel())
    output.parent.mkdir(parents=True, exist_ok=True)
    if format == "torchscript":
        torch.jit.trace(module, example).save(str(output))
        return output
    # The exporter logs a line for each torchvision operator it cannot find (this
    # project has none) and trips the same torch deprecation as Lightning does.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(
            module,
            (example,),
            str(output),
            input_names=["pixels"],
            output_names=["probabilities"],
            dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}},
            dynamo=True,
            external_data=False,  # one file; the weights are kilobytes, far below ONNX's 2 GB
            verbose=False,
        )
    calibration = {"sure_threshold": trained.threshold, "temperature": trained.temperature}
    write_metadata(output, calibration)
    return output


def write_metadata(path: Path, values: dict[str, float]) -> None:
    """Numbers a program reading the ONNX file needs beside the graph, as its metadata."""
    import onnx

    model = onnx.load(str(path))
    for key, value in values.items():
        model.metadata_props.add(key=key, value=repr(value))
    onnx.save(model, str(path))


# What each format's files are called; a name that says the other format is a mistake.
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts")}


def check_suffix_fits(output: Path, format: str) -> None:
    """``y.onnx`` written as TorchScript would be opened by an ONNX runtime, and fail there."""
    for other, suffixes in SUFFIXES.items():
        if other != format and output.suffix.lower() in suffixes:
            raise ValueError(
                f"--output {output} names a {other} file, and --format is {format}: give "
                f"--format {other}, or a name ending in {SUFFIXES[format][0]}"
            )


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.export", exit_on_error=False)
    parser.add_argument("--ckpt_path", type=str, required=True, help="A trained checkpoint.")
    parser.add_argument("--format", type=Format, default="onnx", help="onnx or torchscript.")
    parser.add_argument("--output", type=Path, required=True, help="Where to write it.")
    return parser


def main(args: list[str] | None = None) -> Path:
    with reading_the_command_line():  # reading the command line and the checkpoint
        config = parser().parse_args(args)
        check_not_there(config.output)
        check_can_hold_files(config.output.parent)
        check_suffix_fits(config.output, config.format)
        if config.format == "onnx":
            try:
                import onnxscript  # noqa: F401  # the exporter needs it
            except ImportError:
                raise ValueError('ONNX export needs the extra: pip install -e ".[onnx]"') from None
        trained = load_trained(config.ckpt_path)
    written = export(trained, config.format, config.output)
    print(
        f"wrote {written} ({config.format}): float32 pixels 0..16, shape (N, 64) -> "
        "probabilities (N, 10)"
    )
    if trained.familiarity is not None:
        print(
            f"note: {config.ckpt_path} also declines images unlike its "
            f"{len(trained.familiarity.bank)} training digits; the export does not carry "
            "them, so there a reading is sure on its probability alone"
        )
    return written


if __name__ == "__main__":
    main()
