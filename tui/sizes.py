"""Sizes as people read them, shared by the ``routeshell files`` commands and the Files pane."""

from __future__ import annotations

_SIZE_UNITS = ("KB", "MB", "GB", "TB", "PB")

#: The most a task read from standard input may hold (`run -`, a line of `--plain`): far beyond any
#: request, and bounded so that endless input (/dev/zero) cannot take the machine's memory.
MAX_TASK_BYTES = 1 << 20
#: MAX_TASK_BYTES as the help and the errors say it.
MAX_TASK_SIZE = f"{MAX_TASK_BYTES >> 20} MiB"


def size_text(size: int) -> str:
    """``size`` bytes as text in binary units: ``512 B``, ``1.2 KB``, ``3.4 MB`` (1 KB = 1024 B)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _SIZE_UNITS:
        value /= 1024
        if round(value, 1) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
