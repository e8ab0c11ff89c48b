"""Take a trained network out of Python and Lightning: ONNX or TorchScript.

The exported graph includes the checkpoint's input scaling, so it takes what
``load_digits`` gives: float32 pixels in 0..16, shape (N, 64), any N; it returns the
ten logits per image (argmax is the digit, softmax the probabilities).

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

from digits.errors import exit_on_user_error
from digits.inference import load_trained

Format = Literal["onnx", "torchscript"]


class PixelsToLogits(nn.Module):
    """The network with the data module's scaling in front of it."""

    def __init__(self, network: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network((pixels - self.mean) / self.std)


def exportable(ckpt_path: str) -> PixelsToLogits:
    trained = load_trained(ckpt_path)
    mean, std = (torch.from_numpy(value) for value in (trained.scaling.mean, trained.scaling.std))
    return PixelsToLogits(trained.network, mean, std).eval()


def export(ckpt_path: str, format: Format, output: Path) -> Path:
    """Write the export; return its path."""
    module = exportable(ckpt_path)
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
            output_names=["logits"],
            dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}},
            dynamo=True,
            verbose=False,
        )
    return output


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.export", exit_on_error=False)
    parser.add_argument("--ckpt_path", type=str, required=True, help="A trained checkpoint.")
    parser.add_argument("--format", type=Format, default="onnx", help="onnx or torchscript.")
    parser.add_argument("--output", type=Path, required=True, help="Where to write it.")
    return parser


def main(args: list[str] | None = None) -> Path:
    with exit_on_user_error():
        config = parser().parse_args(args)
        if config.output.exists():
            raise ValueError(f"{config.output} exists; choose another --output")
        if config.format == "onnx":
            try:
                import onnxscript  # noqa: F401  # the exporter needs it
            except ImportError:
                raise ValueError('ONNX export needs the extra: pip install -e ".[onnx]"') from None
        written = export(config.ckpt_path, config.format, config.output)
    print(
        f"wrote {written} ({config.format}): float32 pixels 0..16, shape (N, 64) -> logits (N, 10)"
    )
    return written


if __name__ == "__main__":
    main()
