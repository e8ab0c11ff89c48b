"""How every entry point ends when something is wrong: one line, a meaningful exit code.

A user's mistake (a bad flag, value, config or checkpoint) is found while the CLI is
built, before anything is written, and ends with exit code 2 like any argparse error.
Training that diverges ends with exit code 2 too, naming the epoch and the loss.
Ctrl-C and SIGTERM end with 130 and 143, the shell's codes for them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from jsonargparse import ArgumentError
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from digits.model import NonFiniteLossError

USAGE_ERROR = 2  # the exit code argparse uses for a bad command line
INTERRUPTED = 130  # 128 + SIGINT
TERMINATED = 143  # 128 + SIGTERM
MAX_ERROR_LENGTH = 240


def one_line(message: str) -> str:
    """jsonargparse's multi-line explanation of a bad value, as one readable line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "invalid arguments"
    text = lines[0]
    details = dict(line.partition(": ")[::2] for line in lines[1:])
    if "Given value" in details and "Subtypes" in details:
        text += f" expected one of {details['Subtypes']}, got {details['Given value']!r}"
    elif len(lines) > 1:
        text += " " + lines[1]
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 3] + "..."


def fail(message: str, code: int = USAGE_ERROR) -> SystemExit:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return SystemExit(code)


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Wraps building the CLI: parsing, and instantiating the data, model and trainer.

    Those only check and store values, so an error there is a bad value from the user,
    and nothing has been written yet.
    """
    try:
        yield
    except (ArgumentError, ValueError, MisconfigurationException) as error:
        raise fail(str(error)) from None


@contextmanager
def exit_on_training_failure() -> Iterator[None]:
    """Wraps training: divergence and SIGTERM end with a line and an exit code."""
    try:
        yield
    except NonFiniteLossError as error:
        raise fail(str(error)) from None
    except SIGTERMException:
        raise SystemExit(TERMINATED) from None
    except SystemExit as exit_:
        # Lightning answers Ctrl-C with sys.exit(1) from its KeyboardInterrupt handler.
        if isinstance(exit_.__context__, KeyboardInterrupt):
            raise SystemExit(INTERRUPTED) from None
        raise
