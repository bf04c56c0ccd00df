"""Read-only views of a workspace for browsing: directory listings, metadata and text previews.

Everything here is confined to a workspace root: a path whose real location is outside the
root (through ``..`` or a symlink) is refused, special files are never opened, and reads are
bounded, so a browser built on it can neither leak nor hang.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from engine.errors import RouteshellError

PREVIEW_BYTES = 64 * 1024
PREVIEW_LINES = 2000


class OutsideWorkspace(RouteshellError):
    """A path that resolves outside the workspace root."""


class Entry(NamedTuple):
    """One directory entry. ``is_dir`` follows symlinks; ``is_link`` does not."""

    name: str
    is_dir: bool
    is_link: bool


def _sort_key(entry: Entry) -> tuple[bool, str, str]:
    return (not entry.is_dir, entry.name.casefold(), entry.name)


def inside(root: Path, path: Path) -> bool:
    """Return True when the real location of ``path`` is ``root`` or beneath it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return os.path.commonpath([real_root, real]) == real_root


def check_inside(root: Path, path: Path) -> Path:
    """Return ``path`` if it lies inside ``root``; raise :class:`OutsideWorkspace` otherwise."""
    if not inside(root, path):
        raise OutsideWorkspace(f"{path} is outside the workspace {root}")
    return path


def scan_directory(
    root: Path,
    directory: Path,
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> list[Entry]:
    """List ``directory`` (inside ``root``), directories first, then by case-folded name.

    ``progress`` is called with the running count every ``progress_every`` entries, so a
    caller can show that a huge directory is still being read.
    """
    check_inside(root, directory)
    entries: list[Entry] = []
    append = entries.append
    with os.scandir(directory) as it:
        for count, item in enumerate(it, 1):
            try:
                is_dir = item.is_dir()
                is_link = item.is_symlink()
            except OSError:
                is_dir = is_link = False
            append(Entry(item.name, is_dir, is_link))
            if progress is not None and count % progress_every == 0:
                progress(count)
    entries.sort(key=_sort_key)
    return entries


def filter_entries(entries: Sequence[Entry], *, text: str = "", show_hidden: bool = False) -> list[Entry]:
    """Return the entries whose name contains ``text`` (case-insensitive), hiding dotfiles unless asked."""
    needle = text.casefold()
    return [
        entry
        for entry in entries
        if (show_hidden or not entry.name.startswith(".")) and (not needle or needle in entry.name.casefold())
    ]


@dataclass(frozen=True)
class Metadata:
    """What a file browser shows about one entry."""

    kind: str
    size: int
    mode: str
    permissions: int
    mtime: float
    link_target: str | None


_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISREG, "file"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def file_kind(mode: int) -> str:
    """Name the file type encoded in an ``st_mode``."""
    return next((name for test, name in _KINDS if test(mode)), "unknown")


def metadata(root: Path, path: Path) -> Metadata:
    """Return the metadata of ``path`` itself (a symlink is described, not followed)."""
    check_inside(root, path.parent)
    info = os.lstat(path)
    target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    return Metadata(
        kind=file_kind(info.st_mode),
        size=info.st_size,
        mode=stat.filemode(info.st_mode),
        permissions=stat.S_IMODE(info.st_mode),
        mtime=info.st_mtime,
        link_target=target,
    )


def split_lines(text: str) -> list[str]:
    """Split ``text`` after each "\n" only, keeping the "\n"; the last line may lack one.

    ``str.splitlines`` also breaks at \r, \v, form feeds, \x1c-\x1e, \x85, \u2028 and \u2029, which
    would cut one line in two in a preview, a diff or a line count (git, grep and sed break at "\n").
    """
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


@dataclass(frozen=True)
class Preview:
    """A bounded look at a file. ``text`` is None when the file is not shown, and ``note`` says why."""

    text: str | None
    note: str
    truncated: bool = False


def read_preview(root: Path, path: Path, *, max_bytes: int = PREVIEW_BYTES, max_lines: int = PREVIEW_LINES) -> Preview:
    """Read the start of a regular text file inside ``root``.

    Symlinks leading outside the root, special files and binary files are described, not read.
    """
    if not inside(root, path):
        return Preview(None, "symlink leading outside the workspace: not followed")
    try:
        # O_NONBLOCK: a FIFO that slipped in between checks must not block the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return Preview(None, f"cannot open: {exc.strerror}")
    try:
        if not _fd_inside(root, fd):
            return Preview(None, "moved outside the workspace while opening: not read")
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return Preview(None, "directory")
        if not stat.S_ISREG(info.st_mode):
            return Preview(None, f"{file_kind(info.st_mode)}: not read")
        data = os.read(fd, max_bytes + 1)
    except OSError as exc:
        return Preview(None, f"cannot read: {exc.strerror}")
    finally:
        os.close(fd)
    truncated = len(data) > max_bytes
    data = data[:max_bytes]
    if b"\0" in data:
        return Preview(None, f"binary file, {info.st_size:,} bytes")
    text = data.decode("utf-8", errors="replace")
    if truncated:
        # Drop a final partial line (and any character cut in half) rather than show it mangled.
        text = text[: text.rfind("\n") + 1] or text
    lines = split_lines(text)
    if len(lines) > max_lines:
        text = "".join(lines[:max_lines])
        truncated = True
    if not text:
        return Preview("", "empty file")
    note = f"first {len(split_lines(text)):,} lines of {info.st_size:,} bytes" if truncated else ""
    return Preview(text, note, truncated)


def _fd_inside(root: Path, fd: int) -> bool:
    """Check where an open descriptor really points, closing the gap between check and open."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True  # No /proc: the realpath check before the open is all there is.
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, real]) == real_root


def count_entries(root: Path, directory: Path, limit: int = 100_000) -> int:
    """Count the entries of ``directory``, stopping at ``limit``."""
    check_inside(root, directory)
    count = 0
    with os.scandir(directory) as it:
        for _ in it:
            count += 1
            if count >= limit:
                break
    return count
