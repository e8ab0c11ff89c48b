"""The tutorial's plain PyTorch loop, kept as the baseline that ``digits.bench`` times.

Exactly the three steps as the tutorial wrote them, with no Lightning: raw pixels,
``train_test_split`` (25% test), ``TensorDataset`` + ``DataLoader(batch_size=128,
shuffle=True)``, a 64-32-10 MLP, cross-entropy, Adam(lr=1e-3), 50 epochs, test accuracy
every 5 epochs. It prints one JSON line with its timings so the benchmark can read them.

Usage::

    python -m digits.tutorial --epochs 50 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import pairwise
from typing import NoReturn

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def run(epochs: int = 50, seed: int = 0, device: str = "cpu") -> dict[str, object]:
    """Train and test as the tutorial does; return its timings and final test accuracy."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, random_state=seed)
    x_train, x_test = (torch.tensor(x, dtype=torch.float32) for x in (x_train, x_test))
    y_train, y_test = (torch.tensor(y, dtype=torch.long) for y in (y_train, y_test))
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=128, shuffle=True)
    x_test, y_test = x_test.to(device), y_test.to(device)

    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    epoch_ends: list[float] = []
    fit_started = time.perf_counter()
    accuracy = float("nan")
    for epoch in range(epochs):
        model.train()
        for features, targets in loader:
            features, targets = features.to(device), targets.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(features), targets)
            loss.backward()
            optimizer.step()
        if (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
            print(f"epoch {epoch + 1:3d}  test accuracy {accuracy:.4f}", flush=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        epoch_ends.append(time.perf_counter())
    return {
        "fit_seconds": epoch_ends[-1] - fit_started,
        "epoch_seconds": [b - a for a, b in pairwise([fit_started, *epoch_ends])],
        "test_acc": accuracy,
        "setup_seconds": fit_started - started,
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0,
    }


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a mistake said as every command here says it: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def main(args: list[str] | None = None) -> dict[str, object]:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args(args)
    if options.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {options.epochs}")
    try:
        device = torch.device(options.device)
    except RuntimeError:
        parser.error(f"--device {options.device} is not a torch device (cpu, cuda, cuda:1...)")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {options.device} asks for a GPU, but torch finds none here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        parser.error(f"--device {options.device}: torch finds {torch.cuda.device_count()} GPU(s)")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {options.device}: this loop runs on cpu or cuda")
    result = run(options.epochs, options.seed, options.device)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
