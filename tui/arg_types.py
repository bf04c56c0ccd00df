"""Argument types shared by the ``routeshell`` commands: a bad value is argparse's one-line usage error.

Checks that run after parsing (:func:`task_text`) raise :class:`~engine.errors.UsageError`: the same
one line, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from engine.errors import UsageError
from engine.urls import api_key_problem, is_http_url, model_name_problem, not_http_url
from tui.sizes import MAX_TASK_BYTES, MAX_TASK_SIZE


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argument type for a whole number from ``low`` (to ``high``, when given): every bad value,
    a word or a number out of range, gets the same message, which says the range."""
    said = f"of {low} or more" if high is None else f"from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {said}")
        return value

    return parse


#: The largest seed: numpy and the trainer take seeds from 0 to 2**32 - 1 and fail on any other.
MAX_SEED = 2**32 - 1


def random_seed(text: str) -> int:
    """A random seed (``--seed``): a whole number from 0 to :data:`MAX_SEED`."""
    return whole_number(0, MAX_SEED)(text)


def positive_float(text: str) -> float:
    """A finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds above zero: how long to wait for an endpoint's reply (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def wait_seconds(text: str) -> float:
    """How long to wait: a finite number of seconds, 0 or more (waiting for good is the bare option)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (0 or more; give no number to wait for good)"
        )
    return value


def probability(text: str) -> float:
    """A number from 0 to 1 (``0.2``; not a percentage)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability from 0 to 1 (0.2, not 20%)")
    return value


def dropout(text: str) -> float:
    """A dropout rate: a number from 0 up to, not including, 1 (1 would drop everything)."""
    value = _number(text)
    if value is None or not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dropout rate from 0 up to 1 (0.05)")
    return value


def non_negative_float(text: str) -> float:
    """A finite number, 0 or more (``--weight-decay``)."""
    value = _number(text)
    if value is None or not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number, 0 or more, got {text!r}")
    return value


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def http_url(text: str) -> str:
    """An endpoint's base URL: absolute, http or https, naming a host (``http://127.0.0.1:8765/v1``)."""
    if not is_http_url(text):
        raise argparse.ArgumentTypeError(not_http_url(text))
    return text


def given_path(text: str) -> Path:
    """A file or directory: any name a path can hold, but not an empty one, which would quietly
    mean the current directory."""
    if not text:
        raise argparse.ArgumentTypeError("the path is empty; give one (. for the current directory)")
    return Path(text)


def name_word(text: str) -> str:
    """A name chosen from a list (``--preset``): not empty, which would quietly mean the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the name is empty; give one or leave the option out")
    return text


def api_key(text: str) -> str:
    """An API key (``--api-key``): printable ASCII without spaces, as an HTTP header carries it."""
    problem = api_key_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"the key {problem}")
    return text


def model_name(text: str) -> str:
    """A model id (``--model NAME``, ``--name``): printable text, not empty, no white space at its ends."""
    problem = model_name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"the model name {problem}")
    return text


def utf8_text(data: bytes, what: str) -> str:
    """Return ``data`` decoded as UTF-8; raise :class:`UsageError` naming ``what`` and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise UsageError(f"{what} is not UTF-8 text (byte 0x{bad} at offset {exc.start}); "
                         "convert it, e.g. with iconv -t UTF-8") from None  # fmt: skip


def task_text(given: str | bytes, command: str, what: str = "the task") -> str:
    """The TASK of ``routeshell COMMAND`` (``run``, ``route``): UTF-8 text that says something.

    ``given`` is the argument (one that is not UTF-8 arrives with its bytes as lone surrogates,
    PEP 383) or the bytes read for it; ``what`` names it when it is not UTF-8. Raise :class:`UsageError`
    for text that is not UTF-8 and for a task that is empty or only white space."""
    task = utf8_text(os.fsencode(given) if isinstance(given, str) else given, what)
    if not task.strip():
        raise UsageError(f"the task is empty; say what to do, for example: routeshell {command} 'add a README'")
    return task


def given_task(given: str, command: str, stdin_closed: bool) -> str:
    """The TASK argument of ``routeshell COMMAND``, as :func:`task_text` checks it; ``-`` reads it
    from standard input (at most :data:`~tui.sizes.MAX_TASK_BYTES`), which must be neither closed
    (``stdin_closed``) nor a terminal."""
    if given != "-":
        return task_text(given, command)
    if stdin_closed or sys.stdin is None:
        raise UsageError("TASK is '-' but standard input is closed; pipe the task in")
    if sys.stdin.isatty():
        raise UsageError("TASK is '-' but standard input is a terminal; pipe the task in")
    # Bytes, decoded here: the text layer's error handling depends on the locale. Read one byte
    # past the limit, never all of an endless input.
    data = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
    if len(data) > MAX_TASK_BYTES:
        raise UsageError(f"the task on standard input is longer than {MAX_TASK_SIZE}")
    return task_text(data, command, "the task on standard input").strip()
