"""The search space: a YAML file of ``python -m digits.fit`` keys and Optuna distributions.

::

    metric: val/acc          # or val/loss
    direction: maximize      # or minimize
    trials: 40               # the default for --trials
    fixed:                   # optional: the same value in every trial
      data.scale: standard
    params:                  # any key of python -m digits.fit
      model.lr: {low: 1.0e-4, high: 3.0e-2, log: true}                  # FloatDistribution
      trainer.max_epochs: {low: 20, high: 200, step: 20}                 # IntDistribution
      model.network.init_args.hidden_sizes: {choices: [[32], [256, 128]]}  # CategoricalDistribution

Each mapping holds the keyword arguments of Optuna's ``FloatDistribution`` (``low`` or
``high`` a float), ``IntDistribution`` (both ints) or ``CategoricalDistribution``
(``choices``). Optuna's categorical values must be scalars, so a choice that is a list
is kept in the study as its YAML text (``"[256, 128]"``) and read back for the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

METRICS = ("val/acc", "val/loss")
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class SearchSpace:
    """What to vary, what to optimise, and how many trials by default."""

    params: dict[str, BaseDistribution]
    metric: str = "val/acc"
    direction: Direction = "maximize"
    trials: int = 20
    fixed: dict[str, Any] = field(default_factory=dict)

    def fit_args(self, values: dict[str, Any]) -> list[str]:
        """``python -m digits.fit`` arguments: the fixed settings, then this trial's values."""
        settings = {**self.fixed, **{key: decode(value) for key, value in values.items()}}
        return [f"--{key}={as_argument(value)}" for key, value in settings.items()]

    def lowest(self) -> dict[str, Any]:
        """Every parameter at its lowest value or first choice."""
        return {key: _edges(dist)[0] for key, dist in self.params.items()}

    def every_edge(self) -> Iterator[tuple[str, Any, dict[str, Any]]]:
        """(parameter, value, all values) for each bound and choice that is not the lowest,
        the others at their lowest.

        Building a run from ``lowest()`` and from each of these shows before any trial
        whether the CLI accepts every value the sampler could draw at the edges of the space.
        """
        lowest = self.lowest()
        for key, dist in self.params.items():
            for edge in _edges(dist):
                if edge != lowest[key]:
                    yield key, edge, {**lowest, key: edge}


def suggest(trial: optuna.Trial, key: str, dist: BaseDistribution) -> Any:
    """The trial's value for one parameter, through Optuna's public ``suggest_*`` methods."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def load_space(path: str | Path) -> SearchSpace:
    """The space file, checked; a one-line ``ValueError`` for anything wrong in it."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"space file not found: {file}")
    try:
        text = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{file} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(text, dict):
        raise ValueError(f"{file} must be a mapping with params:")
    unknown = set(text) - {"metric", "direction", "trials", "fixed", "params"}
    if unknown:
        raise ValueError(f"{file}: unknown key {sorted(unknown)[0]!r}; expected metric, "
                         "direction, trials, fixed, params")  # fmt: skip
    metric = text.get("metric", "val/acc")
    if metric not in METRICS:
        raise ValueError(f"{file}: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    direction = text.get("direction", "maximize" if metric == "val/acc" else "minimize")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"{file}: direction must be maximize or minimize, got {direction!r}")
    trials = text.get("trials", 20)
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"{file}: trials must be a positive integer, got {trials!r}")
    params = text.get("params")
    if not isinstance(params, dict) or not params:
        raise ValueError(f"{file}: params must map at least one fit key to a distribution")
    fixed = text.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise ValueError(f"{file}: fixed must map fit keys to values")
    return SearchSpace(
        params={key: distribution(key, spec) for key, spec in params.items()},
        metric=metric,
        direction=direction,
        trials=trials,
        fixed=fixed,
    )


def distribution(key: str, spec: Any) -> BaseDistribution:
    """The Optuna distribution a mapping describes, checked by Optuna itself."""
    if not isinstance(spec, dict):
        raise ValueError(f"params.{key} must be a mapping such as {{low: 1, high: 8}}")
    try:
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list):
                raise ValueError(f"choices must be a list, got {choices!r}")
            others = {name: value for name, value in spec.items() if name != "choices"}
            return CategoricalDistribution([encode(choice) for choice in choices], **others)
        if isinstance(spec.get("low"), int) and isinstance(spec.get("high"), int):
            return IntDistribution(**spec)
        return FloatDistribution(**spec)
    except (TypeError, ValueError) as error:
        raise ValueError(f"params.{key}: {str(error).splitlines()[0]}") from None


def encode(choice: Any) -> Any:
    """A choice as Optuna can store it: scalars as they are, lists as their YAML text."""
    if choice is None or isinstance(choice, (bool, int, float, str)):
        return choice
    return yaml.safe_dump(choice, default_flow_style=True).strip()


def decode(value: Any) -> Any:
    """A stored choice back as the value the run gets."""
    if isinstance(value, str) and value.startswith(("[", "{")):
        return yaml.safe_load(value)
    return value


def as_argument(value: Any) -> str:
    """A value as the command line writes it (lists and mappings in YAML flow style)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def _edges(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    high = dist.high
    if isinstance(dist, IntDistribution) and dist.step > 1:
        high = dist.low + (dist.high - dist.low) // dist.step * dist.step
    return [dist.low, high]
