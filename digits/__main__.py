"""``python -m digits {fit,validate,test,predict}``: LightningCLI's subcommands.

``fit`` trains, tests the best checkpoint and prints the summary, as ``python -m
digits.fit`` does; the others score or use a checkpoint given with ``--ckpt_path``.

Usage::

    python -m digits fit --trainer.max_epochs 50
    python -m digits test --ckpt_path lightning_logs/digits/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

import gc

from digits.cli import DigitsCLI, process_group_closed_at_the_end
from digits.errors import exit_2_on_usage_error, exit_on_training_failure
from digits.training.output import quiet_lightning


def main(args: list[str] | None = None) -> DigitsCLI:
    quiet_lightning()
    # LightningCLI runs the subcommand while it is built: DigitsCLI marks what it finds
    # while reading and building as a UsageError; anything raised later keeps its
    # traceback, except divergence, SIGTERM and Ctrl-C.
    with process_group_closed_at_the_end(), exit_on_training_failure(), exit_2_on_usage_error():
        cli = DigitsCLI(args=args)
    return cli


if __name__ == "__main__":
    # What the imports built (Lightning's and torch's modules, about 400,000 objects)
    # lives as long as the process: out of the garbage collector's sight, its collections
    # during the run and the last one at exit do not walk it again (docs/speed.md).
    gc.freeze()
    main()
