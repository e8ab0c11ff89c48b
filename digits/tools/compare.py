"""Is the network better than the random forest? Asked over many splits, not one.

For each split seed, trains the Lightning model (``python -m digits.fit`` with any
``--config``) and the scikit-learn baselines on that split, with the data settings the
run used, and adds their scores to a CSV file as soon as each split is done (a comparison
stopped midway keeps the splits it finished); then prints mean ± std test accuracy per
model.

Usage::

    python -m digits.compare --split_seeds 0-4
    python -m digits.compare --split_seeds 0,2,7 --config configs/best.yaml --models '[svc]'
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from digits.dataset import DigitsSplits
from digits.errors import exit_130_on_ctrl_c, reading_the_command_line
from digits.extras import settings_of
from digits.fit import main as fit_main
from digits.paths import check_can_hold_files, check_not_there, unused_path
from digits.people.pen_digits import DrawnSplits, PenDigits
from digits.tools.baseline import Model, baseline_models, run_baselines

QUIET_FIT = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def parse_seeds(text: str | int) -> list[int]:
    """ "0-4" -> [0, 1, 2, 3, 4]; "0,2,7" -> [0, 2, 7]; ranges and lists mix."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"split seeds look like 0-4 or 0,2,7; got {text!r}")
        seeds += list(range(int(first), int(last) + 1)) if dash else [int(first)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"split seeds must be distinct and at least one; got {text!r}")
    return seeds


DEFAULT_OUTPUT = "compare.csv"


@dataclass(frozen=True)
class Score:
    split_seed: int
    model: str
    test_acc: float
    fit_seconds: float
    drawn_test_acc: float | None = None  # for a run with drawn digits


def network_name(configs: Sequence[str]) -> str:
    return "network:" + ("+".join(Path(config).stem for config in configs) or "default")


def compare(
    split_seeds: Sequence[int],
    configs: Sequence[str] = (),
    models: Sequence[str] = (),
    fit_args: Sequence[str] = (),
) -> Iterator[list[Score]]:
    """Train and score the network and the baselines on each split in turn; each split's
    scores as soon as they are known."""
    factories = baseline_models()
    chosen = {model: factories[model] for model in models}
    name = network_name(configs)
    config_args = [arg for config in configs for arg in ("--config", config)]
    for seed in split_seeds:
        args = [*config_args, *QUIET_FIT, *fit_args, "--data.split_seed", str(seed)]
        started = time.perf_counter()
        summary = fit_main(args)
        seconds = time.perf_counter() - started
        scores = [Score(seed, name, summary.test_acc, seconds, summary.further_tests.get("drawn"))]
        # The baselines see the data exactly as this run did (its saved config).
        data = yaml.safe_load((Path(summary.log_dir) / "config.yaml").read_text())["data"]
        splits = DigitsSplits.from_settings(data)
        drawn = DrawnSplits(data["test_size"], data["val_size"], seed) if drawn_in(data) else None
        for result in run_baselines(splits, chosen, seed=seed, drawn=drawn):
            scores.append(
                Score(
                    seed, result.model, result.test_acc, result.fit_seconds, result.drawn_test_acc
                )
            )
        yield scores


def drawn_in(data: dict) -> bool:
    """Whether a run's data settings train on the pen digits."""
    return bool(settings_of(data, PenDigits))


def summary_table(scores: Sequence[Score]) -> str:
    models = list(dict.fromkeys(score.model for score in scores))
    seeds = sorted({score.split_seed for score in scores})
    drawn = all(score.drawn_test_acc is not None for score in scores)
    lines = [
        f"{'model':28}{'mean':>8}{'std':>8}{'min':>8}{'max':>8}  (test acc, {len(seeds)} splits)"
        + ("   drawn: mean, min" if drawn else "")
    ]
    for model in models:
        accs = [score.test_acc for score in scores if score.model == model]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        line = f"{model:28}{statistics.mean(accs):>8.4f}{spread:>8.4f}"
        line += f"{min(accs):>8.4f}{max(accs):>8.4f}"
        if drawn:
            drawn_accs = [score.drawn_test_acc for score in scores if score.model == model]
            line += f"{statistics.mean(drawn_accs):>16.4f}{min(drawn_accs):>8.4f}"
        lines.append(line)
    network = models[0]
    by_seed = {(score.split_seed, score.model): score.test_acc for score in scores}
    for model in models[1:]:
        wins = sum(by_seed[seed, network] > by_seed[seed, model] for seed in seeds)
        ties = sum(by_seed[seed, network] == by_seed[seed, model] for seed in seeds)
        lines.append(
            f"the network beats {model} on {wins} of {len(seeds)} splits"
            + (f" ({ties} tied)" if ties else "")
        )
    return "\n".join(lines)


def check_fit_args_leave_the_split(fit_args: Sequence[str]) -> None:
    """Each split's run is given its seed after ``--fit_args``: one there would be
    overridden without a word, and the CSV would say the other seed."""
    for arg in fit_args:
        if arg.split("=", 1)[0] in ("--data.split_seed", "--data.split-seed"):
            raise ValueError(
                "--fit_args sets --data.split_seed, which compare sets for each split; "
                "give the splits as --split_seeds"
            )


CSV_COLUMNS = ["split_seed", "model", "test_acc", "fit_seconds", "drawn_test_acc"]


def add_to_csv(scores: Sequence[Score], path: Path) -> None:
    """One split's scores, appended and flushed to disk before the next split trains; the
    first split's start the file (never one that exists), header first. Nothing is
    written before a split is done, so a mistake in ``--fit_args`` leaves no file."""
    first = not path.exists()
    if first:
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x" if first else "a", newline="") as file:
        writer = csv.writer(file)
        if first:
            writer.writerow(CSV_COLUMNS)
        for score in scores:
            drawn = "" if score.drawn_test_acc is None else f"{score.drawn_test_acc:.6f}"
            writer.writerow(
                [
                    score.split_seed,
                    score.model,
                    f"{score.test_acc:.6f}",
                    f"{score.fit_seconds:.3f}",
                    drawn,
                ]
            )
        file.flush()
        os.fsync(file.fileno())


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m digits.compare", exit_on_error=False)
    parser.add_argument(
        "--split_seeds",
        "--split-seeds",  # also accepted, as the flag was first spelled
        dest="split_seeds",
        type=str,
        default="0-4",
        help="Which splits: a range 0-4, a list 0,2,7, or both (default 0-4).",
    )
    parser.add_argument(
        "--config",
        type=str,
        default=[],
        action="append",
        help="A digits.fit config for the network; give it again to compose several.",
    )
    parser.add_argument(
        "--models",
        type=list[Model],
        default=list(Model.__args__),
        help="Which scikit-learn baselines to train (default: all).",
    )
    parser.add_argument(
        "--output",
        type=Path | None,
        default=None,
        help="Where to write every score as CSV, a file that does not exist yet (default "
        "compare.csv, or compare-2.csv, compare-3.csv... past earlier ones).",
    )
    parser.add_argument(
        "--fit_args",
        type=list[str],
        default=[],
        help="More digits.fit arguments, e.g. '[--trainer.max_epochs, \"100\"]'.",
    )
    return parser


def main(args: list[str] | None = None) -> list[Score]:
    with reading_the_command_line():
        config = parser().parse_args(args)
        seeds = parse_seeds(config.split_seeds)
        configs = list(config.config)
        for path in configs:
            if not Path(path).is_file():
                raise ValueError(f"config not found: {path}")
        if config.output is not None:
            check_not_there(config.output)
            check_can_hold_files(config.output.parent)
        check_fit_args_leave_the_split(config.fit_args)
    # The default is numbered past earlier comparisons' files, never written over.
    output = config.output or unused_path(Path(DEFAULT_OUTPUT), is_file=True)
    scores: list[Score] = []
    try:
        with exit_130_on_ctrl_c():
            for split_scores in compare(seeds, configs, config.models, config.fit_args):
                add_to_csv(split_scores, output)
                scores += split_scores
    except BaseException:  # Ctrl-C, a diverged run: say where the finished splits are
        if scores:
            print(f"scores of the splits done: {output}", file=sys.stderr)
        raise
    print(summary_table(scores))
    print(f"every score: {output}")
    return scores


if __name__ == "__main__":
    main()
