"""One escaped line for an error a pane shows: what workers report instead of ending the app."""

from __future__ import annotations

from engine.names import display_name


def one_line(exc: BaseException, *, unexpected: bool = False) -> str:
    """Return ``exc`` as one escaped line.

    ``unexpected`` (an error the code does not expect, so a bug to report) adds the exception's type.
    """
    text = str(exc) or type(exc).__name__
    if unexpected:
        text = f"unexpected error: {type(exc).__name__}: {text}"
    return display_name(text)
