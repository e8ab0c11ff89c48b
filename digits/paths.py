"""A new path for a report, so that a tool never writes over an earlier one's."""

from __future__ import annotations

from pathlib import Path


def check_can_hold_files(folder: Path, option: str = "--output") -> None:
    """The folder, or the nearest part of it that exists, must be a folder: a one-line
    ``ValueError`` naming ``option`` if a file stands in the way."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise ValueError(f"{part} is a file, not a folder; choose another {option}")
            return


def unused_path(wanted: Path, is_file: bool = False) -> Path:
    """``wanted``, or ``wanted-2``, ``wanted-3``... if it exists.

    A file's number goes before its suffix (``compare-2.csv``); a folder's at the end of
    its name, which may hold dots (``epoch007-val_acc0.9926-2``).
    """
    stem, suffix = (wanted.stem, wanted.suffix) if is_file else (wanted.name, "")
    candidate, number = wanted, 1
    while candidate.exists():
        number += 1
        candidate = wanted.with_name(f"{stem}-{number}{suffix}")
    return candidate
