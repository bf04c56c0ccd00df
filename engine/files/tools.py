"""Read-only tools over many files: find by a match, duplicate files, and sizes by directory.

Like :mod:`engine.workspace.tools` they read through the workspace's confined descriptors and
return bounded, JSON-ready results. Every walk here never follows a symlink (a symlink is an
entry, never a way in), never enters ``.git`` (at any depth, any case) or the top-level state
directory, and opens only regular files, checked on the open descriptor.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from engine.errors import ExitCode
from engine.files.match import MAX_WALK, select, tags_at
from engine.names import quoted_name
from engine.workspace.sandbox import (
    STATE_DIR,
    Entry,
    SandboxError,
    Workspace,
    check_relpath,
    file_kind,
    protected_part,
)

#: How much of each same-size file is hashed before the whole of it is.
HEAD_BYTES = 64 * 1024
#: How much of a file one read takes while hashing it whole.
CHUNK_BYTES = 1 << 20

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def find(ws: Workspace, match: Mapping[str, Any], *, limit: int = 1000) -> dict[str, Any]:
    """Return the entries a match object selects (see :mod:`engine.files.match`), sorted by path.

    Returns ``{"match", "entries", "total", "truncated"}``: each entry has ``path``, ``kind``
    ("file", "dir" or "link"), ``size``, ``mtime`` and ``tags`` (a file's tags; [] for a directory or
    a symlink). A directory selected with what is in it stands for it: what is in it is not listed
    or counted. At most ``limit`` entries; ``total`` counts every one matched and ``truncated`` is
    True when some were left out. Raises :class:`~engine.files.match.MatchError` for a bad match.
    """
    selection = select(ws, match, bound=limit)
    entries = [
        {
            "path": found.path,
            "kind": found.kind,
            "size": found.size,
            "mtime": found.mtime,
            "tags": tags_at(ws, found.path) if found.kind == "file" else [],
        }
        for found in selection.found
    ]
    truncated = selection.outermost > limit or selection.walked > MAX_WALK
    return {"match": dict(match), "entries": entries, "total": selection.outermost, "truncated": truncated}


def duplicates(
    ws: Workspace,
    path: str = ".",
    *,
    min_size: int = 1,
    limit: int = 100,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Find groups of regular files with the same content under directory ``path``.

    Candidates are files of at least ``min_size`` bytes that share their size with another; those
    that also share the SHA-256 of their first :data:`HEAD_BYTES` are hashed whole. Hard links to
    one file count once, as the path the walk meets first (names in order, a directory before what
    is in it). A file that vanishes or changes while it is read is left out. ``progress`` is called
    with a running count of entries walked and then files hashed, every 1,000.

    Returns ``{"path", "groups", "wasted", "truncated"}``: each group is ``{"size", "sha256",
    "files": [{"path", "mtime"}]}``, newest file first; groups by wasted bytes (``size * (n - 1)``),
    most first, at most ``limit`` of them. ``wasted`` sums every group found; ``truncated`` is True
    when more than ``limit`` groups were found or the walk stopped at its bound.
    """
    start = _start(ws, path)
    counter = _Counter(progress)
    by_size: dict[int, list[tuple[str, os.stat_result]]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    stopped = False
    for directory, entries in _directories(ws, start):
        for entry in entries or ():
            counter.tick()
            info = entry.stat
            if entry.kind != "file" or info is None or info.st_size < min_size:
                continue
            if info.st_nlink > 1:
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            by_size[info.st_size].append((_child(directory, entry.name), info))
        if counter.count > MAX_WALK:
            stopped = True
            break
    groups: list[dict[str, Any]] = []
    for size, files in by_size.items():
        if len(files) < 2:
            continue
        for digest, same in _same_content(ws, size, files, counter).items():
            same.sort(key=lambda item: (-item[1].st_mtime, item[0]))
            listed = [{"path": name, "mtime": info.st_mtime} for name, info in same]
            groups.append({"size": size, "sha256": digest, "files": listed})
    groups.sort(key=lambda group: (-_wasted(group), -group["size"], group["files"][0]["path"]))
    return {
        "path": start,
        "groups": groups[:limit],
        "wasted": sum(_wasted(group) for group in groups),
        "truncated": len(groups) > limit or stopped,
    }


def disk_usage(ws: Workspace, path: str = ".", *, depth: int = 1, limit: int = 100) -> dict[str, Any]:
    """Sum the apparent sizes under directory ``path``, by directory.

    Sizes are ``st_size`` of regular files and symlinks (a file with several hard links beneath
    ``path`` counts once); ``files`` counts every entry that is not a directory. Every directory
    down to ``depth`` levels below ``path`` is listed with the totals of all beneath it, however deep.
    A directory that cannot be read counts as 0 and is named in ``unreadable`` (at most ``limit``).

    Returns ``{"path", "total", "files", "dirs": [{"path", "size", "files"}], "unreadable",
    "truncated"}``: ``dirs`` largest first, at most ``limit``; ``truncated`` when more were found.
    """
    start = _start(ws, path)
    size: dict[str, int] = {}
    files: dict[str, int] = {}
    level = {start: 0}
    order: list[str] = []  # parents before children, so reversed it sums children first
    unreadable: list[str] = []
    seen: set[tuple[int, int]] = set()
    for directory, entries in _directories(ws, start):
        order.append(directory)
        size[directory] = files[directory] = 0
        if entries is None:
            unreadable.append(directory)
            continue
        for entry in entries:
            info = entry.stat
            if entry.kind == "directory":
                level[_child(directory, entry.name)] = level[directory] + 1
                continue
            files[directory] += 1
            if info is None or entry.kind not in ("file", "symlink"):
                continue
            if info.st_nlink > 1:
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            size[directory] += info.st_size
    for directory in reversed(order[1:]):
        parent = directory.rpartition("/")[0] or "."
        size[parent] += size[directory]
        files[parent] += files[directory]
    listed: list[dict[str, Any]] = [
        {"path": directory, "size": size[directory], "files": files[directory]}
        for directory in order[1:]
        if level[directory] <= depth
    ]
    listed.sort(key=lambda row: (-row["size"], row["path"]))
    return {
        "path": start,
        "total": size[start],
        "files": files[start],
        "dirs": listed[:limit],
        "unreadable": unreadable[:limit],
        "truncated": len(listed) > limit,
    }


# -- walking ------------------------------------------------------------------------------------


def _start(ws: Workspace, path: str) -> str:
    """The directory a walk starts at; a path that is not one of the workspace's is bad input (exit code 2)."""
    try:
        start = check_relpath(path)
        found = protected_part(start.split("/")) if start != "." else None
        if found is not None:
            raise SandboxError(f"{quoted_name(path)}: {found}/ is not looked into; give a directory outside it")
        info = ws.lstat(start)
    except SandboxError as exc:
        raise SandboxError(str(exc), exit_code=ExitCode.USAGE) from None
    if info is None:
        raise SandboxError(
            f"{quoted_name(path)}: nothing there; give a directory of the workspace", exit_code=ExitCode.USAGE
        )
    if not stat.S_ISDIR(info.st_mode):
        kind = file_kind(info.st_mode)
        followed = " (a symlink is not followed)" if kind == "symlink" else ""
        raise SandboxError(
            f"{quoted_name(path)}: a {kind}, not a directory{followed}; give a directory", exit_code=ExitCode.USAGE
        )
    return start


def _child(directory: str, name: str) -> str:
    return name if directory == "." else f"{directory}/{name}"


def _directories(ws: Workspace, start: str) -> Iterator[tuple[str, list[Entry] | None]]:
    """Yield every directory under ``start``, itself first and each before what is in it.

    With each, its entries (each with its ``lstat``) sorted by name, or None when it cannot be read.
    """
    stack = [start]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(ws.scandir(directory, with_stat=True))
        except (SandboxError, OSError):
            yield directory, None  # unreadable, or removed or replaced while walked
            continue
        yield directory, entries
        stack.extend(
            _child(directory, entry.name)
            for entry in reversed(entries)
            if entry.kind == "directory"
            and not (directory == "." and entry.name == STATE_DIR)
            and protected_part([entry.name]) is None
        )


class _Counter:
    """Counts items handled and calls ``progress`` with the count every 1,000."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.count = 0

    def tick(self) -> None:
        self.count += 1
        if self.progress is not None and self.count % 1000 == 0:
            self.progress(self.count)


# -- hashing ------------------------------------------------------------------------------------


def _wasted(group: Mapping[str, Any]) -> int:
    return int(group["size"]) * (len(group["files"]) - 1)


def _same_content(
    ws: Workspace, size: int, files: list[tuple[str, os.stat_result]], counter: _Counter
) -> dict[str, list[tuple[str, os.stat_result]]]:
    """Group same-size ``files`` by content: the head's hash first, the whole file's for the rest."""
    by_head: dict[str, list[tuple[str, os.stat_result]]] = defaultdict(list)
    for item in files:
        counter.tick()
        digest = _sha256(ws, *item, limit=HEAD_BYTES)
        if digest is not None:
            by_head[digest].append(item)
    if size <= HEAD_BYTES:  # the head was all of it
        return {digest: same for digest, same in by_head.items() if len(same) > 1}
    by_content: dict[str, list[tuple[str, os.stat_result]]] = defaultdict(list)
    for same in by_head.values():
        if len(same) < 2:
            continue
        for item in same:
            counter.tick()
            digest = _sha256(ws, *item, limit=None)
            if digest is not None:
                by_content[digest].append(item)
    return {digest: same for digest, same in by_content.items() if len(same) > 1}


def _sha256(ws: Workspace, path: str, walked: os.stat_result, *, limit: int | None) -> str | None:
    """The SHA-256 of the first ``limit`` bytes of ``path`` (all with None), read by descriptor.

    None when ``path`` is no longer the regular file the walk saw, or it changed while read.
    """
    try:
        with ws.parent(path) as (parent_fd, name):
            fd = os.open(name, _READ_FLAGS, dir_fd=parent_fd)
    except (OSError, SandboxError):
        return None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or not _unchanged(opened, walked):
            return None
        digest = hashlib.sha256()
        left = walked.st_size if limit is None else min(limit, walked.st_size)
        while left > 0:
            chunk = os.read(fd, min(left, CHUNK_BYTES))
            if not chunk:
                return None  # shorter than it was
            digest.update(chunk)
            left -= len(chunk)
        if limit is None and os.read(fd, 1):
            return None  # longer than it was
        return digest.hexdigest() if _unchanged(os.fstat(fd), walked) else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _unchanged(now: os.stat_result, walked: os.stat_result) -> bool:
    return (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) == (
        walked.st_dev,
        walked.st_ino,
        walked.st_size,
        walked.st_mtime_ns,
    )
