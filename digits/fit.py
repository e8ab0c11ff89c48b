"""Train, then test the best checkpoint, then say where everything is.

The same as ``python -m digits fit``; this is the command the README teaches.

Usage::

    python -m digits.fit --trainer.max_epochs 50
    python -m digits.fit --config configs/gpu.yaml
    python -m digits.fit --config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt
    python -m digits.fit --help
"""

from __future__ import annotations

import gc
from typing import Any

from lightning.pytorch.utilities.exceptions import MisconfigurationException

from digits.cli import DigitsCLI, process_group_closed_at_the_end
from digits.errors import exit_2_on_usage_error, exit_on_training_failure, reading_the_command_line
from digits.training.output import quiet_lightning
from digits.training.summary import FitSummary


def main(args: list[str] | None = None) -> FitSummary:
    """Run ``fit`` (or resume it with ``--ckpt_path``), then ``test`` the best checkpoint."""
    quiet_lightning()
    with reading_the_command_line(MisconfigurationException):
        cli = build(args)
    # A run's length is known once its data is set up: a resumed run that would not fit
    # its schedule is refused there, before anything is written (ScheduleLengthKept).
    with process_group_closed_at_the_end(), exit_on_training_failure(), exit_2_on_usage_error():
        train(cli)
        cli.after_fit()
    return cli.summary


def build(args: list[str] | None, **cli_options: Any) -> DigitsCLI:
    """The data, model and trainer a command line describes; errors raise, nothing runs.

    ``cli_options`` go to ``DigitsCLI`` (the sweep passes its own callbacks this way).
    """
    return DigitsCLI(run=False, args=args, **cli_options)


def train(cli: DigitsCLI) -> None:
    """Fit, or resume fitting from ``--ckpt_path``."""
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)


if __name__ == "__main__":
    # What the imports built (Lightning's and torch's modules, about 400,000 objects)
    # lives as long as the process: out of the garbage collector's sight, its collections
    # during the run and the last one at exit do not walk it again (docs/speed.md).
    gc.freeze()
    main()
