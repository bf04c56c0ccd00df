"""Read-only tools for agents: list, read (with line ranges), stat, glob and regex search.

They obey the same path rules as plan steps, resolved beneath the workspace root, and every
result is bounded so that a huge tree or file cannot flood an agent's context.
"""

from __future__ import annotations

import stat
from typing import Any

from regex import error as pattern_error

from engine.names import quoted_name
from engine.workspace.globs import compile_pattern, glob_regex
from engine.workspace.listing import file_kind, split_lines
from engine.workspace.sandbox import STATE_DIR, SandboxError, Workspace, check_relpath

MAX_READ_BYTES = 256 * 1024
MAX_SEARCH_FILE_BYTES = 1024 * 1024


def list_dir(ws: Workspace, path: str = ".", *, limit: int = 1000) -> dict[str, Any]:
    """List a directory: each entry's name, kind and size; ``truncated`` when over ``limit``."""
    entries = [
        {"name": e.name, "kind": e.kind, "size": e.stat.st_size if e.stat else 0}
        for e in ws.listdir(check_relpath(path))
        if not (path in (".", "") and e.name == STATE_DIR)
    ]
    return {"path": check_relpath(path), "entries": entries[:limit], "truncated": len(entries) > limit}


def read_file(ws: Workspace, path: str, *, start: int = 1, end: int | None = None) -> dict[str, Any]:
    """Return lines ``start`` to ``end`` (1-based, inclusive) of a UTF-8 text file, and its line count."""
    if start < 1 or (end is not None and end < start):
        raise SandboxError(f"bad line range {start}-{end}")
    data = ws.read_bytes(check_relpath(path), limit=MAX_READ_BYTES + 1)
    if b"\0" in data:
        raise SandboxError(f"{quoted_name(path)} is a binary file")
    text = data[:MAX_READ_BYTES].decode("utf-8", errors="replace")
    lines = split_lines(text)
    last = len(lines) if end is None else min(end, len(lines))
    return {
        "path": check_relpath(path),
        "start": start,
        "end": last,
        "total_lines": len(lines),
        "truncated": len(data) > MAX_READ_BYTES,
        "text": "".join(lines[start - 1 : last]),
    }


def stat_path(ws: Workspace, path: str) -> dict[str, Any]:
    """Describe a path without following a final symlink; ``exists`` is False when nothing is there."""
    normal = check_relpath(path)
    info = ws.lstat(normal)
    if info is None:
        return {"path": normal, "exists": False}
    return {
        "path": normal,
        "exists": True,
        "kind": file_kind(info.st_mode),
        "size": info.st_size,
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "mtime": info.st_mtime,
    }


def glob(ws: Workspace, pattern: str, *, limit: int = 1000) -> dict[str, Any]:
    """Return the workspace paths matching a glob (``*``, ``?``, and ``**`` across directories)."""
    if not pattern or pattern.startswith("/") or "\0" in pattern:
        raise SandboxError(f"bad glob pattern {pattern!r}: give a relative pattern such as 'src/**/*.py'")
    regex = glob_regex(pattern)
    matches: list[str] = []
    for path in _walk_visible(ws):
        if regex.match(path):
            matches.append(path)
            if len(matches) > limit:
                break
    return {"pattern": pattern, "matches": matches[:limit], "truncated": len(matches) > limit}


def search(
    ws: Workspace, regex: str, *, path: str = ".", include: str | None = None, limit: int = 200
) -> dict[str, Any]:
    """Find lines matching a regular expression in the text files under ``path``.

    ``include`` is a glob that file paths must match. Binary and very large files are skipped.
    """
    try:
        compiled = compile_pattern(regex)
    except (pattern_error, ValueError) as exc:
        raise SandboxError(f"bad regular expression {regex!r}: {exc}") from None
    scope = check_relpath(path)
    wanted = glob_regex(include) if include else None
    results: list[dict[str, Any]] = []
    for candidate in _walk_visible(ws, scope):
        info = ws.lstat(candidate)
        if info is None or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SEARCH_FILE_BYTES:
            continue
        if wanted is not None and not wanted.match(candidate):
            continue
        data = ws.read_bytes(candidate)
        if b"\0" in data:
            continue
        for number, line in enumerate(split_lines(data.decode("utf-8", errors="replace")), 1):
            line = line.removesuffix("\n").removesuffix("\r")  # "$" matches at the end of a CRLF line too
            if compiled.search(line):
                results.append({"path": candidate, "line": number, "text": line[:500]})
                if len(results) > limit:
                    return {"regex": regex, "matches": results[:limit], "truncated": True}
    return {"regex": regex, "matches": results, "truncated": False}


def _walk_visible(ws: Workspace, path: str = ".") -> list[str]:
    info = ws.lstat(path)
    if info is not None and stat.S_ISREG(info.st_mode):
        return [path]
    return [p for p in ws.walk(path) if p != STATE_DIR and not p.startswith(STATE_DIR + "/")]
