"""The process's standard streams, made safe for the command line before a command runs.

A standard stream the caller closed (``<&-``, ``>&-``) is opened on ``/dev/null``: Python would
leave ``sys.stdin`` as None, and the next file opened would take its descriptor, where a child
process or a stray write would reach it. A failed write to standard output (a full disk, a
closed descriptor) becomes :class:`OutputError`, one line and exit 1, wherever in a command it
happens; a reader that went away (``| head``) stays a :class:`BrokenPipeError`, which the
command line ends quietly, unless the command changes the workspace (see :func:`outlive_reader`).
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass

from engine.errors import ExitCode, RouteshellError


class OutputError(RouteshellError):
    """Standard output cannot be written (exit code 1)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class StandardStreams:
    """What :func:`prepare_standard_streams` found: which standard streams the caller had closed."""

    stdin_closed: bool = False
    stdout_closed: bool = False


def prepare_standard_streams() -> StandardStreams:
    """Open each closed standard stream on ``/dev/null`` and have standard output report a failed
    write as :class:`OutputError`; return which streams were closed.

    A closed standard input reads as empty. A closed standard output stays one that cannot be
    written: its descriptor is ``/dev/null`` opened for reading only, so every write fails as it
    would have, and is reported.
    """
    found = StandardStreams(stdin_closed=sys.stdin is None, stdout_closed=sys.stdout is None)
    for fd, stream, mode in ((0, sys.stdin, os.O_RDONLY), (1, sys.stdout, os.O_RDONLY), (2, sys.stderr, os.O_WRONLY)):
        if stream is None:
            _occupy(fd, mode)
    if sys.stdin is None:
        sys.stdin = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    old = sys.stdout
    raw = _StandardOutput(1, "w", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=old.encoding if old is not None else "utf-8",
        errors=old.errors if old is not None else "strict",
        line_buffering=bool(old.line_buffering) if old is not None else False,
    )
    return found


#: Whether a reader that goes away ends only the output, not the command (see :func:`outlive_reader`).
_outliving_reader = False


def outlive_reader() -> None:
    """From now on, a reader that goes away ends only what standard output carries, not the command.

    For the commands that change the workspace (a plan's apply or undo, the trash's restore and
    empty): what they print is a report of the change, and nobody reading it is no reason to stop
    the change halfway or roll it back. They finish, and exit as they would have, quietly.
    """
    global _outliving_reader
    _outliving_reader = True


#: What the command has changed, once it has (see :func:`changed`); None before.
_changed: str | None = None


def changed(what: str) -> None:
    """Record what the command has changed, in words that say how to take it back (``plan
    00001-… was applied; undo with: …``): should standard output fail after this, the one-line
    error says it too, so a report that could not be written is not taken for a change not made."""
    global _changed
    _changed = what


def changes_made() -> str | None:
    """What :func:`changed` last recorded, or None."""
    return _changed


def discard_output() -> None:
    """Send whatever standard output still holds, and all it is given from now on, to ``/dev/null``,
    so that the flush at exit neither fails again nor prints a warning."""
    _devnull_on(sys.stdout.fileno())


def _devnull_on(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _occupy(fd: int, mode: int) -> None:
    """Open ``/dev/null`` on ``fd`` when it is closed (open() takes the lowest free descriptor)."""
    try:
        os.fstat(fd)
    except OSError:
        opened = os.open(os.devnull, mode)
        if opened != fd:
            os.dup2(opened, fd)
            os.close(opened)


class _StandardOutput(io.FileIO):
    """File descriptor 1, whose failed writes are :class:`OutputError` (a closed pipe excepted)."""

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return super().write(data)
        except BrokenPipeError:
            if not _outliving_reader:
                raise
            _devnull_on(self.fileno())  # this write and every later one go to /dev/null
            return super().write(data)
        except OSError as exc:
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None
