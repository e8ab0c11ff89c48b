"""Break each promised behaviour on purpose and check that a test notices (mutation testing).

Each mutant is one hand-made change to the code (a behaviour the docs promise, broken the
way a careless edit would break it) and the tests meant to catch it. Every mutant runs in
a fresh copy of the repository, never in the working tree, and the report says which
were killed (a test failed, as it should) and which survived::

    python scripts/mutants.py            # all of them, a few minutes on 2 cores
    python scripts/mutants.py tie ddp    # those whose name contains a word
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    also: tuple[tuple[str, str, str], ...] = ()  # more (file, old, new) for the same breakage

    @property
    def edits(self) -> tuple[tuple[str, str, str], ...]:
        return ((self.file, self.old, self.new), *self.also) if self.old else ()


MUTANTS = [
    Mutant(
        "digits.export writes TorchScript under an .onnx name without a word",
        "digits/reading/export.py",
        "        check_suffix_fits(config.output, config.format)\n",
        "",
        ("tests/test_export.py", "-k", "other_format"),
    ),
    Mutant(
        "a refused continuation of a sweep follows Optuna's note that it is using the study",
        "digits/tools/sweep/study.py",
        "    optuna.logging.set_verbosity(optuna.logging.WARNING)\n",
        "",
        ("tests/test_sweep.py", "-k", "only_line_the_command"),
    ),
    Mutant(
        "a bad value in the sweep's --fit_args is blamed on the space file",
        "digits/tools/sweep/__main__.py",
        "        if refused([]) == error:",
        "        if False:",
        ("tests/test_sweep.py", "-k", "blamed_on_fit_args"),
    ),
    Mutant(
        "digits.baseline with no model prints an empty table and exits 0",
        "digits/tools/baseline.py",
        "        if not config.models:",
        "        if False:",
        ("tests/test_baseline.py", "-k", "no_model"),
    ),
    Mutant(
        "digits.compare lets --fit_args set a split seed that each split's own overrides",
        "digits/tools/compare.py",
        "        check_fit_args_leave_the_split(config.fit_args)\n",
        "",
        ("tests/test_compare.py", "-k", "mistake_is_one_line"),
    ),
    Mutant(
        "digits.drawn --pen_digits of a binary file says Python's codec error, not the file",
        "digits/people/drawn.py",
        "        except UnicodeDecodeError:  # a .npy",
        "        except KeyError:  # a .npy",
        ("tests/test_drawn.py", "-k", "binary_file"),
    ),
    Mutant(
        "a TorchScript export given as a checkpoint gets torch's warning and a line cut mid-word",
        "digits/reading/checkpoint.py",
        "    if is_torchscript_archive(file):",
        "    if False:",
        ("tests/test_predict.py", "-k", "folder_or_an_export"),
    ),
    Mutant(
        "digits.drawn writes to X-2 when the --output X it was given exists",
        "digits/people/drawn.py",
        "            check_not_there(Path(options.output))\n",
        "            pass\n",
        ("tests/test_drawn.py", "-k", "exists_is_refused"),
    ),
    Mutant(
        "a run with no sure validation reading says 0.0% of them, 0.0% of those wrong",
        "digits/training/summary.py",
        "            if fitted.coverage > 0",
        "            if True",
        ("tests/test_cli.py", "-k", "both_fit"),
    ),
    Mutant(
        "--data naming a module rather than its class says the module has no such name",
        "digits/training/own_data.py",
        "        if kind := module_kind(class_path):",
        "        if False:",
        ("tests/test_own_data.py", "--runslow", "-k", "cannot_be_imported"),
    ),
    Mutant(
        "labels 1..3 read for num_classes train a network with a class no image has",
        "digits/training/own_data.py",
        "    if seen[0] >= 0 and len(seen) == seen[-1] + 1:",
        "    if True:",
        ("tests/test_own_data.py", "-k", "class_indices_from_0"),
    ),
    Mutant(
        "labels read for num_classes are judged by their first batch alone",
        "digits/training/own_data.py",
        "labels.dtype for labels in targets if labels.dtype not in",
        "labels.dtype for labels in targets[:1] if labels.dtype not in",
        ("tests/test_own_data.py", "-k", "class_indices_from_0"),
    ),
    Mutant(
        "labels in a column, (batch, 1), are read as distributions over one class",
        "digits/training/own_data.py",
        "        if labels.ndim != 1 and not distribution:",
        "        if False:",
        ("tests/test_own_data.py", "-k", "class_indices_from_0"),
    ),
    Mutant(
        "distributions of another width in a later batch are read by the first batch's",
        "digits/training/own_data.py",
        "        if len(widths) > 1 or any(",
        "        if False and any(",
        ("tests/test_own_data.py", "-k", "batch_by_batch"),
    ),
    Mutant(
        "--data.help naming this project's own data module is an unrecognized argument",
        "digits/training/own_data.py",
        "named.flag == HELP_FLAG or not is_default_data(named.class_path)",
        "not is_default_data(named.class_path)",
        ("tests/test_own_data.py", "-k", "help_of_a_data_class"),
    ),
    Mutant(
        "batches of a stream are read for num_classes to their end, for ever",
        "digits/training/own_data.py",
        'if isinstance(getattr(loader, "dataset", None), IterableDataset):',
        "if False:",
        ("tests/test_own_data.py", "-k", "cannot_be_read_for_num_classes"),
    ),
    Mutant(
        "a batch that is no (features, labels) pair is unpacked anyway",
        "digits/training/own_data.py",
        "    if isinstance(batch, (tuple, list)) and len(batch) == 2:\n        return batch",
        "    if True:\n        return batch",
        ("tests/test_own_data.py", "-k", "cannot_be_read_for_num_classes or class_indices"),
    ),
    Mutant(
        "a batch of soft targets is kept whole while the labels are read",
        "digits/training/own_data.py",
        "    return labels.new_empty((0, *labels.shape[1:]))",
        "    return labels[:0]",
        ("tests/test_own_data.py", "-k", "batch_by_batch"),
    ),
    Mutant(
        "int32 labels read for num_classes train and fail in cross-entropy",
        "digits/training/own_data.py",
        "CLASS_INDEX_DTYPES = (torch.int64, torch.uint8)",
        "CLASS_INDEX_DTYPES = (torch.int64, torch.uint8, torch.int32)",
        ("tests/test_own_data.py", "-k", "class_indices_from_0"),
    ),
    Mutant(
        "a float column of labels is read as distributions over one class",
        "digits/training/own_data.py",
        "labels.is_floating_point() and labels.shape[1] > 1",
        "labels.is_floating_point()",
        ("tests/test_own_data.py", "-k", "class_indices_from_0"),
    ),
    Mutant(
        "a mistake found in a link's function is said in jsonargparse's words about the link",
        "digits/errors.py",
        "raise UsageError(str(_cause_of_kind(error, UsageError) or error)) from None",
        "raise UsageError(str(error)) from None",
        ("tests/test_own_data.py", "-k", "class_indices_from_0"),
    ),
    Mutant(
        "a run trained on reads its event files with TensorBoard's purge, and warns of a restart",
        "digits/training/lightning_internals.py",
        "purge_orphaned_data=False",
        "purge_orphaned_data=True",
        ("tests/test_trust.py", "-k", "files_whole_and_quietly"),
    ),
    Mutant(
        "under DDP every process prints a refusal found in a callback, not the first alone",
        "digits/training/resume.py",
        "        raise SystemExit(USAGE_ERROR)\n    raise UsageError(message)",
        "        raise UsageError(message)\n    raise UsageError(message)",
        ("tests/test_trust.py", "--runslow", "-k", "another_length_is_refused_once"),
    ),
    Mutant(
        "predict gives NumPy's allow_pickle hint for a file under a .npy name that is not one",
        "digits/reading/predict.py",
        "    if start != np.lib.format.MAGIC_PREFIX:",
        "    if False:",
        ("tests/test_predict.py", "-k", "bad_files"),
    ),
    Mutant(
        "Ctrl-C in a sweep's fold is raised wherever it lands, even where Python drops it",
        "digits/tools/sweep/objective.py",
        "            InterruptCheckpoint(),\n        ]",
        "        ]",
        ("tests/test_sweep.py", "-k", "between_two_batches"),
    ),
    Mutant(
        "a host LitServe does not serve on ends in its traceback once serving was announced",
        "digits/reading/serve/__main__.py",
        "    if options.host not in LITSERVE_HOSTS:",
        "    if False:",
        ("tests/test_serve.py", "-k", "litserve_would_refuse"),
    ),
    Mutant(
        "an ONNX export writes its weights into a second file beside it, over any there",
        "digits/reading/export.py",
        "            external_data=False,",
        "            external_data=True,",
        ("tests/test_export.py", "-k", "onnx_export_matches"),
    ),
    Mutant(
        "an output folder that cannot be written in is found only at the first write",
        "digits/paths.py",
        "                with tempfile.TemporaryFile(dir=part):\n                    pass",
        "                pass",
        ("tests/test_export.py", "-k", "cannot_be_written"),
    ),
    Mutant(
        "a taken version of a shared-folder logger ends in a traceback",
        "digits/training/resume.py",
        "        raise SystemExit(USAGE_ERROR)\n    raise UsageError(message)",
        "        raise SystemExit(USAGE_ERROR)\n    raise RuntimeError(message)",
        ("tests/test_trainer_flags.py", "-k", "taken_version"),
    ),
    Mutant(
        "every process of a multi-process run draws the sources' images at once",
        "digits/data.py",
        "                source.prepare(split, self.splits)",
        "                pass",
        ("tests/test_drawn_cache.py", "-k", "preparing"),
    ),
    Mutant(
        "preparing the data for fitting draws the test rows too",
        "digits/data.py",
        "        for split in STAGE_SPLITS.get(stage, EVERY_SPLIT):\n            for source",
        "        for split in EVERY_SPLIT:\n            for source",
        ("tests/test_drawn_cache.py", "-k", "preparing"),
    ),
    Mutant(
        "two callbacks with one state key end in Lightning's traceback",
        "digits/cli.py",
        "        check_states_apart(callbacks, own=",
        "        (lambda *args, **kwargs: None)(callbacks, own=",
        ("tests/test_trust.py", "-k", "cannot_tell_apart"),
    ),
    Mutant(
        "a logger's shared save_dir gets every run's config.yaml",
        "digits/training/folders.py",
        "isinstance(logger, (TensorBoardLogger, CSVLogger)):",
        "True:",
        ("tests/test_trainer_flags.py", "-k", "shares"),
    ),
    Mutant(
        "a run resumed by another path to its folder forgets its best epoch",
        "digits/training/checkpoints.py",
        "                states[callback.state_key] = in_folder(state, folder)",
        "                pass",
        ("tests/test_trust.py", "-k", "another_path"),
    ),
    Mutant(
        "a signal to a run of one-batch epochs waits for the last epoch",
        "digits/training/interrupt.py",
        "            self._stop_if_asked(trainer)  # a signal during the last epoch or",
        "            pass  # a signal during the last epoch or",
        ("tests/test_trust.py", "-k", "one_batch"),
    ),
    Mutant(
        "a resumed run stopped again is told to resume with config.yaml",
        "digits/training/interrupt.py",
        "config = saved_config(trainer, self.log_dir)",
        'config = self.log_dir / "config.yaml"',
        ("tests/test_trust.py", "-k", "own_settings"),
    ),
    Mutant(
        "a diverged model is kept when validated within the epoch",
        "digits/training/divergence.py",
        "        if not trainer.sanity_checking:  # (validate alone",
        "        if False:  # (validate alone",
        ("tests/test_trust.py", "-k", "keeps_no_broken_model"),
    ),
    Mutant(
        "a checkpoint callback the user adds becomes the run's",
        "digits/cli.py",
        "callbacks = [*own, *callbacks]",
        "callbacks = [*callbacks, *own]",
        ("tests/test_trust.py", "-k", "user_adds"),
    ),
    Mutant(
        "after a mid-epoch best the resume command names last.ckpt",
        "digits/training/interrupt.py",
        "if last.exists() and continues_its_run(read_checkpoint(last), last):",
        "if last.exists():",
        ("tests/test_trust.py", "-k", "within_its_epochs"),
    ),
    Mutant(
        "a resumed run stopped in its test names a config never written",
        "digits/training/resume.py",
        "        if not self.already_saved:  # setup runs again for the test after training",
        "        if True:  # setup runs again for the test after training",
        ("tests/test_trust.py", "-k", "stopped_in_its_test"),
    ),
    Mutant(
        "a one-batch epoch's stop saves a checkpoint that skips an epoch",
        "digits/training/interrupt.py",
        "        if not self.as_an_epoch_started:\n            # Every process",
        "        if True:\n            # Every process",
        ("tests/test_trust.py", "-k", "one_batch"),
    ),
    Mutant(
        "the sweep waits forever for a worker that does not stop",
        "digits/tools/sweep/__main__.py",
        "            _all_ended(workers, kill_after)",
        "            _all_ended(workers, 3600.0)",
        ("tests/test_sweep.py", "-k", "does_not_stop"),
    ),
    Mutant(
        "a second Ctrl-C leaves the sweep's workers running",
        "digits/tools/sweep/__main__.py",
        "    except KeyboardInterrupt:\n        why = ",
        "    except OSError:\n        why = ",
        ("tests/test_sweep.py", "-k", "second_ctrl_c"),
    ),
    Mutant(
        "the drawn-digit cache is written owner-only",
        "digits/paths.py",
        'with open(temporary, "xb") as file:',
        'with open(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as file:',
        ("tests/test_drawn_cache.py",),
    ),
    Mutant(
        "a study from before the space was recorded is taken over by another space",
        "digits/tools/sweep/study.py",
        "known = recorded or what_its_trials_were(study)",
        "known = recorded",
        ("tests/test_sweep.py", "-k", "other_trials and from_before"),
    ),
    Mutant(
        "a 405 loses its Allow header",
        "digits/reading/serve/app.py",
        "status_code=error.status_code, headers=error.headers",
        "status_code=error.status_code",
        ("tests/test_serve.py", "-k", "method_not_allowed"),
    ),
    Mutant(
        "non-digits of weight 10 count as zeros",
        "digits/metrics.py",
        "all_on_one = (top > 0) & (top == targets.sum(dim=-1))",
        "all_on_one = top == 1",
        ("tests/test_model.py", "-k", "spread_target"),
    ),
    Mutant(
        "standard scaling divides drawn ink at the border by almost 0",
        "digits/data.py",
        'if scale == "standard" and sources:',
        "if False:",
        ("tests/test_drawn_data.py", "-k", "bad_values"),
    ),
    Mutant(
        "a sweep continues another space's study of the same name",
        "digits/tools/sweep/study.py",
        "    check_same_trials(study, sweep)\n",
        "",
        ("tests/test_sweep.py", "-k", "other_trials"),
    ),
    Mutant(
        "a trial stopped by Ctrl-C is recorded as failed, and never runs again",
        "digits/tools/sweep/study.py",
        "                    with exit_130_on_ctrl_c():",
        "                    with contextlib.nullcontext():",
        ("tests/test_sweep.py", "-k", "between_folds"),
    ),
    Mutant(
        "Ctrl-C sent to the sweep alone leaves its workers training",
        "digits/tools/sweep/__main__.py",
        "            worker.send_signal(signal.SIGINT)",
        "            pass",
        ("tests/test_sweep.py", "-k", "ctrl_c and command"),
    ),
    Mutant(
        "a damaged image Pillow fails on with a TypeError is a traceback",
        "digits/people/preprocess.py",
        "    TypeError,\n    OverflowError,",
        "    OverflowError,",
        ("tests/test_predict.py", "-k", "bad_files"),
    ),
    Mutant(
        "a photo's EXIF orientation is ignored",
        "digits/people/preprocess.py",
        "        return ImageOps.exif_transpose(image)",
        "        return image",
        ("tests/test_preprocess.py", "-k", "photo"),
    ),
    Mutant(
        "the server's own 404 and 405 come back as FastAPI's detail",
        "digits/reading/serve/app.py",
        "from starlette.exceptions import HTTPException",
        "from fastapi.exceptions import HTTPException",
        ("tests/test_serve.py", "-k", "does_not_serve"),
    ),
    Mutant(
        "an --output inside a file is a traceback",
        "digits/reading/export.py",
        "        check_can_hold_files(config.output.parent)",
        "        pass",
        ("tests/test_export.py", "-k", "inside_a_file"),
    ),
    Mutant(
        "compare keeps every score in memory until the last split",
        "digits/tools/compare.py",
        "                add_to_csv(split_scores, output)\n                scores += split_scores",
        "                scores += split_scores",
        ("tests/test_compare.py", "-k", "stopped_midway"),
        also=(
            (
                "digits/tools/compare.py",
                "    print(summary_table(scores))",
                "    add_to_csv(scores, output)\n    print(summary_table(scores))",
            ),
        ),
    ),
    Mutant(
        "the calibration error scores the images that have no one class",
        "digits/training/calibrate.py",
        "                ignore_index=NO_CLASS,\n",
        "",
        ("tests/test_calibration.py", "-k", "no_class"),
    ),
    Mutant(
        "processes that open a new SQLite study at once do not take turns",
        "digits/tools/sweep/study.py",
        "    if database is not None and os.access(database.parent, os.W_OK):\n"
        '        return held(database.with_name(f"{database.name}.lock"))\n',
        "",
        ("tests/test_sweep.py", "-k", "at_once"),
    ),
    Mutant(
        "the accuracy counts the images that have no one class",
        "digits/metrics.py",
        "self.counted += has_class.sum()",
        "self.counted += target.numel()",
        ("tests/test_model.py", "-k", "accuracy"),
    ),
    Mutant(
        "digits predict under DDP counts one process's share of the images",
        "digits/training/calibrate.py",
        'trainer.strategy.reduce(device_counts, reduce_op="sum")',
        "device_counts",
        ("tests/test_trust.py", "--runslow", "-k", "two_processes_predict"),
    ),
    Mutant(
        "last.ckpt of an interrupted run is taken for an earlier state than interrupted.ckpt",
        "digits/training/folders.py",
        "if path.name == INTERRUPTED_CHECKPOINT or path.resolve() == given:",
        "if path.resolve() == given:",
        ("tests/test_trust.py", "-k", "interrupted_run_is_its_latest"),
    ),
    Mutant(
        "a bug in a data module of your own passes for a bad value, in one line",
        "digits/errors.py",
        "        if _caused_by(error, BugInYourCode):\n            raise\n",
        "",
        ("tests/test_own_data.py", "-k", "bug_in_your"),
    ),
    Mutant(
        "a one-cycle schedule on a run bounded by time alone fails after the run's folder",
        "digits/cli.py",
        "    if epochs_unbounded:\n",
        "    if False:\n",
        ("tests/test_trust.py", "-k", "user_errors"),
    ),
    Mutant(
        "digits predict ends without a word",
        "digits/training/calibrate.py",
        "        if read and trainer.is_global_zero:\n",
        "        if False:\n",
        ("tests/test_cli.py", "-k", "subcommands_fit"),
    ),
    Mutant(
        "training on from an earlier checkpoint continues in the earlier run's folder",
        "digits/training/folders.py",
        "if resumed is not None and not continues_its_run(checkpoint, ckpt_path):",
        "if False:",
        ("tests/test_trust.py", "-k", "before_the_runs_last"),
    ),
    Mutant(
        "validate, test and predict use an untrained network without --ckpt_path",
        "digits/cli.py",
        "    if not ckpt_path:\n        raise ValueError(\n",
        "    if False:\n        raise ValueError(\n",
        ("tests/test_cli.py", "-k", "checkpoint_is_required"),
    ),
    Mutant(
        "digits.compare writes over an earlier comparison",
        "digits/tools/compare.py",
        "output = config.output or unused_path(Path(DEFAULT_OUTPUT), is_file=True)",
        "output = config.output or Path(DEFAULT_OUTPUT)",
        ("tests/test_compare.py", "-k", "configured_run"),
    ),
    Mutant(
        "the gate's trained bank falls back to pen digits the run never trained on",
        "scripts/second_gate.py",
        "    for arguments in settings_of(trained.data_settings, PenDigits):\n"
        "        return PenDigits(**arguments)\n",
        "    return PenDigits()\n",
        ("tests/test_second_gate.py",),
    ),
    Mutant(
        "an overlap may be one digit over itself, or a one",
        "digits/people/non_digits.py",
        "if labels[first] != labels[second] and 1 not in (labels[first], labels[second]):",
        "if True:",
        ("tests/test_non_digits.py",),
    ),
    Mutant(
        "validation and test figures are logged at the epoch's end, under every loader",
        "digits/model.py",
        '        return self._evaluation_step(batch, "test", dataloader_idx)\n',
        '        return self._step(batch, self.metrics[self._key("test", dataloader_idx)])[1]\n\n'
        "    def on_test_epoch_end(self) -> None:\n"
        "        for index in range(1 + len(self.hparams.eval_sets)):\n"
        '            for name, metric in self.metrics[self._key("test", index)].items():\n'
        "                self.log(name, metric)\n",
        ("tests/test_fit.py", "-k", "own_loader"),
    ),
    Mutant(
        "the calibration error is logged at the epoch's end, under every loader",
        "digits/training/calibrate.py",
        "if batch_idx + 1 == trainer.num_test_batches[dataloader_idx]:",
        "if False:",
        ("tests/test_cli.py", "-k", "own_loader"),
    ),
    Mutant(
        "SVC's kernel fixed to raw pixels",
        "digits/tools/baseline.py",
        'SVC(gamma="scale")',
        "SVC(gamma=0.001)",
        ("tests/test_baseline.py",),
    ),
    Mutant(
        "export leaves the scaling out",
        "digits/reading/export.py",
        "logits = self.network((pixels - self.mean) / self.std)",
        "logits = self.network(pixels)",
        ("tests/test_export.py",),
    ),
    Mutant(
        "predict leaves the checkpoint's scaling out",
        "digits/reading/trained.py",
        "return torch.from_numpy(self.scaling(pixels))",
        "return torch.from_numpy(np.asarray(pixels, dtype=np.float32))",
        ("tests/test_predict.py",),
    ),
    Mutant(
        "predict does not invert a light background",
        "digits/people/preprocess.py",
        "if np.median(gray[::4, ::4]) > 127:",
        "if False:",
        ("tests/test_predict.py",),
    ),
    Mutant(
        "a checkpoint's settings are never adopted",
        "digits/training/resume.py",
        "if key in group_defaults and _same(value, group_defaults[key]):",
        "if False:",
        ("tests/test_trust.py", "-k", "takes_the_network"),
    ),
    Mutant(
        "DDP evaluation uses Lightning's default sampler",
        "digits/data.py",
        "if world_size > 1:",
        "if False:",
        ("tests/test_trust.py", "-k", "two_process and SIGTERM"),
    ),
    Mutant(
        "ties keep the first epoch",
        "digits/training/lightning_internals.py",
        "return ties or super().check_monitor_top_k(trainer, current)",
        "return super().check_monitor_top_k(trainer, current)",
        ("tests/test_fit.py",),
    ),
    Mutant(
        "a run trained on in a new folder tests the earlier run's best file",
        "digits/training/summary.py",
        "    best_path = this_runs_best(trainer)\n",
        '    best_path = checkpoint.best_model_path if checkpoint is not None else ""\n',
        ("tests/test_trust.py", "-k", "new_folder_without_validation"),
    ),
    Mutant(
        "a second Ctrl-C cuts the save of interrupted.ckpt",
        "digits/training/interrupt.py",
        "            self._previous.pop(signal.SIGINT, None)\n",
        "            pass\n",
        ("tests/test_trust.py", "-k", "second_ctrl_c"),
    ),
    Mutant(
        "fitting the kept checkpoints leaves last.ckpt's weights in the model",
        "digits/training/calibrate.py",
        '            pl_module.load_state_dict(read_checkpoint(path)["state_dict"] if path else '
        "final)\n",
        "            if path:\n"
        '                pl_module.load_state_dict(read_checkpoint(path)["state_dict"])\n',
        ("tests/test_trainer_flags.py", "-k", "no_epoch_validated"),
        also=(
            (
                "digits/training/calibrate.py",
                "        pl_module.load_state_dict(final)\n",
                "        pass\n",
            ),
        ),
    ),
    Mutant(
        "with save_top_k above 1, the first of tied epochs is named the best",
        "digits/training/lightning_internals.py",
        "        return tied[-1]\n",
        "        return tied[0]\n",
        ("tests/test_fit.py", "-k", "latest_best"),
    ),
    Mutant(
        "the final weights are tested instead of the best",
        "digits/training/summary.py",
        "ckpt_path=best_path or None)",
        "ckpt_path=None)",
        ("tests/test_fit.py",),
    ),
    Mutant(
        "calibration sees validation images through the training transforms",
        "digits/training/calibrate.py",
        "features, targets = move_data_to_device(batch, pl_module.device)",
        "features, targets = trainer.strategy.batch_to_device(batch)",
        ("tests/test_composition.py", "-k", "every_feature"),
    ),
    Mutant(
        "the temperature is fitted to the final weights, not each checkpoint's own",
        "digits/training/calibrate.py",
        'read_checkpoint(path)["state_dict"] if path else final',
        "final",
        ("tests/test_calibration.py",),
    ),
    Mutant(
        "last.ckpt is not calibrated on its own weights",
        "digits/training/calibrate.py",
        "return [*others, best_path]",
        "return [best_path]",
        ("tests/test_calibration.py",),
    ),
    Mutant(
        "last.ckpt is the best epoch",
        "digits/cli.py",
        '"last_checkpoint.monitor": None,',
        '"last_checkpoint.monitor": "val/acc", "last_checkpoint.mode": "max",',
        ("tests/test_fit.py",),
    ),
    Mutant(
        "the confusion matrix is transposed",
        "digits/training/pictures.py",
        "matrix.update(predictions, targets)",
        "matrix.update(targets, predictions)",
        ("tests/test_pictures.py",),
    ),
    Mutant(
        "the test split is not stratified",
        "digits/dataset.py",
        "test_size=test_size, stratify=labels,",
        "test_size=test_size, stratify=None,",
        ("tests/test_data.py",),
    ),
    Mutant(
        "every fold validates on the first fold",
        "digits/dataset.py",
        "[fold]",
        "[0]",
        ("tests/test_data.py",),
    ),
    Mutant(
        "the shuffle ignores the epoch",
        "digits/batching.py",
        "(self.seed + self.epoch) % 2**63",
        "self.seed % 2**63",
        ("tests/test_data.py",),
    ),
    Mutant(
        "shifts drawn from the global random state",
        "digits/people/augment.py",
        "generator.manual_seed(seed)",
        "generator.manual_seed(int(torch.randint(0, 2**62, (1,))))",
        ("tests/test_trust.py", "-k", "shifts"),
    ),
    Mutant(
        "augmentation drawn from the global random state",
        "digits/people/augment.py",
        "torch.manual_seed(seed)",
        "pass",
        ("tests/test_trust.py", "-k", "never_stopped"),
    ),
    Mutant(
        "augmentation changes validation images too",
        "digits/data.py",
        "or self.trainer is None or not self.trainer.training:",
        "or self.trainer is None:",
        ("tests/test_drawn_data.py",),
    ),
    Mutant(
        "drawn digits mixed into the data set's validation split",
        "digits/data.py",
        'if split == "train":\n                    parts.append((scaling(pixels), source_targets))',
        'if split != "test":\n                    parts.append((scaling(pixels), source_targets))',
        ("tests/test_drawn_data.py",),
    ),
    Mutant(
        "a drawing keeps its pen's ink",
        "digits/people/preprocess.py",
        "wanted = round(DATASET_INK * (inner / BITMAP_SIDE) ** 2)\n    for _ in range(INK_ROUNDS):",
        "wanted = int(inked.sum())\n    for _ in range(1):",
        ("tests/test_preprocess.py",),
    ),
    Mutant(
        "a sweep fold scored by its best epoch",
        "digits/tools/sweep/objective.py",
        "return history.values[-1]",
        "return max(history.values)",
        ("tests/test_sweep.py", "-k", "last_epoch"),
    ),
    Mutant(
        "every sweep worker samples with the same seed",
        "digits/tools/sweep/worker.py",
        "return optuna.samplers.TPESampler(seed=seed * 1000 + number)",
        "return optuna.samplers.TPESampler(seed=seed)",
        ("tests/test_sweep.py", "-k", "own_values"),
    ),
    Mutant(
        "sweep workers on different machines share no lock",
        "digits/tools/sweep/study.py",
        "if is_postgresql(sweep.storage):",
        "if False:",
        ("tests/test_sweep.py", "-k", "postgresql"),
    ),
    Mutant(
        "sweep workers numbered per machine, not per study",
        "digits/tools/sweep/worker.py",
        "study.sampler = worker_sampler(sweep.seed, join(study, lock))",
        "study.sampler = worker_sampler(sweep.seed, join(study, lock) % sweep.n_jobs)",
        ("tests/test_sweep.py", "-k", "postgresql"),
    ),
    Mutant(
        "a sweep run again on a whole study starts its workers anyway",
        "digits/tools/sweep/__main__.py",
        "if all_finished(study.get_trials(deepcopy=False), sweep.trials):",
        "if False:",
        ("tests/test_sweep.py", "-k", "continues_the_study"),
    ),
    Mutant(
        "a worker with nothing to start leaves a lost trial behind",
        "digits/tools/sweep/study.py",
        "if all_finished(trials, n_trials):",
        "if True:",
        ("tests/test_sweep.py", "-k", "killed_worker"),
    ),
    Mutant(
        "the server accepts a NaN among finite pixels",
        "digits/people/preprocess.py",
        "if not np.isfinite(array).all():",
        "if not np.isfinite(array).any():",
        ("tests/test_serve.py", "-k", "bad_input"),
    ),
    Mutant(
        "the export leaves the temperature out",
        "digits/reading/export.py",
        "return (logits / self.temperature).softmax(dim=-1)",
        "return logits.softmax(dim=-1)",
        ("tests/test_export.py",),
    ),
    Mutant(
        "the temperature is never fitted",
        "digits/reading/sure.py",
        "temperature = fit_temperature(logits, labels)",
        "temperature = 1.0",
        ("tests/test_calibration.py", "tests/test_export.py"),
    ),
    Mutant(
        "a validation set read without a mistake sharpens every probability to 1",
        "digits/reading/sure.py",
        "    if bool((logits.argmax(dim=-1) == labels).all()):\n        return 1.0\n",
        "",
        ("tests/test_calibration.py", "-k", "without_a_mistake"),
    ),
    Mutant(
        "predict shows the uncalibrated probabilities",
        "digits/reading/trained.py",
        "probabilities = (logits / self.temperature).softmax(dim=-1).numpy()",
        "probabilities = logits.softmax(dim=-1).numpy()",
        ("tests/test_predict.py",),
    ),
    Mutant(
        "a dot can be a sure digit",
        "digits/reading/trained.py",
        "sure = bool(how_sure >= limit) and not is_small",
        "sure = bool(how_sure >= limit)",
        ("tests/test_predict.py",),
    ),
    Mutant(
        "an older checkpoint's calibration in the model is dropped",
        "digits/reading/checkpoint.py",
        "        callbacks.setdefault(CALIBRATION_STATE, {**NO_CALIBRATION, **old})\n",
        "",
        ("tests/test_calibration.py", "-k", "in_the_model"),
    ),
    Mutant(
        "a threshold splits readings of equal probability",
        "digits/reading/sure.py",
        "allowed = (error <= target_error) & last_of_run",
        "allowed = error <= target_error",
        ("tests/test_calibration.py", "-k", "equal_probability"),
    ),
    Mutant(
        "threshold_target.py reads the half it fitted the threshold on",
        "scripts/threshold_target.py",
        "for fit_half, read_half in ((0, 1), (1, 0)):",
        "for fit_half, read_half in ((0, 0), (1, 1)):",
        ("tests/test_threshold_target.py",),
    ),
    Mutant(
        "the expected rule counts the mistakes after all",
        "digits/reading/sure.py",
        'if rule == "expected":',
        "if False:",
        ("tests/test_calibration.py", "-k", "expected_rule or rule_it_is_given"),
    ),
    Mutant(
        "the expected rule takes the surest reading's expectation for all of them",
        "digits/reading/sure.py",
        "expected_error = (1 - confidence.double()).cumsum(0) / taken",
        "expected_error = (1 - confidence.double())[:1].expand(len(taken))",
        ("tests/test_calibration.py", "-k", "expected"),
    ),
    Mutant(
        "a run's threshold ignores --calibrate.rule",
        "digits/training/calibrate.py",
        "logits, labels, self.target_error, sets, self.rule",
        "logits, labels, self.target_error, sets",
        ("tests/test_calibration.py", "-k", "rule_it_is_given"),
    ),
    Mutant(
        "the threshold is fitted on the pooled validation readings, not set by set",
        "digits/reading/sure.py",
        "sets = torch.zeros_like(labels) if sets is None else sets.detach().cpu()",
        "sets = torch.zeros_like(labels)",
        ("tests/test_calibration.py", "-k", "every_validation_set"),
    ),
    Mutant(
        "the drawn-digit command counts a family trained on as never trained on",
        "digits/people/drawn.py",
        "never = [share for family, share in by_family.items() if family not in trained_on]",
        "never = list(by_family.values())",
        ("tests/test_drawn.py", "-k", "non_digits_are_counted"),
    ),
    Mutant(
        "a non-digit's target is a class",
        "digits/people/non_digits.py",
        "targets = np.full((len(pixels), classes), self.weight / classes, dtype=np.float32)",
        "targets = np.eye(classes, dtype=np.float32)[np.zeros(len(pixels), dtype=int)]",
        ("tests/test_drawn_data.py", "-k", "non_digits"),
    ),
    Mutant(
        "the drawn-digit command reads the rows the model trained on",
        "digits/people/drawn.py",
        "chosen = splits.indices[rows]",
        'chosen = splits.indices["train"]',
        ("tests/test_drawn.py", "-k", "prints_the_accuracy"),
    ),
    Mutant(
        "compare's baselines ignore the run's data settings",
        "digits/tools/compare.py",
        "splits = DigitsSplits.from_settings(data)",
        "splits = DigitsSplits(split_seed=data['split_seed'])",
        ("tests/test_compare.py",),
    ),
    Mutant(
        "Ctrl-C saves nothing",
        "digits/training/interrupt.py",
        "trainer.save_checkpoint(saved, weights_only=False)",
        "pass",
        ("tests/test_trust.py", "-k", "interrupt"),
    ),
    Mutant(
        "the processes of a DDP run do not agree when to stop",
        "digits/training/interrupt.py",
        "        if trainer.world_size == 1:\n            return received\n",
        "        return received\n",
        ("tests/test_trust.py", "-k", "two_process and SIGTERM"),
    ),
    Mutant(
        "a resumed run forgets its best val/acc",
        "digits/model.py",
        "self.val_acc_best.persistent(True)",
        "pass",
        ("tests/test_trust.py", "-k", "past_the_best"),
    ),
    Mutant(
        "the batches of one accumulated step are changed alike",
        "digits/data.py",
        "+ training_batches_before(self.trainer)",
        "+ self.trainer.global_step",
        ("tests/test_drawn_data.py", "-k", "accumulation"),
    ),
    Mutant(
        "every DDP process deforms its images alike",
        "digits/data.py",
        "batch_seed += self.trainer.global_rank * RANK_STREAM",
        "pass",
        ("tests/test_drawn_data.py", "-k", "ddp"),
    ),
    Mutant(
        "a diverged run, which has written its logs, exits as a command-line mistake",
        "digits/errors.py",
        "raise fail(str(error), DIVERGED) from None",
        "raise fail(str(error)) from None",
        ("tests/test_trust.py", "-k", "diverging_training_stops"),
    ),
    Mutant(
        "a bug while a subcommand runs is called the user's mistake",
        "digits/__main__.py",
        " exit_on_training_failure(), exit_2_on_usage_error():",
        " exit_on_training_failure(), reading_the_command_line():",
        ("tests/test_errors.py",),
        also=(
            (
                "digits/__main__.py",
                "from digits.errors import exit_2_on_usage_error, exit_on_training_failure",
                "from digits.errors import exit_on_training_failure, reading_the_command_line",
            ),
        ),
    ),
    Mutant(
        "LightningCLI's --optimizer replaces the model's Adam",
        "digits/cli.py",
        "check_no_injected_optimizer(config)",
        "pass",
        ("tests/test_cli.py", "-k", "refused"),
    ),
    Mutant(
        "best.yaml forgets the sweep's --config and --fit_args",
        "digits/tools/sweep/objective.py",
        "trial.set_user_attr(FIT_ARGS, settings)",
        "pass",
        ("tests/test_sweep.py", "-k", "whole_winning"),
    ),
    Mutant(
        "the network loses its hidden nonlinearity",
        "digits/networks.py",
        "layers += [nn.Linear(width, hidden), nn.ReLU()]",
        "layers += [nn.Linear(width, hidden)]",
        ("tests/test_fit.py", "tests/test_model.py", "-k", "accuracy or tutorials_network"),
    ),
    Mutant(
        "--data of a bare module name is left to jsonargparse's words",
        "digits/training/own_data.py",
        """        if kind := module_kind(name):
            raise names_a_module(name, kind, flag)
""",
        "",
        ("tests/test_own_data.py", "--runslow", "-k", "cannot_be_imported"),
    ),
    Mutant(
        "nested help names the file Python ran",
        "digits/cli.py",
        'kwargs.setdefault("prog", self.command)',
        "pass",
        ("tests/test_own_data.py", "-k", "help_of_a_data_class"),
    ),
    Mutant(
        "--data of a package (any folder) says it is a module",
        "digits/training/own_data.py",
        'if kind == "package":',
        "if False:",
        ("tests/test_own_data.py", "--runslow", "-k", "cannot_be_imported"),
    ),
    Mutant(
        "test does not say the folder its scores went to",
        "digits/cli.py",
        """    def after_test(self) -> None:
        say_where_scores_went(self.trainer)""",
        """    def after_test(self) -> None:
        pass""",
        ("tests/test_cli.py", "-k", "say_the_folder"),
    ),
    Mutant(
        "the MLP takes flattened images only",
        "digits/networks.py",
        "features = features.flatten(start_dim=1)",
        "pass",
        ("tests/test_model.py", "tests/test_own_data.py", "-k", "flatten"),
    ),
    Mutant(
        "the epoch loss is a mean over batches",
        "digits/model.py",
        "metrics.update(value=losses.detach(),",
        "metrics.update(value=losses.detach().mean(),",
        ("tests/test_fit.py",),
    ),
    Mutant(
        "a run without a logger writes into the working folder",
        "digits/training/folders.py",
        "trainer.default_root_dir = str(resumed or next_version(base))",
        "pass",
        ("tests/test_trainer_flags.py", "-k", "logger"),
    ),
    Mutant(
        "pictures ignore the trainer's precision",
        "digits/training/calibrate.py",
        "logits = model(precision.convert_input(features.to(model.device))).float()",
        "logits = model(features.to(model.device)).float()",
        ("tests/test_trainer_flags.py", "-k", "precision"),
    ),
    Mutant(
        "the train/* values of a checkpointed epoch are not kept",
        "digits/training/resume.py",
        "if missing:",
        "if False:",
        ("tests/test_trust.py", "-k", "past_the_best"),
    ),
    Mutant(
        "divergence is not checked",
        "digits/training/divergence.py",
        "if not torch.isfinite(mean):",
        "if False:",
        ("tests/test_trust.py", "-k", "diverging"),
    ),
    Mutant(
        "checkpoints are unpickled with code",
        "digits/reading/checkpoint.py",
        "weights_only=True)",
        "weights_only=False)",
        ("tests/test_trust.py", "-k", "run_code"),
    ),
    Mutant(
        "checkpoints are written in place",
        "digits/paths.py",
        'temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")',
        "temporary = target\n    target.unlink(missing_ok=True)",
        ("tests/test_trust.py", "-k", "midway"),
    ),
    Mutant(
        "a data module of your own is tested on the default split, not its checkpoint's",
        "digits/training/resume.py",
        'if "class_path" not in config.data:',
        "if True:",
        ("tests/test_own_data.py", "--runslow", "-k", "split_it_was"),
    ),
    Mutant(
        "a loss as the checkpoint monitor keeps its worst epoch",
        "digits/training/checkpoints.py",
        "mode=mode or better_direction(monitor)",
        'mode=mode or "max"',
        ("tests/test_trust.py", "-k", "lowest_epoch"),
    ),
    Mutant(
        "a checkpoint monitor validation does not log fails after the run's folder",
        "digits/cli.py",
        "if monitor is not None and monitor not in logged:",
        "if False:",
        ("tests/test_trust.py", "-k", "user_errors"),
    ),
    Mutant(
        "a scheduled run resumed for longer fails mid-run or warms up again",
        "digits/training/resume.py",
        "if steps == self.laid_out:",
        "if True:",
        ("tests/test_trust.py", "-k", "scheduled_run_for_longer"),
    ),
    Mutant(
        "a run told not to test fails after training",
        "digits/training/summary.py",
        'test_acc=results.get("test/acc"),',
        'test_acc=results["test/acc"],',
        ("tests/test_trainer_flags.py", "-k", "no_test_batches"),
    ),
    Mutant(
        "a logger-less run's config run again nests the new run inside the earlier one",
        "digits/training/folders.py",
        "if is_a_run_folder(base):",
        "if False:",
        ("tests/test_trainer_flags.py", "-k", "logger_less"),
    ),
    Mutant(
        "the tutorial trains zero epochs into a traceback",
        "digits/tutorial.py",
        "    if options.epochs < 1:\n",
        "    if False:\n",
        ("tests/test_bench.py", "-k", "bad_option"),
    ),
    Mutant(
        "the benchmark finds a bad fit argument only when its first run fails",
        "digits/bench/__main__.py",
        "                check_fit_args(fit_args)\n",
        "                pass\n",
        ("tests/test_bench.py", "-k", "before_anything"),
    ),
    Mutant(
        "a data class that cannot be imported is said as a wrong type",
        "digits/cli.py",
        "                check_named_data_class(named)\n",
        "                pass\n",
        ("tests/test_own_data.py", "--runslow", "-k", "cannot_be_imported"),
    ),
    Mutant(
        "Lightning's predict answers an unfamiliar image as sure",
        "digits/training/calibrate.py",
        '(probability >= self.threshold) & outputs.get("familiar", True)',
        "probability >= self.threshold",
        ("tests/test_familiar.py", "-k", "agree"),
    ),
    Mutant(
        "the tools read an unfamiliar image as sure when its probability is high",
        "digits/reading/trained.py",
        "np.where(familiar.numpy(), probabilities.max(axis=1), 0.0)",
        "probabilities.max(axis=1)",
        ("tests/test_familiar.py", "-k", "however_probable"),
    ),
    Mutant(
        "the cut-off lets a validation set lose more than its share",
        "digits/training/familiar.py",
        'interpolation="higher"',
        'interpolation="linear"',
        ("tests/test_familiar.py", "-k", "cutoff_fitted"),
    ),
    Mutant(
        "the neighbours are found among repeats and non-digits too",
        "digits/training/familiar.py",
        "    return torch.unique(digits_of(loader, device), dim=0)",
        "    return torch.cat([batch[0] for batch in every_batch(loader)]).to(device)",
        ("tests/test_familiar.py", "-k", "cutoff_fitted"),
    ),
    Mutant(
        "digits.drawn counts an unfamiliar non-digit as sure",
        "digits/people/drawn.py",
        "tops = {family: sureness for family, (_, sureness) in families.items()}",
        "tops = {family: p.max(axis=1) for family, (p, _) in families.items()}",
        ("tests/test_familiar.py", "--runslow", "-k", "drawn_counts"),
    ),
    Mutant(
        "a callback's own complaint is lost among the types jsonargparse tried",
        "digits/errors.py",
        '    if reason and "Subtypes" in details:',
        "    if False:",
        ("tests/test_errors.py", "-k", "union"),
    ),
    Mutant(
        "python -m digits predict --ckpt_path forgets the checkpoint's neighbour test",
        "digits/cli.py",
        "if not self.fitting and holds_familiarity(self.checkpoint) and not declines:",
        "if False:",
        ("tests/test_familiar.py", "-k", "without_its_config"),
    ),
    Mutant(
        "Lightning's predict reads with the config's neighbour, not the checkpoint's",
        "digits/training/familiar.py",
        "            self.fitted, pl_module, partial(",
        '            {**self.fitted, "neighbour": self.neighbour}, pl_module, partial(',
        ("tests/test_familiar.py", "-k", "agree"),
    ),
    Mutant(
        "the neighbour test is lost when Calibrate comes first",
        "digits/training/familiar.py",
        '            outputs["sure"] = outputs["sure"] & familiar\n',
        "            pass\n",
        ("tests/test_familiar.py", "-k", "agree"),
    ),
    Mutant(
        "the model keeps handing the callback its features after predicting",
        "digits/training/familiar.py",
        "LightningModule) -> None:\n        self.remove_hook()\n\n    def on_exception",
        "LightningModule) -> None:\n        pass\n\n    def on_exception",
        ("tests/test_familiar.py", "-k", "agree"),
    ),
    Mutant(
        "the page shows an unfamiliar drawing as any other not-sure one",
        "digits/reading/serve/page.html",
        'const why = answer.unfamiliar ? "\\nunlike the digits it learned" : "";',
        'const why = "";',
        ("tests/test_familiar.py", "--runslow", "-k", "page"),
    ),
    Mutant(
        "digits.predict does not say why an unfamiliar image is not sure",
        "digits/reading/trained.py",
        "unfamiliar = bool(how_sure == 0)",
        "unfamiliar = False",
        ("tests/test_familiar.py", "-k", "predict_says_why"),
    ),
    Mutant(
        "a negative split seed is blamed on the split sizes",
        "digits/dataset.py",
        "if not 0 <= split_seed < 2**32:",
        "if False:",
        ("tests/test_trust.py", "-k", "user_errors"),
    ),
    Mutant(
        "--data.help is left to jsonargparse's words",
        "digits/training/own_data.py",
        "named.append(NamedData(flag, value))  # a class path or name (or none), never a config",
        "pass",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "a data class named without its module is left to jsonargparse",
        "digits/training/own_data.py",
        "if name not in imported_data_class_names():",
        "if False:",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "--data ./folder is left to jsonargparse",
        "digits/training/own_data.py",
        "if Path(class_path).is_dir() and not is_dotted_name(class_path):",
        "if False:",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "ConvNet reads images that are not its square as if they were",
        "digits/networks.py",
        "        if not torch.jit.is_tracing() and not (",
        "        if False and not (",
        ("tests/test_model.py", "-k", "reshape"),
    ),
    Mutant(
        "a config file's data class is said as --data, which nobody typed",
        "digits/training/own_data.py",
        '        raise ValueError(f"{named.where}: {error}") from None\n',
        "        raise\n",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "nested help reads the rest of the line as its class's settings",
        "digits/cli.py",
        "    return [*others, *helps] if helps else args\n",
        "    return args\n",
        ("tests/test_cli.py", "-k", "ignores_what_follows"),
    ),
    Mutant(
        "--data naming a function or a module inside a module is said as a wrong type",
        "digits/training/own_data.py",
        "    if not (isinstance(found, type) and issubclass(found, L.LightningDataModule)):",
        "    if False:",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "a config whose data is a file of its own is read as this project's data",
        "digits/training/own_data.py",
        "        if isinstance(loaded, str):  # data: its_own.yaml",
        "        if False:  # data: its_own.yaml",
        ("tests/test_own_data.py", "-k", "file_of_its_own"),
    ),
    Mutant(
        "a DDP run that fails leaves its process group open to abort the exit",
        "digits/cli.py",
        "    except SystemExit:\n        close_process_group()\n        raise\n",
        "    except SystemExit:\n        raise\n",
        ("tests/test_trust.py", "-k", "closed_when"),
    ),
    Mutant(
        "a DDP subcommand's process group is not closed at its end",
        "digits/__main__.py",
        "    with process_group_closed_at_the_end(), exit_on_training_failure(),",
        "    with exit_on_training_failure(),",
        ("tests/test_trust.py", "-k", "closed_when"),
    ),
    Mutant(
        "ConvNet refuses images with their channel last",
        "digits/networks.py",
        "            or (len(sample) == 3 and sample[0] == side and sample[1] == side"
        " and sample[2] == 1)\n",
        "",
        ("tests/test_model.py", "-k", "channel_last"),
    ),
    Mutant(
        "nested help under a subcommand does not name it",
        "digits/cli.py",
        "main_parser_class, self.parser_class = self.parser_class, parser_class",
        "main_parser_class = self.parser_class",
        ("tests/test_cli.py", "-k", "nested_help"),
    ),
    Mutant(
        "--data.help (or --data) without a class is left to jsonargparse",
        "digits/training/own_data.py",
        'if not class_path or class_path.startswith("-"):  # --data.help, --data --other.flag',
        "if False:",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "a --data value that is no class path is looked up as a module",
        "digits/training/own_data.py",
        """    if not is_dotted_name(class_path):
        raise ValueError(""",
        """    if False:
        raise ValueError(""",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "reading a data module for its shape draws from the seeded generators",
        "digits/training/own_data.py",
        "        with isolate_rng(include_cuda=False):\n            yield",
        "        if True:\n            yield",
        ("tests/test_own_data.py", "-k", "leaves_the_seeded"),
    ),
    Mutant(
        "ConvNet's shape check warns in every TorchScript export",
        "digits/networks.py",
        "        if not torch.jit.is_tracing() and not (",
        "        if not (",
        ("tests/test_model.py", "-k", "traces_without"),
    ),
    Mutant(
        "--data digits.DigitsDataModule is taken for a config file's path",
        "digits/training/own_data.py",
        "if flag != HELP_FLAG and is_default_data(class_path):",
        "if False:",
        ("tests/test_own_data.py", "-k", "misnamed"),
    ),
    Mutant(
        "ddp_spawn and its kin train, then fail",
        "digits/cli.py",
        "    if launched_from_here := strategy_starting_processes_here(trainer.strategy):",
        "    if launched_from_here := None:",
        ("tests/test_trainer_flags.py", "-k", "started_from_this_one"),
    ),
]


def copy_of_repository(into: Path) -> Path:
    ignored = shutil.ignore_patterns(".git", ".venv", "lightning_logs", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, into / "repo", ignore=ignored)
    return into / "repo"


def run(mutant: Mutant) -> tuple[bool, float]:
    """(killed, seconds): whether a test failed with the mutant in place."""
    return run_tests(mutant, mutant.tests)


def run_tests(mutant: Mutant, tests: tuple[str, ...]) -> tuple[bool, float]:
    with tempfile.TemporaryDirectory(prefix="digits-mutant-") as scratch:
        repo = copy_of_repository(Path(scratch))
        for file, old, new in mutant.edits:
            source = repo / file
            text = source.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"{mutant.name}: the text to change is not in {file} once")
            source.write_text(text.replace(old, new))
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "--runslow",
                *tests,
            ],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},  # the copy, not the installed tree
            capture_output=True,
            text=True,
            check=False,
        )
        # 0: every test passed (the mutant survived); 1: a test failed (killed). Any other
        # code (a copy that does not import, nothing selected) ran no test, and must not
        # pass for a kill.
        if result.returncode not in (0, 1):
            output = (result.stdout + result.stderr)[-500:]
            raise SystemExit(
                f"{mutant.name}: pytest ran no test (exit {result.returncode}): {output}"
            )
        return result.returncode == 1, time.perf_counter() - started


def main() -> None:
    words = sys.argv[1:]
    chosen = [m for m in MUTANTS if not words or any(w in m.name for w in words)]
    control = Mutant("no change (the copy's tests pass)", "digits/data.py", "", "", ())
    if run_tests(control, ("tests/test_data.py",))[0]:
        raise SystemExit("the unchanged copy fails its tests: nothing to learn from mutants")
    survivors = []
    for mutant in chosen:
        killed, seconds = run(mutant)
        print(f"{'killed  ' if killed else 'SURVIVED'} {seconds:5.1f}s  {mutant.name}", flush=True)
        if not killed:
            survivors.append(mutant.name)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants killed")
    raise SystemExit(1 if survivors else 0)


if __name__ == "__main__":
    main()
