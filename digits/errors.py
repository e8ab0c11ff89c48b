"""How every entry point ends when something is wrong: one line, a meaningful exit code.

A user's mistake (a bad flag, value, config or checkpoint) is found while the command
line is read and the objects are built, before anything is written, and ends with exit
code 2 like any argparse error. The one exception is code of the user's own that runs
while the objects are built (a data module read for its shape): what fails there is a
bug in it, ``BugInYourCode``, and keeps its traceback. Training that diverges ends with
one line too, naming the epoch and the loss, but with exit code 3: it is found once the
run has written its logs, so it is not a mistake on the command line, and not a bug.
Ctrl-C and SIGTERM end with 130 and 143, the shell's codes for them.

For the user's mistakes, three context managers, by where they stand:

- ``reading_the_command_line`` wraps an entry point's reading and building, which is a
  step of its own there: what fails inside is one line and exit 2.
- ``mark_usage_errors`` marks a stage inside a call that also runs (LightningCLI's hooks),
  so that only what fails there becomes a ``UsageError``; callers that build in process
  (the sweep's trials) catch that.
- ``exit_2_on_usage_error`` wraps such a call and ends a ``UsageError`` as exit 2.

Then ``exit_130_on_ctrl_c`` for Ctrl-C wherever it lands, and ``exit_on_training_failure``
(divergence, SIGTERM and Ctrl-C) around training.

Nothing here imports Lightning: the tools that only read a checkpoint use it too.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from jsonargparse import ArgumentError

USAGE_ERROR = 2  # the exit code argparse uses for a bad command line
DIVERGED = 3  # the run started and wrote its logs; its loss is no longer finite
INTERRUPTED = 130  # 128 + SIGINT
TERMINATED = 143  # 128 + SIGTERM
MAX_ERROR_LENGTH = 240


class UsageError(ValueError):
    """A user's mistake, found while the command line was read and its objects built."""


class BugInYourCode(RuntimeError):
    """Code of the user's own (a data module's ``setup``) failed while the objects were built.

    That is not a bad value on the command line but a bug to find, so it keeps its
    traceback even where jsonargparse wraps it in a ``ValueError``.
    """


class NonFiniteLossError(ArithmeticError):
    """Training diverged: continuing would only produce and save a broken model."""


def one_line(message: str) -> str:
    """jsonargparse's multi-line explanation of a bad value, as one readable line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "invalid arguments"
    text = lines[0]
    details = dict(line.partition(": ")[::2] for line in lines[1:])
    reason = _specific_reason(message)
    if reason and "Subtypes" in details:
        # A class's own error, raised building the value given: whole, unless it is a
        # type mismatch of its own, which the same rules shorten.
        if "Subtypes:" in reason:
            return one_line(reason)
        return one_line(" ".join(line.strip() for line in reason.splitlines()))
    elif "Given value" in details and "Subtypes" in details:
        text += f" expected one of {details['Subtypes']}, got {details['Given value']!r}"
    elif len(lines) > 1:
        text += " " + lines[1]
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    text = re.sub(r"<([\w.]+) object at 0x[0-9a-f]+>", r"\1", text)
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 3] + "..."


# How jsonargparse words a value that is not of a type, as opposed to a class's own error.
GENERIC_REASONS = ("Not a valid", "Expected a", "Does not validate")


def _specific_reason(message: str) -> str | None:
    """The first of jsonargparse's "Errors:" items that is about the value itself (a
    class's own ``share must be 0 to 1``, or its missing arguments), with the lines it
    continues on, rather than one saying the value is not of some other type."""
    lines = message.splitlines()
    heads = [n for n, line in enumerate(lines) if line.strip() == "Errors:"]
    if not heads:
        return None
    indent = len(lines[heads[0]]) - len(lines[heads[0]].lstrip()) + 2
    items: list[list[str]] = []
    for line in lines[heads[0] + 1 :]:
        depth = len(line) - len(line.lstrip())
        if depth < indent:
            break
        if depth == indent and line.lstrip().startswith("- "):
            items.append([" " * (indent + 2) + line.strip()[2:]])
        elif items:
            items[-1].append(line)
    for item in items:
        if not item[0].strip().startswith(GENERIC_REASONS):
            return textwrap.dedent("\n".join(item))
    return None


def fail(message: str, code: int = USAGE_ERROR) -> SystemExit:
    """Print ``error: <message>`` as one line on stderr; the ``SystemExit`` to raise."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    return SystemExit(code)


@contextmanager
def mark_usage_errors(*also: type[Exception]) -> Iterator[None]:
    """Marks a stage that only reads and builds: its errors become a ``UsageError``.

    For an entry point whose building and running happen in one call (LightningCLI with
    subcommands), so that only what is raised here counts as the user's mistake.
    """
    try:
        yield
    except UsageError:
        raise
    except (ArgumentError, ValueError, *also) as error:
        if _caused_by(error, BugInYourCode):
            raise
        # A mistake found in a link's function (labels read for num_classes) is said in
        # its own words, not in those of jsonargparse's error about the link.
        raise UsageError(str(_cause_of_kind(error, UsageError) or error)) from None


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    return _cause_of_kind(error, kind) is not None


def _cause_of_kind(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first of ``error`` and the errors it was raised from that is a ``kind``."""
    while error is not None:
        if isinstance(error, kind):
            return error
        error = error.__cause__
    return None


@contextmanager
def exit_2_on_usage_error() -> Iterator[None]:
    """A ``UsageError`` from inside ends as one line and exit 2; anything else propagates."""
    try:
        yield
    except UsageError as error:
        raise fail(str(error)) from None


@contextmanager
def reading_the_command_line(*also: type[Exception]) -> Iterator[None]:
    """Wraps reading the command line and building the objects it describes: exit 2.

    Those only check and store values, so an error there is a bad value from the user,
    and nothing has been written yet; ``BugInYourCode`` (the user's own code failed
    there) keeps its traceback. ``also`` adds exception types that mean the same
    in the caller's library (Lightning's ``MisconfigurationException`` for training).
    """
    with exit_2_on_usage_error(), mark_usage_errors(*also):
        yield


@contextmanager
def exit_130_on_ctrl_c() -> Iterator[None]:
    """Ctrl-C ends as exit code 130, without a traceback, wherever it lands.

    Outside training it is Python's ``KeyboardInterrupt``; inside, Lightning answers it
    with ``sys.exit(1)`` from its own handler, once it has shut the run down.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(INTERRUPTED) from None
    except SystemExit as exit_:
        if isinstance(exit_.__context__, KeyboardInterrupt):
            raise SystemExit(INTERRUPTED) from None
        raise


@contextmanager
def exit_on_training_failure() -> Iterator[None]:
    """Wraps training: divergence, SIGTERM and Ctrl-C end with a line and an exit code."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        with exit_130_on_ctrl_c():
            yield
    except NonFiniteLossError as error:
        raise fail(str(error), DIVERGED) from None
    except SIGTERMException:
        raise SystemExit(TERMINATED) from None
