"""The tag and untag ops: a Markdown file's front matter, any other file's ``user.xdg.tags`` attribute."""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from typing import Any, ClassVar, TypedDict

from engine.files import tags
from engine.names import quoted_name
from engine.plans.files import dir_fd, rewrite_identity, sha, write_new
from engine.plans.journal import Journal
from engine.plans.op_base import (
    ApplyContext,
    Change,
    Op,
    PathKey,
    selection_problems,
    tmp_name,
)
from engine.plans.view import Overlay, UndoSimulation, View, WorkspaceView, open_regular
from engine.workspace.sandbox import SandboxError, Workspace, fsync_dir

SELECTION = (PathKey("paths", write=True, many=True),)


class TagRecord(TypedDict, total=False):
    i: int
    op: str
    path: str
    how: str  # "front-matter" (the file's content changes) or "xattr"
    old: str | None  # xattr: the attribute's previous value in hex (None: it was not set)
    new: str | None  # xattr: the value the step sets, in hex
    mode: int  # front-matter: as a file op's record
    sha: str
    existed: bool
    _new: bytes


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _holds(fd: int, value: bytes | None, name: str) -> bool:
    """Whether the file open on ``fd`` (named ``name``) has ``value`` as its tags attribute already."""
    try:
        return tags.xattr_value(fd, name=name) == value
    except tags.TagError:
        return False  # writing it says why


def _refusal(path: str) -> str:
    return f"cannot change the tags of {path!r}"


class _TagOp(Op[dict[str, Any], TagRecord]):
    """tag and untag: add or remove tags of one file (Markdown front matter, else ``user.xdg.tags``)."""

    paths = (PathKey("path", write=True, names_file=True), *SELECTION)
    adds: ClassVar[bool]

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, "path")
        for index, tag in enumerate(step.get("tags") or []):
            if isinstance(tag, str) and (why := tags.check_tag(tag)):
                problems.append((f"tags/{index}", why))
        return problems

    def summary(self, step: dict[str, Any]) -> str:
        sign = "+" if self.adds else "-"
        return f"{self.name} {step.get('path', '')} " + " ".join(sign + tag for tag in step["tags"])

    def _changed(self, old: list[str], step: dict[str, Any]) -> list[str]:
        return tags.merged(old, add=step["tags"]) if self.adds else tags.merged(old, remove=step["tags"])

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> TagRecord:
        path = step["path"]
        if view.kind(path) != "file":
            raise SandboxError(f"{quoted_name(path)} is not a regular file; only files carry tags")
        if tags.is_markdown(path):
            if why := view.tags_unchangeable(path):
                raise tags.TagError(f"{_refusal(path)}: it {why}")
            old, mode = view.read(path)
            new = tags.with_front_matter_tags(old, self._changed(tags.front_matter_tags(old), step))
            return {"i": index, "op": self.name, "path": path, "how": "front-matter", "existed": True, "mode": mode,
                    "sha": sha(new), "_new": new}  # fmt: skip
        links = view.links(path)
        if links > 1:
            # The attribute belongs to the inode, which other names (perhaps outside the workspace) share.
            raise SandboxError(
                f"{quoted_name(path)} has {links} hard links; its tags attribute would change the file under every one "
                "of its names, perhaps outside the workspace (a Markdown file keeps tags in its text instead)"
            )
        value = view.tags_value(path)
        current = tags.decode_tags(value) if value is not None else []
        wanted = self._changed(current, step)
        new_value = tags.encode_tags(wanted) if wanted else None
        if new_value != value and (why := view.tags_unchangeable(path)):
            raise tags.TagError(f"{_refusal(path)}: it {why}")
        return {"i": index, "op": self.name, "path": path, "how": "xattr", "old": _hex(value), "new": _hex(new_value)}

    def execute(self, ctx: ApplyContext, record: TagRecord, step: dict[str, Any]) -> None:
        shown = repr(record["path"])
        if record["how"] == "xattr":
            fd = open_regular(ctx.ws, record["path"], follow=False)
            try:
                if not _holds(fd, new := _unhex(record["new"]), shown):
                    tags.set_xattr_value(fd, new, name=shown)
                    os.fsync(fd)
            finally:
                os.close(fd)
            return
        journal, index = ctx.journal, record["i"]
        with ctx.ws.parent(record["path"], follow=False) as (parent_fd, name):
            try:
                os.link(name, journal.backup_dir / str(index), src_dir_fd=parent_fd, follow_symlinks=False)
            except PermissionError as exc:
                raise tags.TagError(f"{_refusal(record['path'])}: {exc.strerror}") from None
            write_new(parent_fd, tmp_name(journal, index), record.pop("_new"), record["mode"])
            rewrite_identity(parent_fd, name, tmp_name(journal, index), record["mode"])
            os.rename(tmp_name(journal, index), name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            fsync_dir(parent_fd)

    def simulate(self, overlay: Overlay, record: TagRecord, step: dict[str, Any]) -> Change | None:
        if record["how"] == "xattr":
            return None
        path = record["path"]
        old = overlay.read(path)[0]
        new = record.pop("_new")
        overlay.put_file(path, new, record["mode"])
        return Change(path, old, new)

    def undo(self, ws: Workspace, journal: Journal, record: TagRecord, *, rollback: bool = False) -> None:
        index = record["i"]
        if record["how"] == "xattr":
            try:
                fd = open_regular(ws, record["path"], write=True)
            except (FileNotFoundError, SandboxError) as exc:
                if getattr(exc, "errno", errno.ENOENT) == errno.ENOENT:
                    return  # the file is gone: nothing carries the tags any more
                raise
            except PermissionError as exc:
                raise tags.TagError(f"{_refusal(record['path'])}: {exc.strerror}") from None
            try:
                # Where the old tags are still there (the step never ran, or set what was there), nothing is written.
                if not _holds(fd, old := _unhex(record["old"]), repr(record["path"])):
                    tags.set_xattr_value(fd, old, name=repr(record["path"]))
                    os.fsync(fd)
            finally:
                os.close(fd)
            return
        with ws.parent(record["path"], write=True) as (parent_fd, name):
            with suppress(FileNotFoundError):
                os.unlink(tmp_name(journal, index), dir_fd=parent_fd)
            if (journal.backup_dir / str(index)).exists():
                with dir_fd(journal.backup_dir) as backup_fd:
                    os.rename(str(index), name, src_dir_fd=backup_fd, dst_dir_fd=parent_fd)
                fsync_dir(parent_fd)

    def undo_unwritable(self, view: WorkspaceView, record: TagRecord) -> str | None:
        if record["how"] != "xattr":
            return None  # the backup takes the file's name back: only its directory is written
        path = record["path"]
        try:
            if view.kind(path) != "file" or view.tags_value(path) == _unhex(record["old"]):
                return None
            why = view.tags_unchangeable(path)
        except (OSError, SandboxError):
            return None  # the conflicts say what is wrong with the file
        if why is None:
            return None
        return f"{_refusal(path)}: it {why}, and undoing the plan restores them; make it writable, then undo"

    def undo_conflicts(self, sim: UndoSimulation, record: TagRecord) -> list[str]:
        path = record["path"]
        problems = []
        if path not in sim.present and sim.exists(path):
            try:
                if record["how"] == "xattr":
                    changed = sim.view.tags_value(path) != _unhex(record["new"])
                else:
                    changed = sha(sim.view.read(path)[0]) != record["sha"]
            except (OSError, SandboxError):
                changed = True
            if changed:
                problems.append(f"the tags or content of {quoted_name(path)} changed after the plan was applied")
        sim.present[path] = True
        return problems


class Tag(_TagOp):
    name = "tag"
    usage = (
        '{"op": "tag", "match": MATCH, "tags": ["architecture"]}   (or "path": P; Markdown keeps them in front matter)'
    )
    adds = True


class Untag(_TagOp):
    name = "untag"
    usage = '{"op": "untag", "match": MATCH, "tags": ["draft"]}'
    adds = False
