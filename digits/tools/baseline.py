"""The tutorial's question, asked fairly: classical models on exactly the same split.

Each scikit-learn model is trained on the training split that a Lightning run with the
same data settings trains on (same ``split_seed``, same scaling) and scored on its test
split, so its number stands beside that run's ``test/acc``. With ``--drawn``, as a run
with the pen digits as a source (``--data.sources+=digits.people.pen_digits.PenDigits``), the
drawn training digits join the training split and the drawn test digits are scored
apart (``test/drawn_acc``'s twin).

Usage::

    python -m digits.baseline
    python -m digits.baseline --models '[random_forest, svc]' --data.split_seed 3
    python -m digits.baseline --models '[svc]' --drawn
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from jsonargparse import ArgumentParser

from digits.dataset import DigitsSplits
from digits.errors import reading_the_command_line
from digits.people.pen_digits import DrawnSplits

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
        # gamma="scale" (scikit-learn's default) follows the pixels' spread, so the kernel
        # reads 0..16 pixels and pixels divided by 16 alike; a fixed gamma such as the
        # 0.001 of scikit-learn's digits example fits one range only (0.66 on 0..1).
        "svc": lambda seed: SVC(gamma="scale"),
        "knn": lambda seed: KNeighborsClassifier(n_neighbors=3),
        # Raw pixels need more than the default 100 iterations to converge.
        "logistic_regression": lambda seed: LogisticRegression(max_iter=5000),
    }


@dataclass(frozen=True)
class BaselineResult:
    model: str
    test_acc: float
    fit_seconds: float
    drawn_test_acc: float | None = None  # with drawn digits: their test rows


def run_baselines(
    splits: DigitsSplits,
    models: dict[str, ModelFactory],
    seed: int = 0,
    drawn: DrawnSplits | None = None,
    train_on_drawn: bool = True,
) -> list[BaselineResult]:
    """Fit each model on the train split, score it on the test split.

    With ``drawn``, the drawn test digits are scored too, and unless ``train_on_drawn``
    is false the drawn training digits join the training split.
    """
    train_x, train_y = splits.arrays("train")
    test_x, test_y = splits.arrays("test")
    if drawn is not None:
        if train_on_drawn:
            drawn_x, drawn_y = drawn.arrays("train")
            train_x = np.concatenate([train_x, splits.scaling(drawn_x)])
            train_y = np.concatenate([train_y, drawn_y])
        drawn_test_x, drawn_test_y = drawn.arrays("test")
        drawn_test_x = splits.scaling(drawn_test_x)
    results = []
    for name, factory in models.items():
        model = factory(seed)
        started = time.perf_counter()
        model.fit(train_x, train_y)
        seconds = time.perf_counter() - started
        drawn_score = None if drawn is None else float(model.score(drawn_test_x, drawn_test_y))
        results.append(
            BaselineResult(name, float(model.score(test_x, test_y)), seconds, drawn_score)
        )
    return results


def table(results: Sequence[BaselineResult]) -> str:
    drawn = any(r.drawn_test_acc is not None for r in results)
    lines = [
        f"{'model':22}{'test acc':>10}" + (f"{'drawn acc':>11}" if drawn else "") + f"{'fit s':>8}"
    ]
    for r in results:
        drawn_column = f"{r.drawn_test_acc:>11.4f}" if r.drawn_test_acc is not None else ""
        lines.append(f"{r.model:22}{r.test_acc:>10.4f}{drawn_column}{r.fit_seconds:>8.2f}")
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
    parser.add_argument(
        "--drawn",
        action="store_true",
        help="Train on the drawn digits too and score the drawn test digits (as PenDigits does).",
    )
    parser.add_argument(
        "--score_drawn",
        action="store_true",
        help="Score the drawn test digits without training on drawn digits.",
    )
    return parser


def main(args: list[str] | None = None) -> list[BaselineResult]:
    with reading_the_command_line():
        config = parser().parse_args(args)
        if not config.models:
            raise ValueError(f"--models is empty; name one or more of {list(baseline_models())}")
        splits = DigitsSplits(**config.data.as_dict())
        sizes = {split: len(rows) for split, rows in splits.indices.items()}
    data = config.data
    drawn = None
    if config.drawn or config.score_drawn:
        drawn = DrawnSplits(data.test_size, data.val_size, data.split_seed)
    factories = baseline_models()
    chosen = {name: factories[name] for name in config.models}
    # Seeded by the split, as digits.compare seeds them: the two give the same forest.
    results = run_baselines(
        splits, chosen, seed=data.split_seed, drawn=drawn, train_on_drawn=config.drawn
    )
    extra = ""
    if drawn is not None:
        drawn_sizes = {split: len(rows) for split, rows in drawn.indices.items()}
        trained = f" and {drawn_sizes['train']} drawn" if config.drawn else ""
        extra = f"{trained} (and {drawn_sizes['test']} drawn test digits apart)"
    print(
        f"split_seed {data.split_seed}, scale {data.scale}: trained on "
        f"{sizes['train']} images{extra}, tested on {sizes['test']}"
    )
    print(table(results))
    return results


if __name__ == "__main__":
    main()
