"""SIGTERM for the workspace commands (plan, trash, audit, files) and eval: they stop as Ctrl-C stops them.

Killed by the default action, such a command ended with exit code 143 and no word of why, and an
apply in progress was left for the next command to roll back. Raised as :class:`Terminated`, a
``KeyboardInterrupt``, the signal takes the way Ctrl-C takes: an apply is rolled back at once, a
long walk stops, an evaluation keeps what it judged, ``--json`` ends with its ``error`` event,
and one line says "terminated" (exit code 143).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; what handles Ctrl-C handles it, and the command exits with code 143."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """While in the block, SIGTERM raises :class:`Terminated` where the main thread is."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (a program that imports routeshell): its own handling holds
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
