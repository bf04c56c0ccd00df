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
