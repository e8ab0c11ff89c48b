"""The one place where this project relies on Lightning's internals, each named here.

Each is used because no public hook does the job, and each has a test in
``tests/test_lightning_internals.py`` that fails if Lightning changes what it relies on.

- ``LightningCLI._parse_ckpt_path``: with ``--ckpt_path``, LightningCLI reads the
  checkpoint's model hyperparameters with ``torch.load`` and lets them override the
  parsed config, silently. Here ``digits.training.resume.read_and_adopt`` has already
  read the file (safely, upgraded from earlier versions) and adopted its settings where
  the user kept the defaults, refusing a contradiction; Lightning's second reading
  would fail on a setting an earlier version kept in the model.
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI


class CheckpointReadOnce(LightningCLI):
    """LightningCLI that leaves reading the checkpoint's settings to the project."""

    def _parse_ckpt_path(self) -> None:
        """Done by ``DigitsCLI.parse_arguments`` (``read_and_adopt``), before this would run."""
