"""The file-management ops: rename and classify (which become moves), tags, archives and extraction.

``rename`` and ``classify`` exist only before expansion: :mod:`engine.plans.expand` turns them
into concrete ``mkdir`` and ``move`` steps, which the journal records. ``tag``, ``untag``,
``archive`` and ``extract`` also run as concrete steps, one file (or one archive) each.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import suppress
from typing import Any, ClassVar, TypedDict

from engine.files import archives, tags
from engine.files.classify import parse_rules
from engine.files.match import MatchError, compile_regex
from engine.files.rename import replacement_problem, template_problem
from engine.plans.files import dir_fd, sha, to_trash, write_new
from engine.plans.journal import Journal
from engine.plans.op_base import (
    ApplyContext,
    Change,
    Op,
    PathKey,
    StepFailed,
    require_parent,
    selection_problems,
    tmp_name,
)
from engine.plans.view import Overlay, UndoSimulation, View
from engine.workspace.sandbox import SandboxError, Workspace, check_relpath, fsync_dir, rename_noreplace

_SELECTION = (PathKey("paths", write=True, many=True),)


class _Expanded(Op[dict[str, Any], dict[str, Any]]):
    """An op that exists only until :func:`engine.plans.expand.expand_plan` turns it into moves."""

    def summary(self, step: dict[str, Any]) -> str:
        selection = "match" if "match" in step else f"{len(step.get('paths', []))} paths"
        return f"{self.name} ({selection})"

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> dict[str, Any]:
        raise StepFailed(f"a {self.name} step runs only after its files are chosen (expand the plan first)")


class Rename(_Expanded):
    name = "rename"
    usage = (
        '{"op": "rename", "match": MATCH, "template": "photo_{n:03}{ext}"}   (each keeps its directory;\n'
        "    placeholders {name} {stem} {ext} {n} {n:03} {parent} {mtime:%Y-%m-%d})\n"
        '  {"op": "rename", "match": MATCH, "find": REGEX, "replace": "\\\\1-new"}   (over the name only)'
    )
    paths = _SELECTION

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, None)
        has_template, has_find = "template" in step, "find" in step
        if has_template == has_find:
            problems.append(("template", "give either 'template' or 'find' with 'replace'"))
        elif has_template and isinstance(step["template"], str) and (why := template_problem(step["template"])):
            problems.append(("template", why))
        elif has_find:
            if "replace" not in step:
                problems.append(("replace", "missing: 'find' needs 'replace'"))
            elif isinstance(step["find"], str) and isinstance(step["replace"], str):
                try:
                    find = compile_regex(step["find"], "find")
                except MatchError as exc:
                    problems.append(("find", exc.reason))
                else:
                    if why := replacement_problem(find, step["replace"]):
                        problems.append(("replace", why))
        if "replace" in step and not has_find:
            problems.append(("replace", "'replace' goes with 'find'"))
        return problems


class Classify(_Expanded):
    name = "classify"
    usage = (
        '{"op": "classify", "match": MATCH, "rules": [{"contains": TEXT, "to": DIR}, {"regex": RE, "to": DIR},\n'
        '    {"ext": [".png"], "to": DIR}, {"glob": GLOB, "to": DIR}, {"default": true, "to": DIR}]}\n'
        "    (the first rule that holds moves the file into its DIR; files no rule takes stay)"
    )
    paths = _SELECTION

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, None)
        rules = step.get("rules")
        if isinstance(rules, list) and all(isinstance(rule, dict) for rule in rules):
            for index, rule in enumerate(rules):
                if isinstance(rule.get("to"), str):
                    try:
                        check_relpath(rule["to"], write=True)
                    except SandboxError as exc:
                        problems.append((f"rules/{index}/to", str(exc)))
            try:
                parse_rules(rules)
            except MatchError as exc:
                problems.append((f"rules/{exc.key}", exc.reason))
            except (KeyError, TypeError):
                pass  # the schema says what is wrong with its shape
        return problems


# -- tags ---------------------------------------------------------------------------------------


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


def _open_regular(ws: Workspace, path: str) -> int:
    with ws.parent(path) as (parent_fd, name):
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)


class _TagOp(Op[dict[str, Any], TagRecord]):
    """tag and untag: add or remove tags of one file (Markdown front matter, else ``user.xdg.tags``)."""

    paths = (PathKey("path", write=True, names_file=True), *_SELECTION)
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
            raise SandboxError(f"{path!r} is not a regular file; only files carry tags")
        if tags.is_markdown(path):
            old, mode = view.read(path)
            new = tags.with_front_matter_tags(old, self._changed(tags.front_matter_tags(old), step))
            return {"i": index, "op": self.name, "path": path, "how": "front-matter", "existed": True, "mode": mode,
                    "sha": sha(new), "_new": new}  # fmt: skip
        value = view.tags_value(path)
        current = tags.decode_tags(value) if value is not None else []
        wanted = self._changed(current, step)
        new_value = tags.encode_tags(wanted) if wanted else None
        return {"i": index, "op": self.name, "path": path, "how": "xattr", "old": _hex(value), "new": _hex(new_value)}

    def execute(self, ctx: ApplyContext, record: TagRecord, step: dict[str, Any]) -> None:
        if record["how"] == "xattr":
            fd = _open_regular(ctx.ws, record["path"])
            try:
                tags.set_xattr_value(fd, _unhex(record["new"]))
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        journal, index = ctx.journal, record["i"]
        with ctx.ws.parent(record["path"]) as (parent_fd, name):
            os.link(name, journal.backup_dir / str(index), src_dir_fd=parent_fd, follow_symlinks=False)
            write_new(parent_fd, tmp_name(journal, index), record.pop("_new"), record["mode"])
            _copy_xattrs(parent_fd, name, tmp_name(journal, index))
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

    def undo(self, ws: Workspace, journal: Journal, record: TagRecord) -> None:
        index = record["i"]
        if record["how"] == "xattr":
            try:
                fd = _open_regular(ws, record["path"])
            except (FileNotFoundError, SandboxError) as exc:
                if getattr(exc, "errno", errno.ENOENT) == errno.ENOENT:
                    return  # the file is gone: nothing carries the tags any more
                raise
            try:
                tags.set_xattr_value(fd, _unhex(record["old"]))
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        with ws.parent(record["path"]) as (parent_fd, name):
            with suppress(FileNotFoundError):
                os.unlink(tmp_name(journal, index), dir_fd=parent_fd)
            if (journal.backup_dir / str(index)).exists():
                with dir_fd(journal.backup_dir) as backup_fd:
                    os.rename(str(index), name, src_dir_fd=backup_fd, dst_dir_fd=parent_fd)
                fsync_dir(parent_fd)

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
                problems.append(f"the tags or content of {path!r} changed after the plan was applied")
        sim.present[path] = True
        return problems


def _copy_xattrs(parent_fd: int, source: str, target: str) -> None:
    """Give ``target`` the user attributes of ``source`` (a rewritten file keeps its other tags and notes)."""
    try:
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return
    try:
        names = [name for name in os.listxattr(src) if name.startswith("user.")]
        if not names:
            return
        dst = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            for name in names:
                os.setxattr(dst, name, os.getxattr(src, name))
        finally:
            os.close(dst)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(src)


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


# -- archives -------------------------------------------------------------------------------------


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
    paths = (PathKey("to", write=True, names_file=True), PathKey("paths", write=False, many=True))
    defaults: ClassVar[dict[str, object]] = {"remove": False}

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, None)
        if isinstance(step.get("to"), str) and archives.archive_format(step["to"]) is None:
            problems.append(("to", f"{step['to']!r}: name the archive .zip, .tar.gz or .tar.xz"))
        return problems

    def summary(self, step: dict[str, Any]) -> str:
        count = len(step.get("paths", []))
        return f"archive {count} path{'s' if count != 1 else ''} into {step['to']}"

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> ArchiveRecord:
        to = step["to"]
        require_parent(view, to)
        if view.kind(to) is not None:
            raise SandboxError(f"{to!r} already exists")
        for path in step["paths"]:
            kind = view.kind(path)
            if kind is None:
                raise SandboxError(f"{path!r} does not exist")
            if kind == "other":
                raise SandboxError(f"{path!r}: a FIFO, socket or device cannot be archived")
            if to == path or to.startswith(path + "/"):
                raise SandboxError(f"the archive {to!r} would be inside {path!r}, which it archives")
        return {"i": index, "op": self.name, "to": to, "paths": list(step["paths"])}

    def execute(self, ctx: ApplyContext, record: ArchiveRecord, step: dict[str, Any]) -> None:
        fmt = archives.archive_format(record["to"])
        assert fmt is not None
        tmp = tmp_name(ctx.journal, record["i"])
        with ctx.ws.parent(record["to"]) as (parent_fd, name):
            fd = os.open(
                tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent_fd
            )
            try:
                archives.write_archive(ctx.ws, record["paths"], fd, fmt)
                os.fsync(fd)
            finally:
                os.close(fd)
            rename_noreplace(parent_fd, tmp, parent_fd, name)
            fsync_dir(parent_fd)

    def simulate(self, overlay: Overlay, record: ArchiveRecord, step: dict[str, Any]) -> None:
        overlay.put_file(record["to"], b"", 0o644)

    def undo(self, ws: Workspace, journal: Journal, record: ArchiveRecord) -> None:
        with ws.parent(record["to"]) as (parent_fd, name):
            with suppress(FileNotFoundError):
                os.unlink(tmp_name(journal, record["i"]), dir_fd=parent_fd)
            to_trash(journal.trash_dir, parent_fd, name, f"undo-{record['i']}")

    def undo_conflicts(self, sim: UndoSimulation, record: ArchiveRecord) -> list[str]:
        sim.present[record["to"]] = False  # undo moves the archive to the trash: nothing is lost
        return []


class Extract(Op[dict[str, Any], dict[str, Any]]):
    name = "extract"
    usage = '{"op": "extract", "from": "a.zip", "to": DIR}   (DIR is made if missing; nothing in it is replaced)'
    paths = (PathKey("from", write=False, names_file=True), PathKey("to", write=True, root_ok=True))

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        if isinstance(step.get("from"), str) and archives.archive_format(step["from"]) is None:
            return [("from", f"{step['from']!r}: only .zip, .tar.gz and .tar.xz archives can be extracted")]
        return []

    def summary(self, step: dict[str, Any]) -> str:
        return f"extract {step['from']} -> {step['to']}"

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> dict[str, Any]:
        source, to = step["from"], step["to"]
        fmt = archives.archive_format(source)
        assert fmt is not None
        if view.kind(source) != "file":
            raise SandboxError(f"{source!r} is not a regular file")
        kind = view.kind(to)
        if kind not in (None, "dir"):
            raise SandboxError(f"{to!r} exists and is not a directory")
        require_parent(view, to)
        members = _members(view, source, fmt)
        top = sorted({member.name.split("/")[0] for member in members})
        if kind == "dir":
            taken = [name for name in top if view.kind(_inside(to, name)) is not None]
            if taken:
                raise SandboxError(
                    f"extracting {source!r} would replace {_inside(to, taken[0])!r}; nothing is replaced"
                )
        return {"i": index, "op": self.name, "from": source, "to": to, "created": kind is None, "entries": top,
                "_members": members}  # fmt: skip

    def execute(self, ctx: ApplyContext, record: dict[str, Any], step: dict[str, Any]) -> None:
        fmt = archives.archive_format(record["from"])
        assert fmt is not None
        tmp = tmp_name(ctx.journal, record["i"])
        inside = record["to"] if not record["created"] else (record["to"].rpartition("/")[0] or ".")
        source_fd = _open_regular(ctx.ws, record["from"])
        try:
            holder = ctx.ws.open(inside, os.O_PATH | os.O_DIRECTORY)
            try:
                os.mkdir(tmp, 0o700, dir_fd=holder)
                dest = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=holder)
                try:
                    archives.extract_archive(source_fd, fmt, dest, ctx.archive_limits)
                    os.fchmod(dest, 0o755)
                finally:
                    os.close(dest)
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

    def undo(self, ws: Workspace, journal: Journal, record: dict[str, Any]) -> None:
        index, to = record["i"], record["to"]
        inside = to if not record["created"] else (to.rpartition("/")[0] or ".")
        try:
            holder = ws.open(inside, os.O_PATH | os.O_DIRECTORY)
        except SandboxError as exc:
            if getattr(exc, "errno", None) in (errno.ENOENT, errno.ENOTDIR):
                return
            raise
        try:
            _remove_tree(holder, tmp_name(journal, index))
            if record["created"]:
                to_trash(journal.trash_dir, holder, to.rpartition("/")[2], f"undo-{index}")
                return
            aside = journal.trash_dir / f"undo-{index}"
            aside.mkdir(exist_ok=True)
            with dir_fd(aside) as aside_fd:
                for name in record["entries"]:
                    try:
                        rename_noreplace(holder, name, aside_fd, name)
                    except FileNotFoundError:
                        continue
                fsync_dir(aside_fd)
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


def _inside(directory: str, name: str) -> str:
    return name if directory == "." else f"{directory}/{name}"


def _members(view: View, source: str, fmt: str) -> list[archives.Member]:
    fd = view.open_file(source)
    try:
        return archives.read_members(fd, fmt, view.archive_limits)
    except archives.ArchiveError as exc:
        raise SandboxError(f"{source!r}: {exc}") from None
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


def _remove_tree(parent_fd: int, name: str) -> None:
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if info.st_mode & 0o170000 == 0o040000:
        shutil.rmtree(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)


#: The ops of this module, in the order the rules list them.
BULK_OPS: tuple[Op[Any, Any], ...] = (Rename(), Classify(), Tag(), Untag(), Archive(), Extract())
