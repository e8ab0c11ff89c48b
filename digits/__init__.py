"""digits: three steps to a deep learning model, with PyTorch Lightning.

1. data set: :class:`digits.data.DigitsDataModule`
2. model: :class:`digits.model.DigitsClassifier` around a network from
   :mod:`digits.networks` (``MLP``, the tutorial's, or ``ConvNet``)
3. training: :mod:`digits.cli` and ``python -m digits.fit``
"""

from __future__ import annotations

from digits.data import DigitsDataModule
from digits.model import DigitsClassifier

__all__ = ["DigitsClassifier", "DigitsDataModule"]
