"""``python -m digits {fit,validate,test,predict}``: LightningCLI's subcommands.

Usage::

    python -m digits fit --trainer.max_epochs 50
    python -m digits test --ckpt_path lightning_logs/digits/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

from digits.cli import DigitsCLI, exit_on_user_error


def main(args: list[str] | None = None) -> None:
    with exit_on_user_error():
        DigitsCLI(args=args)


if __name__ == "__main__":
    main()
