"""Pins what digits.training.lightning_internals relies on in Lightning and torch.

Each test fails if the library changes the behaviour the adapter assumes, so that an
upgrade shows where to look instead of breaking a run in a subtle way.
"""

from __future__ import annotations

import inspect

from lightning.pytorch.cli import LightningCLI


def test_lightning_cli_reads_checkpoint_hyperparameters_in_parse_ckpt_path_after_parsing():
    source = inspect.getsource(LightningCLI.__init__)
    assert "self.parse_arguments(self.parser, args)\n" in source
    assert source.index("self.parse_arguments(") < source.index("self._parse_ckpt_path()")
    assert "hyper_parameters" in inspect.getsource(LightningCLI._parse_ckpt_path)
