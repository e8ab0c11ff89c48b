"""Train, then test the best checkpoint, then say where everything is.

The same as ``python -m digits fit``; this is the command the README teaches.

Usage::

    python -m digits.fit --trainer.max_epochs 50
    python -m digits.fit --config configs/gpu.yaml
    python -m digits.fit --config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt
    python -m digits.fit --help
"""

from __future__ import annotations

from lightning.pytorch.utilities.exceptions import MisconfigurationException

from digits.cli import DigitsCLI, close_process_group
from digits.errors import exit_on_training_failure, exit_on_user_error
from digits.training.output import quiet_lightning
from digits.training.summary import FitSummary


def main(args: list[str] | None = None) -> FitSummary:
    """Run ``fit`` (or resume it with ``--ckpt_path``), then ``test`` the best checkpoint."""
    quiet_lightning()
    with exit_on_user_error(MisconfigurationException):
        cli = DigitsCLI(run=False, args=args)
    with exit_on_training_failure():
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)
        cli.after_fit()
    close_process_group()
    return cli.summary


if __name__ == "__main__":
    main()
