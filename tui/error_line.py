"""One line for an error a pane shows: what workers report instead of ending the app."""

from __future__ import annotations

from engine.names import display_line


def error_text(exc: BaseException, *, unexpected: bool = False) -> str:
    """Return what ``exc`` says, not yet escaped (for a view that escapes what it shows).

    ``unexpected`` (an error the code does not expect, so a bug to report) adds the exception's type.
    """
    text = str(exc) or type(exc).__name__
    return f"unexpected error: {type(exc).__name__}: {text}" if unexpected else text


def one_line(exc: BaseException, *, unexpected: bool = False) -> str:
    """Return ``exc`` as one escaped line, ready for a notification or a ``Text``: its control characters
    escaped, and the names it quotes as they are (escaped once, where the message was written)."""
    return display_line(error_text(exc, unexpected=unexpected))
