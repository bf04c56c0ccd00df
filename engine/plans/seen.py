"""What a preview saw of the workspace, checked again before the apply: what is applied is what was shown.

The dry run reads the workspace through a :class:`SeeingView`, which notes what each query found,
path by path: what is there (its kind); a file's identity (inode, type, size, modification time)
and what tells an edit that put those back (:func:`_edit_mark`), or a digest of its content where
the preview read it (a diff); the tags of a file a step tags; what a directory holds; where a
symlink leads; which directory is at a path (its inode), so that one put in its place is told
apart, though what is in it is compared only where the plan reads it (its names, its files). With
a digest of the concrete steps the preview showed, that is a
:class:`~engine.events.Seen`. An apply
given one (:func:`engine.plans.apply.apply_plan`) asks the same again under the workspace lock,
just before it changes anything (:func:`check_seen`), and refuses the plan if any answer differs:
a file edited while the question was open is never overwritten unseen, a file that stopped
matching a selection is never deleted, and a plan whose selections now expand to other steps is
not applied in place of the one shown.

A file's permissions and change time are not part of what is compared: a chmod, a tag or a hard
link on a file the plan deletes or moves changes nothing the preview showed. Each op takes the
mode as it is when applied (an edit keeps it, a copy copies it) and its own checks refuse what the
mode forbids; a step that reads a file's tags is asked them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, Literal, NamedTuple

from engine.errors import RouteshellError
from engine.events import Seen
from engine.files.archives import ArchiveLimits
from engine.names import quoted_name
from engine.plans.expand import PARKED
from engine.plans.view import WorkspaceView
from engine.workspace.links import Kind, kind_of
from engine.workspace.sandbox import SandboxError, Workspace

#: The facets of a path, in the order a difference in them is told.
_FACETS = ("kind", "inode", "link", "names", "content", "stat", "edit", "tags")
#: A file the preview only looked at (deleted, moved, archived, tagged), at most this large, is
#: known by a digest of its content too; a larger one, whose reading would slow every preview, by
#: its change time (then a chmod or a tag on it counts as a change).
DIGEST_UP_TO = 1 << 20
#: At most this much of such files is read by one preview, the rest known by their change time: a
#: bulk step over 800 files of 1 MB read 800 MB, and took 2 s to preview, and as long to check.
DIGEST_BUDGET = 64 << 20
#: What the person answered, that a refusal dates a change from: a preview (the steps a dry run
#: shows, with their diffs) or a question (a dialog that names the entries it acts on).
Since = Literal["preview", "question"]
_SINCE_WORDS: dict[Since, str] = {"preview": "since the preview", "question": "since the question was asked"}
_KIND_WORDS = {"file": "a file", "dir": "a directory", "link": "a symlink", "other": "a special file"}


class FoundEntry(NamedTuple):
    """An entry a question named, as it was when asked (:func:`found_in`)."""

    path: str
    info: os.stat_result  #: its ``lstat`` then
    #: A file's edit mark then (:func:`_edit_mark`): its content is compared with that, not its
    #: change time, so a chmod or a tag while the question is open is no change. None if not a file.
    mark: str | None = None


#: What a question showed of the entries it names: each that was there.
Found = list[FoundEntry]


class PreviewChanged(RouteshellError):
    """Something the preview read changed before the apply; nothing was applied."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _identity(info: os.stat_result) -> str:
    fields = (info.st_dev, info.st_ino, stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns)
    return _digest(":".join(map(str, fields)).encode())


def _edit_mark(fd: int, info: os.stat_result, *, read: bool = True) -> str:
    """What tells an edit of the open file ``fd`` (of ``info``) that kept its size and put its
    modification time back (``os.utime``): its identity cannot. Its content, read whole, when it is
    small and ``read`` allows; else its change time, which moves with that edit and no program can
    set back."""
    if read and info.st_size <= DIGEST_UP_TO:
        data = bytearray()
        with suppress(OSError):  # unreadable (no read permission): its change time must do
            # pread: the offset of ``fd``, which a caller may be reading, is left where it is.
            while len(data) <= DIGEST_UP_TO and (chunk := os.pread(fd, DIGEST_UP_TO + 1 - len(data), len(data))):
                data += chunk
            if len(data) <= DIGEST_UP_TO:
                return f"sha:{_digest(bytes(data))}"
    return f"ctime:{info.st_ctime_ns}"


def found_record(entry: FoundEntry) -> list[str | int]:
    """What a selection found (``entry``, :func:`found_as`) as plain data, to keep in a checkpoint
    until the preview (:func:`found_from_record` reads it back)."""
    info = entry.info
    return [entry.path, info.st_mode, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
            entry.mark or ""]  # fmt: skip


def found_from_record(record: object) -> FoundEntry | None:
    """The entry a :func:`found_record` holds, for :meth:`SeeingView.saw`; None when ``record`` is
    not one (it comes back from a database). Only the fields ``saw`` compares are kept: the others
    read 0. A record kept without an edit mark (seven fields) gives an entry without one: its mark
    is then taken when the preview reads it, from its content only while its change time is the same."""
    if not isinstance(record, list | tuple) or len(record) not in (7, 8) or not isinstance(record[0], str):
        return None
    path, *numbers = record[:7]
    mark = record[7] if len(record) == 8 else ""
    if not all(type(number) is int for number in numbers) or not isinstance(mark, str):
        return None
    if mark and not mark.startswith(("sha:", "ctime:")):
        return None
    mode, dev, ino, size, mtime_ns, ctime_ns = numbers
    seconds = (mode, ino, dev, 0, 0, 0, size, 0, mtime_ns // 10**9, ctime_ns // 10**9)
    info = os.stat_result(seconds, {"st_mtime_ns": mtime_ns, "st_ctime_ns": ctime_ns})
    return FoundEntry(path, info, mark or None)


def steps_digest(steps: list[dict[str, Any]]) -> str:
    """A digest of concrete ``steps``, the same for two expansions of one selection of one workspace."""
    text = json.dumps(steps, sort_keys=True, separators=(",", ":"))
    return _digest(PARKED.sub(".rs-rename-", text).encode())


def _dir_identity(info: os.stat_result) -> str:
    return _digest(f"{info.st_dev}:{info.st_ino}".encode())


def found_in(ws: Workspace, paths: Iterable[str]) -> Found:
    """Each of ``paths`` that is in ``ws`` now, with its ``lstat`` and a file's edit mark, read as a
    preview reads them (as much of them, at most); a path no plan may name is left out."""
    here = []
    for path in paths:
        try:
            info = ws.lstat(path)
        except SandboxError:
            continue  # not a path a plan may name: what names it is refused for it anyway
        if info is not None:
            here.append((path, info))
    return found_as(ws, here)


def found_as(ws: Workspace, chosen: Iterable[tuple[str, os.stat_result]]) -> Found:
    """Each entry of ``chosen`` (a path, and its ``lstat`` when a selection chose it or a question
    named it) with a file's edit mark, read as a preview reads it: from its content (at most
    :data:`DIGEST_BUDGET` of them all) only while its change time is still that of its ``lstat``,
    else that change time, which then no longer matches. Each path is given once, as first chosen.
    """
    view = SeeingView(ws)
    found = []
    for path, info in chosen:
        if path not in view.facets:
            view.saw(path, info)
            found.append(FoundEntry(path, info, view.facets[path].get("edit")))
    return found


class SeeingView(WorkspaceView):
    """The workspace as it is, noting what every query found (:attr:`facets`, by path)."""

    def __init__(self, ws: Workspace, archive_limits: ArchiveLimits | None = None) -> None:
        super().__init__(ws, archive_limits)
        self.facets: dict[str, dict[str, str]] = {}
        #: What is left of :data:`DIGEST_BUDGET` to read for edit marks.
        self.budget = DIGEST_BUDGET
        #: The kind of edit mark to take for a path ("sha" or "ctime"), where it must be the one
        #: a preview took: the check takes the same, whatever its budget.
        self.marks: dict[str, str] = {}

    def _mark(self, path: str, fd: int, info: os.stat_result) -> str:
        """The edit mark of ``path``, open as ``fd`` (of ``info``), paid from :attr:`budget`."""
        wanted = self.marks.get(path)
        read = wanted == "sha" if wanted else info.st_size <= min(DIGEST_UP_TO, self.budget)
        mark = _edit_mark(fd, info, read=read)
        if mark.startswith("sha:"):
            self.budget -= info.st_size
        return mark

    def _note(self, path: str, facet: str, value: str) -> None:
        self.facets.setdefault(path, {}).setdefault(facet, value)

    def _note_file(self, path: str, info: os.stat_result, fd: int | None = None) -> None:
        """Note the identity of the file at ``path`` (``info``, its ``lstat`` or ``fstat``) and its
        edit mark, read from ``fd`` where it is open already.

        The mark is taken from the file only if it is still the one of ``info`` and its change time
        is that of ``info`` before and after the read; else it is the change time of ``info``, which
        the file no longer has, so the apply is refused: an edit made since ``info`` was taken (while
        a semantic selection ranked) is a change, as one made after the preview is.
        """
        self._note(path, "stat", _identity(info))
        if "edit" in self.facets[path]:
            return
        mark = f"ctime:{info.st_ctime_ns}"
        own = None
        if fd is None:
            with suppress(OSError, SandboxError):  # gone, or unreadable: its change time must do
                fd = own = super().open_file(path)
        if fd is not None:
            try:
                opened = os.fstat(fd)
                if (opened.st_dev, opened.st_ino, opened.st_ctime_ns) == (info.st_dev, info.st_ino, info.st_ctime_ns):
                    read = self._mark(path, fd, opened)
                    if os.fstat(fd).st_ctime_ns == info.st_ctime_ns:
                        mark = read
            finally:
                if own is not None:
                    os.close(own)
        self._note(path, "edit", mark)

    def _note_kind(self, path: str, info: os.stat_result | None) -> Kind | None:
        """Note what is at ``path`` (``info``, its ``lstat``; None: nothing): its kind and, for a
        directory, which one it is (its inode)."""
        kind = None if info is None else kind_of(info.st_mode)
        self._note(path, "kind", kind or "none")
        if info is not None and kind == "dir":
            self._note(path, "inode", _dir_identity(info))
        return kind

    def saw(self, path: str, info: os.stat_result, mark: str | None = None) -> None:
        """Note what a selection or a question found at ``path``: its ``lstat``, taken before
        anything of it was read, and a file's edit mark then (``mark``, as :func:`found_in` takes it).

        Without ``mark``, a file's is taken now, from its content only if nothing of it changed
        since ``info`` (:meth:`_note_file`). A directory is known by its inode: one put in its place
        is a change, what is in it is compared where the plan reads it.
        """
        if self._note_kind(path, info) != "file":
            return
        if mark is None:
            self._note_file(path, info)
            return
        self._note(path, "stat", _identity(info))
        if "edit" not in self.facets[path]:
            self._note(path, "edit", mark)
            if mark.startswith("sha:"):  # read when asked: what this preview may still read is less
                self.budget -= info.st_size

    def kind(self, path: str) -> Kind | None:
        info = self.ws.lstat(path)
        kind = self._note_kind(path, info)
        if info is not None and kind == "file":
            self._note_file(path, info)
        return kind

    def read(self, path: str) -> tuple[bytes, int]:
        data, mode = super().read(path)
        self._note(path, "content", _digest(data))
        return data, mode

    def link_target(self, path: str) -> str:
        target = super().link_target(path)
        self._note(path, "link", _digest(os.fsencode(target)))
        return target

    def children(self, path: str) -> list[str]:
        names = super().children(path)
        self._note(path, "names", _digest("/".join(sorted(names)).encode("utf-8", "surrogateescape")))
        return names

    def open_file(self, path: str) -> int:
        fd = super().open_file(path)
        self._note_file(path, os.fstat(fd), fd)
        return fd

    def tags_value(self, path: str) -> bytes | None:
        value = super().tags_value(path)
        self._note(path, "tags", "none" if value is None else _digest(value))
        return value

    def links(self, path: str) -> int:
        self.kind(path)
        return super().links(path)

    def seen(self, steps: list[dict[str, Any]]) -> Seen:
        """What this view was asked about, with the concrete ``steps`` it was asked for."""
        paths = {}
        for path, facets in self.facets.items():
            if "content" in facets:  # what was read is what counts: a file touched, not changed, is the same
                facets = {facet: value for facet, value in facets.items() if facet not in ("stat", "edit")}
            paths[path] = ";".join(f"{facet}={value}" for facet, value in sorted(facets.items()))
        return {"steps": steps_digest(steps), "paths": paths}


def _asks(view: SeeingView) -> dict[str, Callable[[str], object]]:
    return {"kind": view.kind, "inode": view.kind, "stat": view.kind, "edit": view.kind, "content": view.read,
            "link": view.link_target, "names": view.children, "tags": view.tags_value}  # fmt: skip


def _told(path: str, facet: str, before: str, now: str | None) -> str:
    if facet == "kind" and before == "none":
        return f"{quoted_name(path)} was created"
    if facet == "kind" and now in (None, "none"):
        return f"{quoted_name(path)} was removed"
    if facet == "kind":
        return f"{quoted_name(path)} was replaced by {_KIND_WORDS.get(str(now), 'something else')}"
    if facet == "inode":
        return f"{quoted_name(path)} was replaced by another directory"
    if facet == "names":
        return f"what is in {quoted_name(path)} changed"
    if facet == "tags":
        return f"the tags of {quoted_name(path)} changed"
    return f"{quoted_name(path)} was changed"


def check_seen(ws: Workspace, seen: Seen, steps: list[dict[str, Any]], since: Since = "preview") -> None:
    """Raise :class:`PreviewChanged` unless the workspace and the concrete ``steps`` are as ``seen`` says.

    Call it under the workspace lock, right before the first change: a change made after it can
    only come from outside routeshell, and each step's own checks still refuse what they refuse.
    ``since`` is what the person answered, which the refusal says the change was made after.
    """
    words = _SINCE_WORDS[since]
    if seen.get("steps") != steps_digest(steps):
        raise PreviewChanged(f"the files the plan selects changed {words} (it would now take other "
                             "steps than those shown); nothing was applied")  # fmt: skip
    view = SeeingView(ws)
    asks = _asks(view)
    for path, noted in sorted(seen.get("paths", {}).items()):
        before = {}
        for item in noted.split(";"):
            facet, _, value = item.partition("=")
            before[facet] = value
        if "edit" in before:
            view.marks[path] = before["edit"].partition(":")[0]
        for facet in before:
            # What can no longer be asked (gone, unreadable) is left out, so it differs from what was found.
            with suppress(OSError, SandboxError):
                asks.get(facet, view.kind)(path)
        now = view.facets.get(path, {})
        for facet in sorted(before, key=lambda name: _FACETS.index(name) if name in _FACETS else -1):
            if now.get(facet) != before[facet]:
                raise PreviewChanged(f"{_told(path, facet, before[facet], now.get(facet))} {words}; "
                                     "nothing was applied")  # fmt: skip


def check_found(ws: Workspace, found: Found, since: Since = "question") -> None:
    """Raise :class:`PreviewChanged` unless each entry of ``found`` (:func:`found_in`, when a question
    named it) is still what was found: a file neither edited nor replaced, a directory not replaced.
    Call it under the workspace lock, as :func:`check_seen`."""
    view = SeeingView(ws)
    for entry in found:
        view.saw(entry.path, entry.info, entry.mark)
    check_seen(ws, view.seen([]), [], since)
