"""What a sweep ends with: the top trials, which settings mattered, and the winner's config."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from digits.sweep.space import SearchSpace, decode, nested
from digits.sweep.study import finished, lost_with_a_worker


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


def write_best_config(
    study: optuna.Study,
    best: FrozenTrial,
    space: SearchSpace,
    output: Path,
    network_class: str | None,
) -> None:
    """``best.yaml``: the winning values as a config for ``python -m digits.fit --config``."""
    settings: dict[str, Any] = {key: decode(value) for key, value in best.params.items()}
    settings = {**space.fixed, **settings}
    arguments_without_class = any(key.startswith("model.network.init_args.") for key in settings)
    if arguments_without_class and "model.network" not in settings and network_class:
        settings = {"model.network.class_path": network_class, **settings}
    folds = [value for key, value in sorted(best.user_attrs.items()) if key.startswith("fold_")]
    header = (
        f"# The winner of sweep {study.study_name!r}: trial #{best.number}, mean "
        f"{space.metric} {best.value:.4f} over its cross-validation folds\n"
        f"# ({', '.join(f'{value:.4f}' for value in folds if value is not None)}).\n"
        f"#   python -m digits.fit --config {output}\n"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(header + yaml.safe_dump(nested(settings), sort_keys=False))
