"""Keep what a run prints to what its user can act on.

Lightning prints a few lines on every run that say nothing about it, or that a user of
this project cannot act on; they would also come before an error message, which should
be the only line. The entry points call ``quiet_lightning`` once, before building the CLI.
"""

from __future__ import annotations

import logging
import sys
import warnings

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from digits.training.folders import run_log_dir


class WithoutCloudLoggingTip(logging.Filter):
    """Drops Lightning's tip to install a cloud logging service.

    Lightning 2.6 prints it on every run that has no LitLogger; it says nothing about
    this run. Its other lines (which GPU was found, which checkpoint was restored) stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless cloud logging" not in record.getMessage()


def quiet_lightning() -> None:
    """Silence the warnings and log lines that do not concern this project's user."""
    # The data is a few hundred kilobytes in memory and a batch is one indexing
    # operation: worker processes would only add start-up and inter-process copies.
    # Lightning cannot know that and suggests workers on machines with more than two cores.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # Lightning 2.6 still uses torch's LeafSpec, which torch 2.13 deprecates; harmless,
    # and nothing a user of this project can change.
    warnings.filterwarnings(
        "ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*"
    )
    # validate/test/predict read a checkpoint without the callbacks that wrote it, on
    # purpose: nothing is trained, so nothing needs their state.
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint.*")
    # The tools (compare, sweep) run digits.fit in-process with an argument list of their
    # own while their own command line is in sys.argv, on purpose.
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
    # "Seed set to 0" would come before any error about the values: the seed is in every
    # run's config.yaml.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(existing, WithoutCloudLoggingTip) for existing in rank_zero.filters):
        rank_zero.addFilter(WithoutCloudLoggingTip())


def quiet_resumed_run() -> None:
    """For a run resumed in its own folder, which writes into its checkpoints/ on purpose.

    Lightning warns that the checkpoint folder exists and is not empty; here that is
    the folder the run continues, and its earlier files are kept.
    """
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def say_trained_on_in_a_new_folder(ckpt_path: str) -> None:
    """For a run trained on from a checkpoint its own run went on after.

    Lightning warns that the checkpoint callbacks' folder changed, so that only their
    best path is reloaded; a new folder is the point here. One line says instead where
    the run goes and why.
    """
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from .*")
    if rank_zero_only.rank == 0:  # each process of a DDP run reads the command line
        print(
            f"Training on from {ckpt_path} in a new folder: its run went on after it "
            "(see that run's last.ckpt), and that run's files stay as they are.",
            file=sys.stderr,
            flush=True,
        )


def say_where_scores_went(trainer: L.Trainer) -> None:
    """``validate`` and ``test`` write their scores to a run folder of their own
    (``version_N``, beside the run that trained): named as a fit's summary names its own,
    so that they can be found in TensorBoard."""
    if not trainer.loggers or trainer.fast_dev_run:
        return  # nothing written
    log_dir = run_log_dir(trainer)  # every process: a collective call under DDP
    if trainer.is_global_zero:
        print(f"logs          {log_dir}")
