"""Replacing a small text file whole: all of the new text or the old file, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced temporary file beside it and a rename.

    Raises OSError (a read-only or full disk, a missing directory); no temporary file is left.
    Text that holds surrogate escapes (a name that is not UTF-8) keeps its original bytes.
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path`` (``-``: standard input), reading one byte past ``limit`` and no further,
    so that an endless input (``/dev/zero``, a stuck pipe's writer) cannot take the memory.

    Raises :class:`~engine.errors.UsageError` naming ``what`` when it cannot be read or is longer.
    A pipe (``<(...)``) is read like a file."""
    import sys

    from engine.errors import UsageError
    from engine.names import display_name

    size = f"{limit / (1 << 20):g} MiB" if limit >= 1 << 20 else f"{limit} bytes"
    where = f"{what} on standard input" if str(path) == "-" else f"{what} {display_name(str(path))}"
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UsageError(f"{where} is longer than {size}")
    return data
