"""The tutorial's question, asked fairly: classical models on exactly the same split.

Each scikit-learn model is trained on the training split that a Lightning run with the
same data settings trains on (same ``split_seed``, same scaling) and scored on its test
split, so its number stands beside that run's ``test/acc``.

Usage::

    python -m digits.baseline
    python -m digits.baseline --models '[random_forest, svc]' --data.split_seed 3
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonargparse import ArgumentParser

from digits.dataset import DigitsSplits
from digits.errors import exit_on_user_error

Model = Literal["random_forest", "svc", "knn", "logistic_regression"]
ModelFactory = Callable[[int], Any]


def baseline_models() -> dict[str, ModelFactory]:
    """Name -> factory taking a seed: the tutorial's forest and the usual suspects."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    return {
        "random_forest": lambda seed: RandomForestClassifier(random_state=seed),
        # gamma=0.001 is scikit-learn's own digits example, tuned for raw 0..16 pixels.
        "svc": lambda seed: SVC(gamma=0.001),
        "knn": lambda seed: KNeighborsClassifier(n_neighbors=3),
        # Raw pixels need more than the default 100 iterations to converge.
        "logistic_regression": lambda seed: LogisticRegression(max_iter=5000),
    }


@dataclass(frozen=True)
class BaselineResult:
    model: str
    test_acc: float
    fit_seconds: float


def run_baselines(
    splits: DigitsSplits, models: dict[str, ModelFactory], seed: int = 0
) -> list[BaselineResult]:
    """Fit each model on the train split, score it on the test split."""
    train_x, train_y = splits.arrays("train")
    test_x, test_y = splits.arrays("test")
    results = []
    for name, factory in models.items():
        model = factory(seed)
        started = time.perf_counter()
        model.fit(train_x, train_y)
        seconds = time.perf_counter() - started
        results.append(BaselineResult(name, float(model.score(test_x, test_y)), seconds))
    return results


def table(results: Sequence[BaselineResult]) -> str:
    lines = [f"{'model':22}{'test acc':>10}{'fit s':>8}"]
    lines += [f"{r.model:22}{r.test_acc:>10.4f}{r.fit_seconds:>8.2f}" for r in results]
    return "\n".join(lines)


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.baseline", exit_on_error=False)
    parser.add_argument(
        "--models",
        type=list[Model],
        default=list(Model.__args__),
        help="Which models to train (default: all).",
    )
    parser.add_class_arguments(DigitsSplits, "data")
    return parser


def main(args: list[str] | None = None) -> list[BaselineResult]:
    with exit_on_user_error():
        config = parser().parse_args(args)
        splits = DigitsSplits(**config.data.as_dict())
        sizes = {split: len(rows) for split, rows in splits.indices.items()}
    factories = baseline_models()
    results = run_baselines(splits, {name: factories[name] for name in config.models})
    data = config.data
    print(
        f"split_seed {data.split_seed}, scale {data.scale}: trained on "
        f"{sizes['train']} images, tested on {sizes['test']}"
    )
    print(table(results))
    return results


if __name__ == "__main__":
    main()
