"""Settings that moved: a config written earlier still runs, a typed old flag names the new one.

Every run saves its whole config (``config.yaml``), and resuming it reads that file
again, so a setting that moves must still be read where an earlier version wrote it.
Config files are read through a YAML loader that moves such keys to their new place
(jsonargparse's ``set_loader``, its public hook for this); an old flag typed on the
command line is refused with one line that names the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from jsonargparse import get_loader, set_loader

# The old dotted name, and the new one.
RENAMED = {"model.outlier_weight": "data.outlier_weight"}
PARSER_MODE = "digits_yaml"  # jsonargparse's YAML, with the keys above moved


def move_renamed(value: Any) -> Any:
    """A loaded config with each old key moved to its new place (unless that is set)."""
    if not isinstance(value, dict):
        return value
    for old, new in RENAMED.items():
        old_group, old_key = old.split(".")
        new_group, new_key = new.split(".")
        group = value.get(old_group)
        if isinstance(group, dict) and old_key in group:
            moved = group.pop(old_key)
            target = value.setdefault(new_group, {})
            if isinstance(target, dict):
                target.setdefault(new_key, moved)
    return value


def register_loader() -> str:
    """The parser mode whose loader moves renamed keys (registered once per process)."""
    yaml_loader = get_loader("yaml")
    set_loader(
        PARSER_MODE, lambda text: move_renamed(yaml_loader(text)), exceptions=(yaml.YAMLError,)
    )
    return PARSER_MODE


def check_renamed_flags(args: Sequence[str]) -> None:
    """Refuse an old flag typed on the command line, naming the new one."""
    for arg in args:
        name = str(arg).split("=", 1)[0].removeprefix("--")
        if name in RENAMED:
            raise ValueError(f"--{name} is now --{RENAMED[name]}")
