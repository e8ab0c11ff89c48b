"""digits: three steps to a deep learning model, with PyTorch Lightning.

1. data set: :class:`digits.data.DigitsDataModule`
2. model: :class:`digits.model.DigitsClassifier` around a network from
   :mod:`digits.networks` (``MLP``, the tutorial's, or ``ConvNet``)
3. training: :mod:`digits.cli` and ``python -m digits.fit``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digits.data import DigitsDataModule
    from digits.model import DigitsClassifier

__all__ = ["DigitsClassifier", "DigitsDataModule"]


def __getattr__(name: str) -> Any:
    """``from digits import DigitsDataModule`` imports it (and Lightning) on first use.

    Importing them here eagerly would make every ``digits.*`` module import Lightning,
    including ``python -m digits.tutorial``, the plain PyTorch loop that the benchmark
    times as a process of its own: it would pay Lightning's start-up too.
    """
    if name == "DigitsDataModule":
        from digits.data import DigitsDataModule

        return DigitsDataModule
    if name == "DigitsClassifier":
        from digits.model import DigitsClassifier

        return DigitsClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
