"""``python -m digits {fit,validate,test,predict}``: LightningCLI's subcommands.

Usage::

    python -m digits fit --trainer.max_epochs 50
    python -m digits test --ckpt_path lightning_logs/digits/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

from digits.cli import DigitsCLI, close_process_group
from digits.errors import exit_on_training_failure, exit_on_user_error


def main(args: list[str] | None = None) -> None:
    # LightningCLI runs the subcommand while it is built: a mistake is found before
    # anything runs; divergence or SIGTERM once training is under way.
    with exit_on_training_failure(), exit_on_user_error():
        DigitsCLI(args=args)
    close_process_group()


if __name__ == "__main__":
    main()
