"""What a sweep ends with: the top trials, which settings mattered, and the winner's config."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from digits.fit import build
from digits.tools.sweep.objective import FIT_ARGS
from digits.tools.sweep.space import SearchSpace, decode
from digits.tools.sweep.study import finished, lost_with_a_worker


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best first."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")


def summary(study: optuna.Study, space: SearchSpace, top: int = 5) -> str:
    trials = study.get_trials(deepcopy=False)
    done = finished(trials)
    states = {state: sum(t.state == state for t in done) for state in TrialState}
    lines = [
        f"study {study.study_name}: {len(done)} trials finished "
        f"({states[TrialState.COMPLETE]} complete, {states[TrialState.PRUNED]} pruned, "
        f"{states[TrialState.FAIL]} failed); {len(lost_with_a_worker(trials))} lost with "
        "a worker and run again",
    ]
    best = ranked(study)[:top]
    if best:
        lines.append(f"top trials by mean {space.metric} over the folds:")
        for trial in best:
            values = ", ".join(f"{key}={decode(value)}" for key, value in trial.params.items())
            lines.append(f"  #{trial.number:<4} {trial.value:.4f}  {values}")
    for trial in done:
        if trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs:
            lines.append(f"  #{trial.number:<4} failed: {trial.user_attrs['fail_reason']}")
    importances = parameter_importances(study)
    if importances:
        lines.append("parameter importances (fANOVA):")
        lines += [f"  {key:44} {value:.3f}" for key, value in importances.items()]
    return "\n".join(lines)


def parameter_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's importance of each parameter; empty while too few trials completed."""
    if len(ranked(study)) < 2:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a note when too few trials differ to tell
            return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same value
        return {}


def fit_config(args: list[str]) -> str:
    """The whole config ``python -m digits.fit ARGS`` trains with, as YAML (its config.yaml).

    Parsed afresh by the CLI's own parser rather than taken from the built CLI: building
    points the config at a run folder of its own (``--trainer.logger false`` picks the
    next ``version_N``), which a config to train from again must not name.
    """
    parser = build(args).parser
    return parser.dump(parser.parse_args(args), skip_none=False)


def write_best_config(
    study: optuna.Study, best: FrozenTrial, space: SearchSpace, output: Path, base_args: list[str]
) -> None:
    """``best.yaml``: the winning trial's whole config, under a header naming it.

    Whole so that ``python -m digits.fit --config best.yaml`` alone trains what was
    cross-validated: the trial's values on top of the sweep's ``--config`` files and
    ``--fit_args`` (a config of only the swept values would train the rest at the
    defaults). What only made it a fold run is not in it: the fold, the trial's logger
    folder, no checkpoints. ``base_args`` are this command's ``--config`` files and
    ``--fit_args``, for a trial of a study begun before trials recorded their own.
    """
    args = best.user_attrs.get(FIT_ARGS)
    if args is None:
        args = [*base_args, *space.fit_args(best.params)]
    folds = [value for key, value in sorted(best.user_attrs.items()) if key.startswith("fold_")]
    header = (
        f"# The winner of sweep {study.study_name!r}: trial #{best.number}, mean "
        f"{space.metric} {best.value:.4f} over its cross-validation folds\n"
        f"# ({', '.join(f'{value:.4f}' for value in folds if value is not None)}).\n"
        "# Its whole config: the sweep's --config files and --fit_args under the trial's\n"
        "# values, without what made it a fold run (the fold, its logger, no checkpoints).\n"
        f"#   python -m digits.fit --config {output}\n"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(header + fit_config(args))
