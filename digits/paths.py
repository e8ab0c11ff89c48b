"""Where files go: a new path for a report, so that a tool never writes over an earlier
one's, and a write that a reader never sees half done."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def check_not_there(path: Path, option: str = "--output") -> None:
    """An output is never written over: one given that exists already is refused."""
    if path.exists():
        raise ValueError(f"{path} exists; choose another {option}")


def check_can_hold_files(folder: Path, option: str = "--output") -> None:
    """The folder, or the nearest part of it that exists, must be a folder this process can
    write in: a one-line ``ValueError`` naming ``option`` if not, found before the work
    whose result the first write would lose.

    Writing is tried (a nameless temporary file), not judged from the permission bits,
    which say nothing of a read-only disk, and nothing to root.
    """
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise ValueError(f"{part} is a file, not a folder; choose another {option}")
            try:
                with tempfile.TemporaryFile(dir=part):
                    pass
            except OSError as error:
                raise ValueError(
                    f"{part} cannot be written in ({error.strerror}); choose another {option}"
                ) from None
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


def write_then_rename(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into a new file beside ``path``, flushed to disk, then renamed over it.

    A reader (or a crash in the middle) sees the earlier file or the whole new one, never
    half of it: the temporary file sits on the same file system, where ``os.replace`` is
    atomic. It is opened as any new file is, not with ``tempfile``'s owner-only mode, so
    the result is as readable as the umask allows (a server run as another user reads a
    checkpoint). Nothing is left behind when ``write`` fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
