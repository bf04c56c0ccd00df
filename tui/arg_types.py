"""Argument types shared by the ``routeshell`` commands: a bad value is argparse's one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from engine.urls import is_http_url, not_http_url


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


def nonempty_path(text: str) -> Path:
    """A path that is not empty (as a ``Path``, an empty one would be the current directory, ``.``)."""
    if not text:
        raise argparse.ArgumentTypeError("the path is empty")
    return Path(text)


def http_url(text: str) -> str:
    """An endpoint's base URL: absolute, http or https, naming a host (``http://127.0.0.1:8765/v1``)."""
    if not is_http_url(text):
        raise argparse.ArgumentTypeError(not_http_url(text))
    return text
