"""Selecting files by a ``match`` object: a glob and filters, expanded into concrete paths.

A match is the one way a plan, the ``find`` tool and the Files pane name many files at once::

    {"glob": "**/*.log", "exclude": ["archive/**"], "type": "file", "ext": [".log"],
     "name_regex": "^report-\\d+", "contains": "ERROR", "larger_than": "1MB",
     "smaller_than": "2GB", "modified_after": "2025-01-01", "modified_before": "30d",
     "tag": "draft", "limit": 500}

Only ``glob`` is required; every key given must hold. ``"semantic": "tax documents"`` ranks the
files that pass every other key by how close their names and first lines are in meaning to the
description, and keeps the best ``top_k`` (20 unless given); with it, ``glob`` defaults to ``**``
(see :mod:`engine.semantic`, which loads the embedding model only when such a match is used).

The walk goes through the workspace's confined descriptors and never follows a symlink (a symlink
is an entry, never a way in: a glob whose fixed start is or goes through one is refused, naming
it), never enters ``.git`` (at any depth, any case) or the state
directory, never selects a FIFO, socket or device, and reads contents (``contains``) only from
regular files, at most :data:`CONTENT_BYTES` of each.
"""

from __future__ import annotations

import calendar
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

import regex

from engine.names import quoted_name
from engine.workspace.globs import Pattern, compile_pattern, glob_regex
from engine.workspace.links import WorkspaceLinks, leads_outside, symlink_on_the_way
from engine.workspace.sandbox import STATE_DIR, SandboxError, Workspace, check_relpath, protected_part

#: How much of a file ``contains`` and the classify rules read (from its start).
CONTENT_BYTES = 1 << 20
#: How many entries one match may walk before it gives up (a bound on time, not a selection).
MAX_WALK = 2_000_000
#: The longest description a ``semantic`` match takes, and the most files it keeps.
MAX_SEMANTIC = 500
MAX_TOP_K = 1000
DEFAULT_TOP_K = 20
#: How many files one semantic match may rank: each new one is read and embedded.
MAX_RANKED = 50_000

MatchType = Literal["file", "dir", "any"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$", re.IGNORECASE)
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class MatchError(SandboxError):
    """A match object that cannot be used; the message names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def parse_size(text: str | int, key: str = "size") -> int:
    """Return bytes for ``"1MB"``, ``"512 KiB"``, ``"10B"`` or a plain number (binary units: 1 KB = 1024 B)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise MatchError(key, f"{text} is negative")
        return text
    found = _SIZE.match(str(text))
    if not found:
        raise MatchError(key, f"{text!r} is not a size; write it like 10B, 512KB, 1.5MB or 2GB")
    number, unit = found.groups()
    return int(float(number) * _UNITS[unit[:1].upper()])


def parse_when(text: str, key: str = "date", now: float | None = None) -> float:
    """Return the epoch time of an ISO date (local midnight), an ISO date-time, or an age like ``30d``.

    Ages count back from now: ``s``, ``m`` (minutes), ``h``, ``d``, ``w``, ``y`` (365 days).
    """
    now = time.time() if now is None else now
    text = str(text).strip()
    age = _AGE.match(text)
    if age:
        return now - float(age.group(1)) * _AGE_SECONDS[age.group(2).lower()]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise MatchError(
            key, f"{text!r} is not a date; write 2025-01-31, 2025-01-31T12:00, or an age like 30d"
        ) from None
    if moment.tzinfo is not None:
        return float(calendar.timegm(moment.utctimetuple())) + moment.microsecond / 1e6
    return time.mktime(moment.timetuple()) + moment.microsecond / 1e6


def check_glob(pattern: str, key: str = "glob") -> str:
    """Return ``pattern`` when it is a usable workspace glob, else raise :class:`MatchError`."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise MatchError(key, "empty pattern; give one such as '**/*.log'")
    if pattern.startswith("/"):
        raise MatchError(key, f"{quoted_name(pattern)} is absolute; patterns are relative to the workspace")
    if "\0" in pattern:
        raise MatchError(key, "NUL byte in pattern")
    if ".." in pattern.split("/"):
        raise MatchError(key, f"{quoted_name(pattern)}: '..' leads outside the workspace")
    try:
        glob_regex(pattern)
    except (regex.error, ValueError) as exc:
        raise MatchError(key, f"{quoted_name(pattern)} is not a valid pattern ({exc})") from None
    return pattern


def glob_base(pattern: str) -> str:
    """The directory a glob's literal leading names point at (``"."`` when the first name has a wildcard)."""
    parts = pattern.split("/")[:-1]
    literal = []
    for part in parts:
        if any(ch in part for ch in "*?["):
            break
        literal.append(part)
    return "/".join(part for part in literal if part not in ("", ".")) or "."


def compile_regex(text: str, key: str) -> Pattern:
    """Compile a user's regular expression, or raise :class:`MatchError` naming ``key``."""
    if not isinstance(text, str) or len(text) > 1000:
        raise MatchError(key, "give a regular expression of at most 1000 characters")
    try:
        return compile_pattern(text)
    except (regex.error, ValueError) as exc:
        raise MatchError(key, f"{text!r} is not a valid regular expression ({exc})") from None


class Found(NamedTuple):
    """One selected entry: its workspace-relative path, kind (file, dir, link), size and mtime."""

    path: str
    kind: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Match:
    """A parsed match object; :func:`parse_match` makes one and says what is wrong with a bad one."""

    glob: str
    exclude: tuple[str, ...] = ()
    type: MatchType = "file"
    ext: tuple[str, ...] = ()
    name_regex: Pattern | None = None
    contains: str | None = None
    larger_than: int | None = None
    smaller_than: int | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    tag: str | None = None
    limit: int | None = None
    semantic: str | None = None  # a description to rank the selected files by
    top_k: int | None = None  # how many of the best ranked to keep (set whenever semantic is)
    skip_under: tuple[str, ...] = field(default=())  # directories left out (a move's own target)

    def base(self) -> str:
        return glob_base(self.glob)


def _relative(pattern: Any) -> Any:
    """``./*.log`` is ``*.log``: paths in a workspace have no leading ``./``."""
    while isinstance(pattern, str) and pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern


def parse_match(spec: Mapping[str, Any], now: float | None = None) -> Match:
    """Check a match object (already shaped by the plan schema) and return it parsed.

    Raises :class:`MatchError` naming the first key that cannot be used.
    """
    semantic, top_k = _ranking(spec)
    if "glob" not in spec and semantic is None:
        raise MatchError("glob", "missing required key; give a glob such as '**/*.log', or a semantic description")
    pattern = check_glob(_relative(spec.get("glob", "**")), "glob")
    excludes = tuple(check_glob(_relative(item), "exclude") for item in spec.get("exclude", ()))
    kind = spec.get("type", "file")
    if kind not in ("file", "dir", "any"):
        raise MatchError("type", f"{kind!r} is not one of file, dir, any")
    if semantic is not None and kind != "file":
        raise MatchError("type", "a semantic match ranks regular files only; leave type out or make it file")
    exts = []
    for ext in spec.get("ext", ()):
        if not isinstance(ext, str) or not ext or "/" in ext:
            raise MatchError("ext", f"{ext!r} is not a file extension such as '.log'")
        exts.append(("" if ext.startswith(".") else ".") + ext.lower())
    regex = compile_regex(spec["name_regex"], "name_regex") if "name_regex" in spec else None
    contains = spec.get("contains")
    if contains is not None and (not isinstance(contains, str) or not contains):
        raise MatchError("contains", "give the text to look for")
    larger = parse_size(spec["larger_than"], "larger_than") if "larger_than" in spec else None
    smaller = parse_size(spec["smaller_than"], "smaller_than") if "smaller_than" in spec else None
    after = parse_when(spec["modified_after"], "modified_after", now) if "modified_after" in spec else None
    before = parse_when(spec["modified_before"], "modified_before", now) if "modified_before" in spec else None
    limit = spec.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise MatchError("limit", f"{limit!r} is not a positive whole number")
    tag = spec.get("tag")
    if tag is not None and (not isinstance(tag, str) or not tag.strip()):
        raise MatchError("tag", "give the tag to select by")
    return Match(
        pattern, excludes, kind, tuple(exts), regex, contains, larger, smaller, after, before, tag, limit,
        semantic=semantic, top_k=top_k,
    )  # fmt: skip


def _ranking(spec: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """The ``semantic`` description and ``top_k`` of a match object (``top_k`` defaults to 20 with a description)."""
    semantic = spec.get("semantic")
    if semantic is not None and (not isinstance(semantic, str) or not semantic.strip() or len(semantic) > MAX_SEMANTIC):
        raise MatchError("semantic", f"describe the files wanted in 1 to {MAX_SEMANTIC} characters")
    top_k = spec.get("top_k")
    if top_k is None:
        return semantic, None if semantic is None else DEFAULT_TOP_K
    if semantic is None:
        raise MatchError("top_k", 'it keeps the best files of a semantic match; add "semantic" or remove "top_k"')
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise MatchError("top_k", f"{top_k!r} is not a whole number from 1 to {MAX_TOP_K}")
    return semantic, top_k


def _pruned(excludes: tuple[str, ...]) -> list[Pattern]:
    # "archive/**" excludes the directory archive and everything in it: the walk skips it whole.
    return [glob_regex(item[:-3]) for item in excludes if item.endswith("/**") and len(item) > 3]


def read_head(ws: Workspace, path: str, limit: int = CONTENT_BYTES) -> bytes | None:
    """The first ``limit`` bytes of the regular file at ``path`` (never a FIFO or device); None otherwise."""
    try:
        return ws.read_bytes(path, limit)
    except (OSError, SandboxError):
        return None


def holds_text(data: bytes, text: str) -> bool:
    """Whether ``data`` (the head of a file) holds ``text``, ignoring case."""
    return text.casefold() in data.decode("utf-8", errors="replace").casefold()


def tags_at(ws: Workspace, path: str) -> list[str]:
    """The tags of the regular file at ``path`` (front matter or ``user.xdg.tags``); [] when none."""
    from engine.files.tags import tags_of

    try:
        with ws.parent(path) as (parent_fd, name):
            return tags_of(parent_fd, name)
    except (OSError, SandboxError):
        return []


@dataclass
class Selection:
    """What a match selected, sorted by path, and how many entries it walked past the limit.

    A semantic match also has ``ranked``: the path and score of each selected file, best first,
    and ``warnings``: one line for each thing that kept its index from being used as it is.
    """

    found: list[Found]
    total: int  # how many entries matched, counted past ``limit`` up to the walk's bound
    walked: int
    ranked: list[tuple[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: How many of the ``total`` are not inside a directory selected too: what ``found`` lists
    #: when nothing is left out.
    outermost: int = 0
    #: The ``lstat`` of each entry of ``found`` as the walk met it, before anything of it was read.
    stats: dict[str, os.stat_result] = field(default_factory=dict)


#: Called as a semantic match ranks: with the stage ("loading", "embedding"), the count done and the total.
RankProgress = Callable[[str, int, int], None]


def regular_files(ws: Workspace) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file of the workspace with its ``lstat``, in path order, walked as every match walks."""
    for path, kind, info in _walk(ws, ".", Match("**")):
        if kind == "file" and info is not None:
            yield path, info


def _walk(ws: Workspace, start: str, match: Match) -> Iterator[tuple[str, str, os.stat_result | None]]:
    """Every entry under ``start`` in path order (a directory, then what is in it), depth first."""
    pruned = _pruned(match.exclude)
    stack = [iter(_entries(ws, start))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, kind, _info = item
        if kind == "dir":
            if path in match.skip_under or any(regex.match(path) for regex in pruned):
                continue
            yield item
            stack.append(iter(_entries(ws, path)))
        else:
            yield item


def _entries(ws: Workspace, directory: str) -> list[tuple[str, str, os.stat_result | None]]:
    try:
        entries = sorted(ws.scandir(directory, with_stat=True))
    except (SandboxError, OSError):
        return []  # removed or replaced while walked, or unreadable: nothing to select there
    found = []
    for entry in entries:
        path = entry.name if directory == "." else f"{directory}/{entry.name}"
        if entry.kind == "directory":
            if (directory == "." and entry.name == STATE_DIR) or protected_part([entry.name]) is not None:
                continue
            found.append((path, "dir", entry.stat))
        elif entry.kind in ("file", "symlink"):
            found.append((path, "file" if entry.kind == "file" else "link", entry.stat))
    return found


def select(
    ws: Workspace, spec: Mapping[str, Any] | Match, *, bound: int | None = None, now: float | None = None,
    progress: Callable[[int], None] | None = None, rank_progress: RankProgress | None = None,
    present: Callable[[str], bool] | None = None,
) -> Selection:  # fmt: skip
    """Return the entries of the workspace that ``spec`` selects, sorted by path.

    A directory selected with what is in it carries its contents: they are not listed, and
    ``bound`` counts what is (stop collecting after that many; the total is still counted, up to
    :data:`MAX_WALK` entries walked). A match's own ``limit`` counts every entry selected, in
    path order, contents too. ``progress`` is called with the count walked every 1,000.
    A semantic match ranks what every other key selects and keeps the best ``top_k`` (and at most
    ``limit``); ``rank_progress`` follows the loading of the model and the embedding of new files.
    Either callback may raise to stop the selection. ``present`` says which files are still there
    (a later step of a plan: not those earlier steps delete or move away): a semantic match ranks
    only those, so that its best ``top_k`` are all there. Raises :class:`MatchError` for a bad
    match, and for a glob whose fixed start (``docs/sub`` of ``docs/sub/*.txt``) is or goes through
    a symlink: the refusal names the symlink.
    """
    match = spec if isinstance(spec, Match) else parse_match(spec, now)
    regex = glob_regex(match.glob)
    excludes = [glob_regex(item) for item in match.exclude]
    start = match.base()
    if start != ".":
        try:
            start = check_relpath(start)
        except SandboxError:
            return Selection([], 0, 0)
        if protected_part(start.split("/")) is not None:
            return Selection([], 0, 0)
        _refuse_symlinked_start(ws, start)
        info = ws.lstat(start)
        if info is None or not stat.S_ISDIR(info.st_mode):
            return Selection([], 0, 0)
    ranking = match.semantic is not None
    # A semantic match ranks every file the filters let through: none is dropped before that.
    keep = MAX_WALK if ranking else min(x for x in (bound, MAX_WALK) if x is not None)
    found: list[Found] = []
    stats: dict[str, os.stat_result] = {}
    total = walked = outermost = 0
    dirs: set[str] = set()  # the directories selected, each before what is in it (the walk's order)
    for path, kind, info in _walk(ws, start, match):
        walked += 1
        if progress is not None and walked % 1000 == 0:
            progress(walked)
        if walked > MAX_WALK:
            break
        if not _selects(ws, match, regex, excludes, path, kind, info):
            continue
        total += 1
        if not (dirs and _under_any(path, dirs)):
            outermost += 1
            if kind == "dir":
                dirs.add(path)
            if len(found) < keep:
                assert info is not None
                found.append(Found(path, kind, info.st_size, info.st_mtime))
                stats[path] = info
        # A semantic match ranks everything first; its limit caps what ranks best.
        if not ranking and match.limit is not None and total >= match.limit:
            break
    if ranking:
        if present is not None:
            found = [item for item in found if present(item.path)]
        return _ranked(ws, match, found, stats, walked, bound, rank_progress)
    return Selection(sorted(found), total, walked, outermost=outermost, stats=stats)


def _refuse_symlinked_start(ws: Workspace, start: str) -> None:
    """Raise :class:`MatchError` (key ``glob``) naming the first symlink on the way to directory ``start``.

    A glob's fixed start is where its walk begins: a symlink there, or on the way there, would be a
    way in, which a match never takes. Refused, rather than selecting nothing, so that the person
    learns why and where to look instead.
    """
    links = WorkspaceLinks(ws)
    link = symlink_on_the_way(links, start, inclusive=True)
    if link is None:
        return
    if leads_outside(links, link):
        reason = "is a symlink leading outside the workspace: a match never goes through one, nor outside the workspace"
    else:
        reason = (
            "is a symlink: a match never goes through one (a link is an entry, never a way in);"
            " glob the directory it leads to"
        )
    raise MatchError("glob", f"{quoted_name(link)} {reason}")


def _ranked(
    ws: Workspace, match: Match, found: list[Found], stats: dict[str, os.stat_result], walked: int,
    bound: int | None, progress: RankProgress | None,
) -> Selection:  # fmt: skip
    """Keep the ``top_k`` files of ``found`` closest in meaning to the match's description."""
    # Imported here: engine.semantic builds on this module, and NumPy and the index load only for a semantic match.
    from engine.semantic.search import rank

    assert match.semantic is not None
    assert match.top_k is not None
    if len(found) > MAX_RANKED:
        reason = f"{len(found):,} files to rank, more than {MAX_RANKED:,}; narrow the glob or filters"
        raise MatchError("semantic", reason)
    ranking = rank(ws, match.semantic, [(item.path, stats[item.path]) for item in found], progress=progress)
    best = ranking.scores[: min(x for x in (match.top_k, match.limit) if x is not None)]
    kept = best if bound is None else best[:bound]
    by_path = {item.path: item for item in found}
    chosen = sorted(by_path[path] for path, _ in kept)
    return Selection(chosen, len(best), walked, kept, ranking.warnings, len(best),
                     {item.path: stats[item.path] for item in chosen})  # fmt: skip


def _under_any(path: str, directories: set[str]) -> bool:
    head = path.rpartition("/")[0]
    while head:
        if head in directories:
            return True
        head = head.rpartition("/")[0]
    return False


def _selects(
    ws: Workspace, match: Match, regex: Pattern, excludes: list[Pattern], path: str, kind: str,
    info: os.stat_result | None,
) -> bool:  # fmt: skip
    if match.type == "file" and kind != "file":
        return False
    if match.type == "dir" and kind != "dir":
        return False
    if not regex.match(path) or any(ex.match(path) for ex in excludes):
        return False
    name = path.rpartition("/")[2]
    if match.ext and not name.lower().endswith(match.ext):
        return False
    if match.name_regex is not None and not match.name_regex.search(name):
        return False
    if info is not None:
        if match.larger_than is not None and info.st_size <= match.larger_than:
            return False
        if match.smaller_than is not None and info.st_size >= match.smaller_than:
            return False
        if match.modified_after is not None and info.st_mtime < match.modified_after:
            return False
        if match.modified_before is not None and info.st_mtime >= match.modified_before:
            return False
    if match.contains is not None:
        head = read_head(ws, path) if kind == "file" else None
        if head is None or not holds_text(head, match.contains):
            return False
    return not (match.tag is not None and (kind != "file" or match.tag not in tags_at(ws, path)))
