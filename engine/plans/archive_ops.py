"""The archive and extract ops: ``.zip``, ``.tar.gz`` and ``.tar.xz``, within the policy's limits."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from contextlib import suppress
from typing import Any, ClassVar, TypedDict

from engine.files import archives
from engine.names import quoted_name
from engine.plans.files import Fingerprint, discard_or_trash, fingerprint, remove_quietly, remove_tree
from engine.plans.journal import Journal
from engine.plans.op_base import (
    ApplyContext,
    Op,
    PathKey,
    not_a_directory,
    require_parent,
    selection_problems,
    tmp_name,
)
from engine.plans.view import Overlay, UndoSimulation, View, WorkspaceView, open_regular
from engine.workspace.links import symlink_on_the_way
from engine.workspace.sandbox import SandboxError, Workspace, fsync_dir, rename_noreplace


class ArchiveRecord(TypedDict):
    i: int
    op: str
    to: str
    paths: list[str]


class Archive(Op[dict[str, Any], ArchiveRecord]):
    name = "archive"
    usage = (
        '{"op": "archive", "match": MATCH, "to": "old-logs.tar.gz", "remove": false}   (.zip, .tar.gz or .tar.xz;\n'
        "    remove: true moves the originals to the trash)"
    )
    paths = (PathKey("to", write=True, names_file=True, makes=True), PathKey("paths", write=False, many=True))
    defaults: ClassVar[dict[str, object]] = {"remove": False}

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, None)
        if isinstance(step.get("to"), str) and archives.archive_format(step["to"]) is None:
            problems.append(("to", f"{quoted_name(step['to'])}: name the archive .zip, .tar.gz or .tar.xz"))
        return problems

    def summary(self, step: dict[str, Any]) -> str:
        count = len(step.get("paths", []))
        return f"archive {count} path{'s' if count != 1 else ''} into {step['to']}"

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> ArchiveRecord:
        to = step["to"]
        require_parent(view, to)
        if view.kind(to) is not None:
            raise SandboxError(f"{quoted_name(to)} already exists")
        for path in step["paths"]:
            kind = view.kind(path)
            if kind is None:
                raise SandboxError(f"{quoted_name(path)} does not exist")
            if kind == "other":
                raise SandboxError(f"{quoted_name(path)}: a FIFO, socket or device cannot be archived")
            if to == path or to.startswith(path + "/"):
                raise SandboxError(
                    f"the archive {quoted_name(to)} would be inside {quoted_name(path)}, which it archives"
                )
        return {"i": index, "op": self.name, "to": to, "paths": list(step["paths"])}

    def execute(self, ctx: ApplyContext, record: ArchiveRecord, step: dict[str, Any]) -> None:
        fmt = archives.archive_format(record["to"])
        assert fmt is not None
        tmp = tmp_name(ctx.journal, record["i"])
        with ctx.ws.parent(record["to"], follow=False) as (parent_fd, name):
            fd = os.open(
                tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent_fd
            )
            try:
                archives.write_archive(ctx.ws, record["paths"], fd, fmt)
                os.fsync(fd)
            finally:
                os.close(fd)
            ctx.journal.keep_made(record["i"], fingerprint(parent_fd, tmp))
            rename_noreplace(parent_fd, tmp, parent_fd, name)
            fsync_dir(parent_fd)

    def simulate(self, overlay: Overlay, record: ArchiveRecord, step: dict[str, Any]) -> None:
        overlay.put_file(record["to"], b"", 0o644)

    def undo(self, ws: Workspace, journal: Journal, record: ArchiveRecord, *, rollback: bool = False) -> None:
        index = record["i"]
        with ws.parent(record["to"], write=True) as (parent_fd, name):
            if remove_quietly(parent_fd, tmp_name(journal, index)):
                return  # the archive never reached its path: what is there is not the plan's
            made = journal.made(index) if rollback else None
            discard_or_trash(journal.trash_dir, parent_fd, name, f"undo-{index}", _holds(made))

    def undo_conflicts(self, sim: UndoSimulation, record: ArchiveRecord) -> list[str]:
        sim.present[record["to"]] = False  # undo moves the archive to the trash: nothing is lost
        return []


class Extract(Op[dict[str, Any], dict[str, Any]]):
    name = "extract"
    usage = '{"op": "extract", "from": "a.zip", "to": DIR}   (DIR is made if missing; nothing in it is replaced)'
    paths = (PathKey("from", write=False, names_file=True), PathKey("to", write=True, root_ok=True, makes=True))

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        if isinstance(step.get("from"), str) and archives.archive_format(step["from"]) is None:
            return [("from", f"{quoted_name(step['from'])}: only .zip, .tar.gz and .tar.xz archives can be extracted")]
        return []

    def summary(self, step: dict[str, Any]) -> str:
        return f"extract {step['from']} -> {step['to']}"

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> dict[str, Any]:
        source, to = step["from"], step["to"]
        fmt = archives.archive_format(source)
        assert fmt is not None
        if view.kind(source) != "file":
            raise SandboxError(f"{quoted_name(source)} is not a regular file")
        kind = view.kind(to)
        if kind not in (None, "dir"):
            raise not_a_directory(view, to, kind)
        require_parent(view, to)
        members = _members(view, source, fmt)
        top = sorted({member.name.split("/")[0] for member in members})
        if kind == "dir":
            taken = [name for name in top if view.kind(_inside(to, name)) is not None]
            if taken:
                raise SandboxError(
                    f"extracting {quoted_name(source)} would replace {quoted_name(_inside(to, taken[0]))}; "
                    "nothing is replaced"
                )
        return {"i": index, "op": self.name, "from": source, "to": to, "created": kind is None, "entries": top,
                "_members": members}  # fmt: skip

    def execute(self, ctx: ApplyContext, record: dict[str, Any], step: dict[str, Any]) -> None:
        fmt = archives.archive_format(record["from"])
        assert fmt is not None
        tmp = tmp_name(ctx.journal, record["i"])
        inside = record["to"] if not record["created"] else (record["to"].rpartition("/")[0] or ".")
        source_fd = open_regular(ctx.ws, record["from"])
        try:
            holder = ctx.ws.open(inside, os.O_PATH | os.O_DIRECTORY, follow=False)
            try:
                os.mkdir(tmp, 0o700, dir_fd=holder)
                dest = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=holder)
                try:
                    archives.extract_archive(source_fd, fmt, dest, ctx.archive_limits)
                    os.fchmod(dest, 0o755)
                finally:
                    os.close(dest)
                ctx.journal.keep_made(record["i"], fingerprint(holder, tmp))
                if record["created"]:
                    rename_noreplace(holder, tmp, holder, record["to"].rpartition("/")[2])
                else:
                    for name in record["entries"]:
                        with dir_fd_at(holder, tmp) as tmp_fd:
                            rename_noreplace(tmp_fd, name, holder, name)
                    os.rmdir(tmp, dir_fd=holder)
                fsync_dir(holder)
            finally:
                os.close(holder)
        finally:
            os.close(source_fd)

    def simulate(self, overlay: Overlay, record: dict[str, Any], step: dict[str, Any]) -> None:
        to = record["to"]
        if record["created"]:
            overlay.make_dir(to)
        for member in sorted(record.pop("_members"), key=lambda m: m.name):
            path = _inside(to, member.name)
            if member.kind == "dir":
                overlay.make_dir(path)
            else:
                overlay.put_file(path, b"", member.mode)

    def undo(self, ws: Workspace, journal: Journal, record: dict[str, Any], *, rollback: bool = False) -> None:
        index, to = record["i"], record["to"]
        inside = to if not record["created"] else (to.rpartition("/")[0] or ".")
        try:
            holder = ws.open_dir(inside, write=True)
        except SandboxError as exc:
            code = getattr(exc, "errno", None)
            # Nothing there, or no directory: the step left nothing in it. A symlink on the way
            # (ENOTDIR where the kernel lacks openat2) is no such thing: the caller names it.
            if code == errno.ENOENT or (
                code == errno.ENOTDIR and symlink_on_the_way(WorkspaceView(ws), inside, inclusive=True) is None
            ):
                return
            raise
        try:
            pending = remove_tree(holder, tmp_name(journal, index))
            made = journal.made(index) if rollback else None
            if record["created"]:
                if not pending:  # else the folder never reached its path: what is there is not the plan's
                    discard_or_trash(journal.trash_dir, holder, to.rpartition("/")[2], f"undo-{index}", _holds(made))
                return
            aside = journal.trash_dir / f"undo-{index}"
            for name in record["entries"]:
                if not _exists(holder, name):
                    continue  # put aside already (an undo that was stopped), or gone
                aside.mkdir(exist_ok=True)
                discard_or_trash(aside, holder, name, name, _holds(_beneath(made, name)))
            with suppress(OSError):  # all of it removed outright: no folder is left in the trash
                aside.rmdir()
            fsync_dir(holder)
        finally:
            os.close(holder)

    def undo_conflicts(self, sim: UndoSimulation, record: dict[str, Any]) -> list[str]:
        to = record["to"]
        if record["created"]:
            sim.present[to] = False
        for name in record["entries"]:
            sim.present[_inside(to, name)] = False
        return []  # what undo takes away goes to the trash


def _holds(made: Fingerprint | None) -> Callable[[int, str], bool]:
    """A check for :func:`discard_or_trash`: the entry is still what a step made (``made``; None: not known)."""
    return lambda parent_fd, name: made is not None and fingerprint(parent_fd, name) == made


def _beneath(made: Fingerprint | None, name: str) -> Fingerprint | None:
    """The part of ``made`` (a folder's fingerprint) that is the entry ``name`` in it, or None."""
    if made is None or name not in made:
        return None
    return {rel[len(name) + 1 :] if rel != name else "": value for rel, value in made.items()
            if rel == name or rel.startswith(name + "/")}  # fmt: skip


def _exists(parent_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _inside(directory: str, name: str) -> str:
    return name if directory == "." else f"{directory}/{name}"


def _members(view: View, source: str, fmt: str) -> list[archives.Member]:
    fd = view.open_file(source)
    try:
        return archives.read_members(fd, fmt, view.archive_limits)
    except archives.ArchiveError as exc:
        raise SandboxError(f"{quoted_name(source)}: {exc}") from None
    finally:
        os.close(fd)


class dir_fd_at:
    """Hold a descriptor of directory ``name`` in ``parent_fd``, never through a symlink."""

    def __init__(self, parent_fd: int, name: str) -> None:
        self.fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
