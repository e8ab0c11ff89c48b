"""Train, then test the best checkpoint, then say where everything is.

Usage::

    python -m digits.fit --trainer.max_epochs 50
    python -m digits.fit --config configs/gpu.yaml
    python -m digits.fit --config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt
    python -m digits.fit --help
"""

from __future__ import annotations

from dataclasses import dataclass

from digits.cli import DigitsCLI, close_process_group, tensorboard_logdir
from digits.errors import exit_on_training_failure, exit_on_user_error


@dataclass(frozen=True)
class FitSummary:
    """What a finished run leaves behind, as printed at the end."""

    best_val_acc: float | None
    test_acc: float
    checkpoint: str | None
    log_dir: str | None
    tensorboard_logdir: str | None

    def lines(self) -> list[str]:
        best = "n/a" if self.best_val_acc is None else f"{self.best_val_acc:.4f}"
        tested = "the best checkpoint" if self.checkpoint else "the final weights"
        lines = [
            f"best val/acc  {best}",
            f"test/acc      {self.test_acc:.4f}  ({tested})",
            f"checkpoint    {self.checkpoint or 'none saved'}",
            f"logs          {self.log_dir or 'none written'}",
        ]
        if self.tensorboard_logdir:
            lines.append(f"to look:      tensorboard --logdir {self.tensorboard_logdir}")
        return lines


def main(args: list[str] | None = None) -> FitSummary:
    """Run ``fit`` (or resume it with ``--ckpt_path``), then ``test`` the best checkpoint."""
    with exit_on_user_error():
        cli = DigitsCLI(run=False, args=args)
    trainer = cli.trainer
    with exit_on_training_failure():
        trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)

    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if checkpoint is not None else ""
    # fast_dev_run saves no checkpoint: then the weights in memory are what there is.
    (results,) = trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best_path or None)

    best_score = checkpoint.best_model_score if checkpoint is not None else None
    # fast_dev_run swaps the logger for one that writes nothing.
    wrote_logs = trainer.logger is not None and not trainer.fast_dev_run
    summary = FitSummary(
        best_val_acc=None if best_score is None else float(best_score),
        test_acc=results["test/acc"],
        checkpoint=best_path or None,
        log_dir=trainer.log_dir if wrote_logs else None,
        tensorboard_logdir=tensorboard_logdir(trainer.logger) if wrote_logs else None,
    )
    if trainer.is_global_zero:
        print("\n".join(summary.lines()))
    close_process_group()
    return summary


if __name__ == "__main__":
    main()
