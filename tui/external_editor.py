"""Editing text in the user's own editor, with the terminal handed over while it runs."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from textual.app import App, SuspendNotSupported


class EditorFailed(Exception):
    """The editor could not start or did not save; the message is one line for a notification."""


def editor_command() -> list[str]:
    """The user's editor: $VISUAL, then $EDITOR, then vi."""
    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def edit_text(app: App[object], name: str, text: str) -> str:
    """Open ``text`` as a scratch file called ``name`` in the user's editor; return what was saved.

    The app is suspended so the editor gets the terminal; where there is no terminal to hand over
    (a headless driver) the editor runs without one. Raises :class:`EditorFailed`.
    """
    with tempfile.TemporaryDirectory(prefix="routeshell-edit-") as scratch:
        path = Path(scratch) / name
        path.write_text(text, encoding="utf-8")
        command = [*editor_command(), str(path)]
        try:
            try:
                with app.suspend():
                    completed = subprocess.run(command, check=False)
            except SuspendNotSupported:
                completed = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True)
        except OSError as exc:
            raise EditorFailed(f"Cannot start the editor {command[0]!r}: {exc.strerror}") from None
        if completed.returncode != 0:
            raise EditorFailed(f"The editor exited with {completed.returncode}")
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EditorFailed(f"Cannot read the edited text: {exc}") from None
