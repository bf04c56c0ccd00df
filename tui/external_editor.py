"""Editing text in the user's own editor: the one helper the Files pane, the approval dialog and
``--plain`` share. In the full-screen shell the terminal is handed over while the editor runs."""

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
    """The user's editor: $VISUAL, then $EDITOR, then vi. Raises :class:`EditorFailed` when it cannot be split."""
    setting = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        return shlex.split(setting) or ["vi"]
    except ValueError as exc:
        raise EditorFailed(f"$VISUAL or $EDITOR cannot be split into a command ({exc})") from None


def edit_text(app: App[object] | None, name: str, text: str) -> str:
    """Open ``text`` as a scratch file called ``name`` in the user's editor; return what was saved.

    Exactly what was saved: line ends are not translated (a CRLF stays a CRLF), and a name that is
    not UTF-8 (bulk rename) goes out as its bytes and comes back. See :func:`edit_bytes`.
    """
    saved = edit_bytes(app, name, text.encode("utf-8", errors="surrogateescape"))
    return saved.decode("utf-8", errors="surrogateescape")


def edit_bytes(app: App[object] | None, name: str, data: bytes) -> bytes:
    """Open ``data`` as a scratch file called ``name`` in the user's editor; return the bytes saved.

    With ``app``, the app is suspended so the editor gets the terminal; where there is no terminal
    to hand over (a headless driver) the editor runs without one. Without ``app`` (a line-mode
    shell) the editor simply shares the terminal. Raises :class:`EditorFailed`.
    """
    command = editor_command()
    with tempfile.TemporaryDirectory(prefix="routeshell-edit-") as scratch:
        path = Path(scratch) / name
        path.write_bytes(data)
        command = [*command, str(path)]
        try:
            if app is None:
                completed = subprocess.run(command, check=False)
            else:
                try:
                    with app.suspend():
                        completed = subprocess.run(command, check=False)
                except SuspendNotSupported:
                    completed = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True)
        except OSError as exc:
            reason = f"Cannot start the editor {command[0]!r}: {exc.strerror}; set $VISUAL or $EDITOR"
            raise EditorFailed(reason) from None
        if completed.returncode != 0:
            raise EditorFailed(f"The editor exited with {completed.returncode}")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise EditorFailed(f"Cannot read the edited text: {exc}") from None
