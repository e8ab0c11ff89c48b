"""Step 3, training: the ``LightningCLI`` that every training entry point shares.

It sets the trainer defaults once (TensorBoard logger, best and last checkpoints, a
fixed seed, the tutorial's 50 epochs), links the data module's shape into the model so
that it is never typed twice, and checks everything a user gives it (values, the
checkpoint, the machine) before anything is written, so that ``digits.errors`` can turn
a mistake into one line. Each hook below is one call into the module that owns the
feature (``digits.training``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import Namespace, lazy_instance
from lightning.fabric.utilities.seed import max_seed_value, min_seed_value
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden

from digits.data import DigitsDataModule
from digits.errors import mark_usage_errors
from digits.model import DigitsClassifier
from digits.reading.familiar import familiarity_state_of
from digits.reading.moved_settings import check_old_flags, register_loader
from digits.training.calibrate import Calibrate
from digits.training.checkpoints import (
    FindKeptCheckpoints,
    LatestBestCheckpoint,
    SafeCheckpointIO,
)
from digits.training.divergence import StopOnDivergence
from digits.training.familiar import DeclineUnfamiliar
from digits.training.folders import place_run
from digits.training.interrupt import InterruptCheckpoint
from digits.training.lightning_internals import CheckpointReadOnce
from digits.training.output import (
    quiet_resumed_run,
    say_trained_on_in_a_new_folder,
    say_where_scores_went,
)
from digits.training.own_data import (
    check_named_data_class,
    further_eval_sets,
    named_data_classes,
    names_other_data,
    num_classes_of,
    num_features_of,
)
from digits.training.pictures import TensorBoardPictures
from digits.training.resume import (
    EpochScalarsInCheckpoint,
    ResumableSaveConfig,
    ScheduleLengthKept,
    check_state_dict,
    read_and_adopt,
)
from digits.training.summary import FitSummary, evaluate_best_and_summarize
from digits.training.tensorboard import HParamsMetrics

DEFAULT_SEED = 0  # recorded in every run's config.yaml as seed_everything
LOG_DIR = "lightning_logs"
RUN_NAME = "digits"  # runs go to lightning_logs/digits/version_N
PROGRESS_BAR_REFRESH_RATE = 10  # steps between redraws: about once per epoch by default

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 50,  # the tutorial's training length
    # Metrics are logged once per epoch, so there is nothing to log per step; 1 also
    # avoids Lightning's warning that an epoch (about 10 batches) is shorter than the
    # logging interval.
    "log_every_n_steps": 1,
    # default_hp_metric=False: HParamsMetrics declares the real metrics instead.
    "logger": lazy_instance(
        TensorBoardLogger, save_dir=LOG_DIR, name=RUN_NAME, default_hp_metric=False
    ),
}

CHECKPOINT_DEFAULTS: dict[str, Any] = {
    # The best epoch by validation accuracy, which `digits.fit` tests.
    "checkpoint.monitor": "val/acc",  # its mode follows the metric (LatestBestCheckpoint)
    # No "/" from the metric name in the file name: it would make a sub-folder.
    "checkpoint.filename": "epoch{epoch:03d}-val_acc{val/acc:.4f}",
    "checkpoint.auto_insert_metric_name": False,
    # The end of every epoch, to resume from. A second callback because Lightning's
    # save_last only copies the monitored checkpoint when that one improves.
    "last_checkpoint.filename": "last",
    "last_checkpoint.monitor": None,
    "last_checkpoint.save_top_k": 1,
    # At the end of every training epoch, also those without validation
    # (--trainer.check_val_every_n_epoch 2), where Lightning would wait for the next one.
    "last_checkpoint.save_on_train_epoch_end": True,
}

DESCRIPTION = (
    "The digits classifier's LightningCLI. fit: train, then test the best checkpoint and "
    "print a summary (the same as python -m digits.fit). validate, test: score a "
    "checkpoint (--ckpt_path) on the validation or test split of its own data settings. "
    "predict: the digits it reads in the test split."
)
FIT_DESCRIPTION = (
    "Train, then test the best checkpoint (by val/acc) and print where the checkpoint and "
    "the TensorBoard logs are. --ckpt_path RUN/checkpoints/last.ckpt resumes a run."
)


class CommandParser(LightningArgumentParser):
    """Lightning's parser, whose usage names the command to type when given no ``prog``.

    Nested help (``--data.help CLASS``) builds its parser from the CLI's parser class
    with a description only, and argparse's default names the file Python ran
    (``usage: __main__.py``).
    """

    command = "python -m digits"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prog", self.command)
        super().__init__(*args, **kwargs)


class FitScriptParser(CommandParser):
    command = "python -m digits.fit"


# One class per subcommand, so that nested help under it names it too (module-level, as
# a parser must be picklable).
class FitCommandParser(CommandParser):
    command = "python -m digits fit"


class ValidateCommandParser(CommandParser):
    command = "python -m digits validate"


class TestCommandParser(CommandParser):
    command = "python -m digits test"


class PredictCommandParser(CommandParser):
    command = "python -m digits predict"


SUBCOMMAND_PARSERS = {
    "fit": FitCommandParser,
    "validate": ValidateCommandParser,
    "test": TestCommandParser,
    "predict": PredictCommandParser,
}


class DigitsCLI(CheckpointReadOnce):
    """LightningCLI with this project's defaults, links and checks.

    With subcommands (``python -m digits fit``) ``after_fit`` tests the best checkpoint
    and prints the summary; ``run=False`` (``python -m digits.fit``) adds
    ``--ckpt_path`` and leaves running to the caller, which ends with ``after_fit`` too.
    """

    def __init__(self, *args: Any, calibrates: bool = True, **kwargs: Any) -> None:
        """``calibrates=False`` leaves out the ``Calibrate`` callback (the sweep's folds,
        which only compare validation scores); the other arguments are LightningCLI's."""
        self.checkpoint: dict[str, Any] | None = None
        self.summary: FitSummary | None = None
        self.is_fit_script = not kwargs.get("run", True)
        kwargs.setdefault("model_class", DigitsClassifier)
        # Any LightningDataModule named by class path (--data my_module.MyData) trains
        # here; this project's own keeps the plain form of its settings (--data.batch_size).
        other_data = names_other_data(kwargs.get("args"))
        kwargs.setdefault(
            "datamodule_class", L.LightningDataModule if other_data else DigitsDataModule
        )
        kwargs.setdefault("subclass_mode_data", other_data)
        kwargs.setdefault("seed_everything_default", DEFAULT_SEED)
        self.calibrates = calibrates
        callbacks = [
            HParamsMetrics(),
            TensorBoardPictures(),
            StopOnDivergence(),
            InterruptCheckpoint(),
            EpochScalarsInCheckpoint(),
        ]
        kwargs.setdefault("trainer_defaults", {"callbacks": callbacks})
        kwargs.setdefault("save_config_callback", ResumableSaveConfig)
        # Raise instead of printing a usage block, so that main() prints one line; read
        # config files with the settings that moved in their new places.
        common = {"exit_on_error": False, "parser_mode": register_loader()}
        # What to type, as usage says it, rather than the file Python ran: the parser
        # class's own default, for the main parser and nested help alike.
        kwargs.setdefault("parser_class", FitScriptParser if self.is_fit_script else CommandParser)
        subcommands = {
            subcommand: {**common, "subcommand_parser": parser_class}
            for subcommand, parser_class in SUBCOMMAND_PARSERS.items()
        }
        subcommands["fit"]["description"] = FIT_DESCRIPTION
        kwargs.setdefault("parser_kwargs", {**common, "description": DESCRIPTION, **subcommands})
        super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """A subcommand's parser is of its own class (its ``subcommand_parser`` in
        ``parser_kwargs``): nested help under it (``--data.help CLASS``) builds a parser
        of that class with a description only, and its usage names the subcommand."""
        parser_class = kwargs.pop("subcommand_parser", None)
        if parser_class is None:
            return super().init_parser(**kwargs)
        main_parser_class, self.parser_class = self.parser_class, parser_class
        try:
            return super().init_parser(**kwargs)
        finally:
            self.parser_class = main_parser_class

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Added as plain argument groups, not as Lightning's auto-added callbacks, so that
        # instantiate_trainer can leave them out where nothing is trained or saved.
        parser.add_class_arguments(
            LatestBestCheckpoint, "checkpoint", fail_untyped=False, sub_configs=True
        )
        parser.add_class_arguments(
            ModelCheckpoint, "last_checkpoint", fail_untyped=False, sub_configs=True
        )
        parser.set_defaults(CHECKPOINT_DEFAULTS)
        # Calibration's own settings (--calibrate.target_error, --calibrate.rule), as for the
        # checkpoints.
        parser.add_class_arguments(Calibrate, "calibrate", fail_untyped=False, sub_configs=True)
        parser.set_defaults({f"trainer.{key}": value for key, value in TRAINER_DEFAULTS.items()})
        # The network's shape and the further evaluation sets come from the data module
        # (one of your own may leave out what it does not have: digits.training.own_data).
        for target, compute in (
            ("model.num_features", num_features_of),
            ("model.num_classes", num_classes_of),
            ("model.eval_sets", further_eval_sets),
        ):
            parser.link_arguments("data", target, compute_fn=compute, apply_on="instantiate")
        if self.is_fit_script:
            parser.add_argument(
                "--ckpt_path",
                type=str | None,
                default=None,
                help="Resume training from this checkpoint, usually a run's last.ckpt.",
            )
        # Every subcommand's parser has the same model and data arguments, so any of
        # them tells which values a user left at their defaults.
        self.defaults_parser = parser

    @property
    def stage_config(self) -> Namespace:
        """The parsed config of the subcommand being run (or the whole one for run=False)."""
        return _stage(self.config)

    @property
    def fitting(self) -> bool:
        return self.is_fit_script or self.config.get("subcommand") == "fit"

    # Reading the command line and building its objects: what fails here is the user's
    # mistake (digits.errors.UsageError); what fails once a subcommand runs is not.

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        args = nested_help_last(sys.argv[1:] if args is None else args)
        with mark_usage_errors(MisconfigurationException):
            check_old_flags(args)
            for named in named_data_classes(args):
                check_named_data_class(named)
            super().parse_arguments(parser, args)
            check_seed(self.stage_config.get("seed_everything"))  # seeded before building
            defaults = self.defaults_parser.get_defaults()
            self.checkpoint = read_and_adopt(self.stage_config, defaults)

    def before_instantiate_classes(self) -> None:
        config = self.stage_config
        with mark_usage_errors(MisconfigurationException):
            if not self.fitting:
                check_checkpoint_given(config.get("ckpt_path"), self.config.get("subcommand"))
            check_trainer_settings(config.trainer, fitting=self.fitting)
            if self.fitting:
                check_schedule_has_an_end(config.model.lr_schedule, config.trainer)
            check_no_injected_optimizer(config)
            resumed_from = self.checkpoint if self.fitting else None
            root = Path(LOG_DIR, RUN_NAME)
            placement = place_run(config.trainer, resumed_from, config.ckpt_path, root)
            if placement == "continues":
                quiet_resumed_run()
            elif placement == "after_an_earlier_state":
                say_trained_on_in_a_new_folder(config.ckpt_path)

    def instantiate_classes(self) -> None:
        with mark_usage_errors(MisconfigurationException):
            super().instantiate_classes()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with this project's checkpoints, progress bar and checkpoint writer.

        The checkpoint callbacks are added where a run trains and keeps checkpoints
        (``--trainer.enable_checkpointing false`` leaves them out). The progress bar is
        redrawn every few steps instead of every step: an epoch here is ten steps of about
        a millisecond each, and a redraw costs more than a step;
        ``--trainer.enable_progress_bar false`` still switches it off, and a progress
        bar in ``--trainer.callbacks`` replaces it. Checkpoints are written and read by
        ``SafeCheckpointIO`` unless ``--trainer.plugins`` names another.
        """
        # The model exists and the trainer not yet: the last moment to refuse a checkpoint
        # before Lightning starts printing about the machine.
        if self.checkpoint is not None:
            check_state_dict(self.model, self.checkpoint, self.stage_config.ckpt_path)
        if torch.cuda.is_available():
            # TensorFloat-32 matrix products on tensor cores. Lightning otherwise prints a
            # tip about this on every run on such a GPU; float32 on the CPU is unchanged.
            torch.set_float32_matmul_precision("high")
        init = _stage(self.config_init)
        trainer_config = init.get("trainer") or {}
        callbacks = [
            callback
            for callback in _as_list(trainer_config.get("callbacks"))
            if self.fitting or not isinstance(callback, ModelCheckpoint)
        ]
        # Reading a checkpoint applies what it holds: its test of how like the training
        # digits an image is needs the callback, whichever config is given.
        declines = any(isinstance(callback, DeclineUnfamiliar) for callback in callbacks)
        if not self.fitting and holds_familiarity(self.checkpoint) and not declines:
            callbacks.append(DeclineUnfamiliar())
        if self.calibrates:
            callbacks.append(init["calibrate"])
        if self.fitting and self.checkpoint is not None:
            callbacks.append(ScheduleLengthKept(self.checkpoint, self.stage_config.ckpt_path))
        keeps_checkpoints = self.fitting and trainer_config.get("enable_checkpointing") is not False
        if keeps_checkpoints:
            logged = self.model.validation_metric_names()
            if self.calibrates:
                logged += init["calibrate"].validation_metric_names(self.model)
            check_monitor_is_logged(init["checkpoint"].monitor, logged)
            # First among the checkpoint callbacks, which Lightning moves to the end in
            # their order: the first is the run's (trainer.checkpoint_callback), whose
            # best epoch is tested, calibrated and summarised. One a user adds in
            # --trainer.callbacks (snapshots every few epochs) saves beside it.
            own = [init["checkpoint"], init["last_checkpoint"], FindKeptCheckpoints()]
            callbacks = [*own, *callbacks]
        elif not self.fitting:
            # validate/test/predict only read a checkpoint: Lightning would otherwise add
            # a checkpoint callback of its own.
            kwargs.setdefault("enable_checkpointing", False)
        wants_bar = trainer_config.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(callback, ProgressBar) for callback in callbacks):
            callbacks.append(TQDMProgressBar(refresh_rate=PROGRESS_BAR_REFRESH_RATE))
        check_states_apart(callbacks, own={id(init["last_checkpoint"]): "last_checkpoint"})
        plugins = _as_list(trainer_config.get("plugins"))
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(SafeCheckpointIO())
        return super().instantiate_trainer(**{"callbacks": callbacks, "plugins": plugins, **kwargs})

    def after_fit(self) -> None:
        self.summary = evaluate_best_and_summarize(self.trainer, self.model, self.datamodule)

    def after_validate(self) -> None:
        say_where_scores_went(self.trainer)

    def after_test(self) -> None:
        say_where_scores_went(self.trainer)


def holds_familiarity(checkpoint: dict[str, Any] | None) -> bool:
    """Whether a checkpoint was fitted by ``DeclineUnfamiliar`` (whose state it holds)."""
    return checkpoint is not None and familiarity_state_of(checkpoint) is not None


def nested_help_last(args: Any) -> Any:
    """A command line with its nested help flags and their classes moved to its end, in
    their order (``--data.help CLASS``, ``--model.network.help=ConvNet``).

    jsonargparse reads what follows a nested help flag with that class's own parser, which
    takes only further nested help flags (help of a class inside it), so ``--config FILE``
    or ``--trainer.max_epochs 3`` after one were "unrecognized arguments". Moved last, the
    rest of the line is read first, as for ``--help``; no word is dropped.
    """
    if not isinstance(args, (list, tuple)):
        return args  # a dict or Namespace of settings holds no flags
    words = [str(word) for word in args]
    helps, others, index = [], [], 0
    while index < len(words):
        flag, equals, _ = words[index].partition("=")
        if flag.startswith("--") and flag.endswith(".help"):
            has_value = not equals and index + 1 < len(words)
            taken = 2 if has_value and not words[index + 1].startswith("-") else 1
            helps += words[index : index + taken]
            index += taken
        else:
            others.append(words[index])
            index += 1
    return [*others, *helps] if helps else args


def check_seed(seed: bool | int | None) -> None:
    """LightningCLI seeds between reading the command line and building the objects, so
    a seed numpy cannot take is refused here, while it is still the user's mistake."""
    if seed is None or isinstance(seed, bool) or min_seed_value <= seed <= max_seed_value:
        return
    raise ValueError(
        "seed_everything must be true, false or a whole number "
        f"{min_seed_value} to {max_seed_value}, got {seed}"
    )


def check_checkpoint_given(ckpt_path: str | None, subcommand: str) -> None:
    """validate, test and predict without a checkpoint would use a network that never trained."""
    if not ckpt_path:
        raise ValueError(
            f"python -m digits {subcommand} needs --ckpt_path CHECKPOINT, a file: "
            "without one it would use a network that never trained"
        )


def check_trainer_settings(trainer: Namespace, fitting: bool) -> None:
    """Refuse, before anything is built, what Lightning would fail on later or not at all."""
    accelerator = str(trainer.accelerator)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"trainer.accelerator={accelerator} asks for a GPU, but torch finds none here"
        )
    bounded_otherwise = (trainer.max_steps or -1) > 0 or trainer.max_time is not None
    unlimited = trainer.max_epochs == -1 and bounded_otherwise  # Lightning's "no epoch limit"
    if fitting and trainer.max_epochs is not None and trainer.max_epochs < 1 and not unlimited:
        raise ValueError(
            f"trainer.max_epochs must be at least 1, got {trainer.max_epochs} "
            "(-1, no epoch limit, goes with trainer.max_steps or trainer.max_time)"
        )
    if str(trainer.precision) == "16-true":
        raise ValueError(
            f"trainer.precision={trainer.precision} keeps the weights and Adam's state in "
            "float16, where this training overflows in its first epoch; use 16-mixed or bf16-true"
        )
    if launched_from_here := strategy_starting_processes_here(trainer.strategy):
        raise ValueError(
            f"trainer.strategy={launched_from_here} trains in processes started from this "
            "one, whose summary and checkpoints would miss what they did; use "
            "--trainer.strategy ddp, which starts each process anew"
        )
    if trainer.barebones:
        raise ValueError(
            "trainer.barebones=true is not supported: every run here logs its metrics and "
            "keeps checkpoints; python -m digits.bench measures the raw training speed"
        )


MULTIPROCESSING_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")  # and their variants


def strategy_starting_processes_here(strategy: Any) -> str | None:
    """The strategy, said as typed, if Lightning's multiprocessing launcher would start its
    training processes from this one (spawned or forked) rather than run each anew."""
    if isinstance(strategy, str):
        return strategy if strategy.startswith(MULTIPROCESSING_STRATEGIES) else None
    start_method = getattr(getattr(strategy, "init_args", None), "start_method", "popen")
    if start_method in (None, "popen"):
        return None
    return f"{strategy.class_path.rpartition('.')[2]} with start_method={start_method}"


def check_schedule_has_an_end(lr_schedule: str, trainer: Namespace) -> None:
    """A cosine or one-cycle schedule is laid out over the run's steps, so it needs to know
    how many: a run bounded only by time (or by nothing) does not say."""
    if lr_schedule == "constant" or (trainer.max_steps or -1) > 0:
        return
    epochs_unbounded = trainer.max_epochs == -1 or (
        trainer.max_epochs is None and trainer.max_time is not None
    )
    if epochs_unbounded:
        raise ValueError(
            f"model.lr_schedule={lr_schedule} needs the run's length in epochs or steps; "
            "set trainer.max_epochs or trainer.max_steps, or use model.lr_schedule=constant"
        )


def check_monitor_is_logged(monitor: str | None, logged: list[str]) -> None:
    """The checkpoint's metric must be one validation logs.

    Lightning would find out at the end of the first epoch, after the run's folder is
    written, and end in a traceback.
    """
    if monitor is not None and monitor not in logged:
        raise ValueError(
            f"checkpoint.monitor={monitor} is not logged; validation logs "
            + ", ".join(sorted(logged))
        )


def check_states_apart(callbacks: list[Callback], own: dict[int, str]) -> None:
    """No two callbacks that keep a state in the checkpoint may share its key.

    Lightning refuses them when it builds the trainer, in a traceback; the key is the
    callback's class and settings (``state_key``). ``own`` names the CLI's own callbacks,
    which a user's copy may collide with (a ``ModelCheckpoint`` with its defaults is the
    one that keeps ``last.ckpt``).
    """
    seen: dict[str, Callback] = {}
    for callback in callbacks:
        if not is_overridden("state_dict", instance=callback, parent=Callback):
            continue
        earlier = seen.setdefault(callback.state_key, callback)
        if earlier is not callback:
            clash = [own[id(one)] for one in (earlier, callback) if id(one) in own]
            whose = (
                f" (one is the run's own {clash[0]}: give yours other settings)" if clash else ""
            )
            raise ValueError(
                f"two {type(callback).__name__} callbacks with the same settings: a checkpoint "
                f"cannot keep both their states{whose}"
            )


def check_no_injected_optimizer(config: Namespace) -> None:
    """Refuse LightningCLI's ``--optimizer`` and ``--lr_scheduler``.

    LightningCLI would replace the model's own Adam with them while the saved config
    still showed ``model.lr``, ``model.weight_decay`` and ``model.lr_schedule``, which
    would then do nothing: a config that does not say what ran.
    """
    for flag in ("optimizer", "lr_scheduler"):
        if config.get(flag) is not None:
            raise ValueError(
                f"--{flag} is not used here: the model trains with its own Adam; set "
                "--model.lr, --model.weight_decay and --model.lr_schedule instead"
            )


def _stage(config: Namespace) -> Namespace:
    subcommand = config.get("subcommand")
    return config[subcommand] if subcommand else config


def _as_list(value: Any) -> list[Any]:
    """A trainer argument that takes one object or a list of them, as a new list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@contextmanager
def process_group_closed_at_the_end() -> Iterator[None]:
    """After DDP, the process group closed before the interpreter exits: when the run is
    done, and when it ends with an exit code (refused in a callback, diverged, stopped by
    SIGTERM or Ctrl-C), each of which has said its word by then.

    Otherwise gloo's threads may abort the interpreter's exit with "terminate called
    without an active exception": SIGABRT, exit -6 where the run meant 0 or 2. A bug's
    exception is left to propagate with the group open: closing it would first wait for
    the collectives it left pending (up to the group's timeout, 30 minutes by default),
    with its traceback not yet printed.
    """
    try:
        yield
    except SystemExit:
        close_process_group()
        raise
    close_process_group()


def close_process_group() -> None:
    """Close the DDP process group, if there is one (a second call does nothing)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
