"""Settings that moved: an earlier config or checkpoint is read as today's, an old flag says where.

Every run saves its whole config (``config.yaml``) and its settings in its checkpoints,
and resuming or reading them must still work after a setting moves. So config files are
read through a YAML loader that moves such settings to their new places (jsonargparse's
``set_loader``, its public hook for this), checkpoints are upgraded the same way when
they are read (``digits.reading.checkpoint.upgrade``), and an old flag typed on the command
line is refused with one line that names the new one.

What moved: the data module's feature flags became objects it is given by class path
(``data.sources``, ``data.transforms``; ``digits.extras``), and the weight of a
non-digit's loss went from the model to the source of non-digits. An old file that names
any of ``shift`` and ``augment`` says wholly which transforms it trains with, as one that
names ``drawn`` or ``outliers`` does for its sources: a later file replaces the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PEN_DIGITS = "digits.people.pen_digits.PenDigits"
NON_DIGITS = "digits.people.non_digits.NonDigits"
SHIFT = "digits.people.augment.Shift"
HANDWRITING = "digits.people.augment.Handwriting"

# Each old flag, and what to write instead.
NEW_FLAGS = {
    "model.outlier_weight": f"a setting of the non-digits: --data.sources+={NON_DIGITS} "
    "--data.sources.weight W",
    "data.outliers": f"a data source: --data.sources+={NON_DIGITS} --data.sources.count N",
    "data.drawn": f"a data source: --data.sources+={PEN_DIGITS}",
    "data.dataset_repeats": "--data.repeats",
    "data.shift": f"a transform: --data.transforms+={SHIFT} --data.transforms.pixels N",
    "data.augment": f"a transform: --data.transforms+={HANDWRITING} --data.transforms.strength S",
}
PARSER_MODE = "digits_yaml"  # jsonargparse's YAML loader, with the old settings moved


def upgrade_settings(settings: Any) -> Any:
    """A config (or a checkpoint's ``{"model": ..., "data": ...}``) with old settings moved.

    Changed in place, and returned; anything without old settings is left as it is.
    """
    if not isinstance(settings, dict):
        return settings
    model, data = settings.get("model"), settings.get("data")
    if not isinstance(data, dict):
        data = {}
    weight = 0.5
    if isinstance(model, dict) and "outlier_weight" in model:
        weight = model.pop("outlier_weight")
        if "outliers" not in data and weight != 0.5:
            # A weight with no non-digits in the same file: no source here to carry it.
            raise ValueError(f"model.outlier_weight is now {NEW_FLAGS['model.outlier_weight']}")
    if "data" not in settings:
        return settings
    named_transforms = "augment" in data or "shift" in data
    named_sources = "drawn" in data or "outliers" in data
    transforms, sources = [], []
    if data.get("augment"):
        transforms.append({"class_path": HANDWRITING, "init_args": {"strength": data["augment"]}})
    if data.get("shift"):
        transforms.append({"class_path": SHIFT, "init_args": {"pixels": data["shift"]}})
    if data.get("drawn"):
        sources.append({"class_path": PEN_DIGITS})
    if data.get("outliers"):
        init_args = {"count": data["outliers"], "weight": weight}
        sources.append({"class_path": NON_DIGITS, "init_args": init_args})
    for old in ("augment", "shift", "drawn", "outliers"):
        data.pop(old, None)
    if "dataset_repeats" in data:
        data.setdefault("repeats", data.pop("dataset_repeats"))
    # An old config says wholly which transforms and which extra data it trains with.
    if named_transforms:
        data["transforms"] = [*transforms, *(data.get("transforms") or [])]
    if named_sources:
        data["sources"] = [*sources, *(data.get("sources") or [])]
    return settings


def register_loader() -> str:
    """The parser mode whose loader moves old settings (registered again: the same each time)."""
    import yaml
    from jsonargparse import get_loader, set_loader

    yaml_loader = get_loader("yaml")
    set_loader(
        PARSER_MODE, lambda text: upgrade_settings(yaml_loader(text)), exceptions=(yaml.YAMLError,)
    )
    return PARSER_MODE


def check_old_flags(args: Sequence[str]) -> None:
    """Refuse an old flag typed on the command line, naming the new one."""
    for arg in args:
        name = str(arg).split("=", 1)[0].removeprefix("--")
        if name in NEW_FLAGS:
            raise ValueError(f"--{name} is now {NEW_FLAGS[name]}")
