"""Read-only views of a workspace for browsing: directory listings, metadata and text previews.

Everything goes through :class:`~engine.workspace.sandbox.Workspace`, the one resolver: paths are
workspace-relative strings resolved by the kernel beneath the root descriptor, so a symlink or
``..`` leading outside is refused however it is reached, special files are never read, and reads
are bounded, so a browser built on it can neither leak nor hang.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.names import quoted_name
from engine.workspace.sandbox import Entry, SandboxError, Workspace, check_relpath, file_kind

__all__ = [
    "PREVIEW_BYTES",
    "PREVIEW_LINES",
    "Entry",
    "Metadata",
    "Preview",
    "count_entries",
    "file_kind",
    "filter_entries",
    "metadata",
    "read_preview",
    "refusal_note",
    "scan_directory",
    "split_lines",
]

PREVIEW_BYTES = 64 * 1024
PREVIEW_LINES = 2000


def _sort_key(entry: Entry) -> tuple[bool, str, str]:
    return (not entry.is_dir, entry.name.casefold(), entry.name)


def scan_directory(
    ws: Workspace,
    directory: str,
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> list[Entry]:
    """List the workspace-relative ``directory``, directories first, then by case-folded name.

    ``progress`` is called with the running count every ``progress_every`` entries, so a
    caller can show that a huge directory is still being read. Raises :class:`SandboxError`
    when the directory cannot be opened beneath the root.
    """
    entries: list[Entry] = []
    append = entries.append
    for count, entry in enumerate(ws.scandir(check_relpath(directory)), 1):
        append(entry)
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


def metadata(ws: Workspace, path: str) -> Metadata:
    """Return the metadata of the workspace-relative ``path`` itself (a symlink is described, not followed).

    Raises :class:`SandboxError` when nothing is there or it cannot be reached beneath the root.
    """
    with ws.parent(check_relpath(path)) as (fd, name):
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(info.st_mode) else None
        except OSError as exc:
            error = SandboxError(f"{quoted_name(path)}: {exc.strerror}")
            error.errno = exc.errno  # type: ignore[attr-defined]
            raise error from None
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


def refusal_note(exc: SandboxError) -> str:
    """Say in a few words why ``exc`` kept a path from being opened: outside, a symlink, or the OS error."""
    code = getattr(exc, "errno", None)
    if code == errno.EXDEV:
        return "symlink leading outside the workspace: not followed"
    if code == errno.ELOOP:
        return "symlink: not followed"
    return os.strerror(code) if code else str(exc)


def read_preview(
    ws: Workspace, path: str, *, max_bytes: int = PREVIEW_BYTES, max_lines: int = PREVIEW_LINES
) -> Preview:
    """Read the start of the regular text file at the workspace-relative ``path``.

    Symlinks leading outside the root, special files and binary files are described, not read;
    a file that cannot be opened or read gives a note saying why.
    """
    try:
        # O_NONBLOCK: a FIFO must not block the open.
        fd = ws.open(check_relpath(path), os.O_RDONLY | os.O_NONBLOCK)
    except SandboxError as exc:
        note = refusal_note(exc)
        return Preview(None, note if "symlink" in note else f"cannot open: {note}")
    try:
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


def count_entries(ws: Workspace, directory: str, limit: int = 100_000) -> int:
    """Count the entries of the workspace-relative ``directory``, stopping at ``limit``.

    Raises :class:`SandboxError` when it cannot be opened beneath the root.
    """
    fd = ws.open(check_relpath(directory), os.O_RDONLY | os.O_DIRECTORY)
    try:
        count = 0
        with os.scandir(fd) as found:
            for _ in found:
                count += 1
                if count >= limit:
                    break
        return count
    finally:
        os.close(fd)
