"""The plan ops, each declared in one place: its paths, checks, apply, undo and preview.

An op is a subclass of :class:`Op` registered in :data:`OPS` under its name. Validation
(``model.py``), the apply and undo (``apply.py``), the dry run (``dry_run.py``) and the rules
the model is given (``agents/roles.py``) all loop over that table. A new op also needs its
step shape in ``engine/schemas/plan.schema.json``; a test keeps the two in step.

Each step is checked by :meth:`Op.prepare` against a :class:`~engine.plans.view.View`: the real
workspace when applying, the simulated one when previewing, so both refuse the same steps.
"""

from __future__ import annotations

import errno
import os
from typing import Any, ClassVar

from engine.names import quoted_name
from engine.plans.files import (
    CANNOT_COPY,
    Fingerprint,
    copy_tree,
    dir_fd,
    discard_or_trash,
    fingerprint,
    holds_digest,
    leave_out_git,
    remove_quietly,
    remove_tree,
    rewrite_identity,
    sha,
    to_trash,
    write_new,
)
from engine.plans.journal import Journal
from engine.plans.op_base import (
    ApplyContext,
    Change,
    ChangedMeanwhile,
    Op,
    PathKey,
    StepFailed,
    not_a_directory,
    refuse_mounts_inside,
    require_parent,
    selection_problems,
    tmp_name,
)
from engine.plans.runner import RunResult, run_command
from engine.plans.steps import (
    CopyStep,
    DeleteRecord,
    DeleteStep,
    FileRecord,
    FileStep,
    MkdirRecord,
    MkdirStep,
    MoveStep,
    RunRecord,
    RunStep,
    TransferRecord,
)
from engine.plans.view import Overlay, UndoSimulation, View
from engine.workspace.sandbox import SandboxError, Workspace, fsync_dir, rename_noreplace

__all__ = ["FILE_OPS", "ApplyContext", "Change", "Op", "PathKey", "StepFailed"]


# -- the ops ------------------------------------------------------------------------------------


class Mkdir(Op[MkdirStep, MkdirRecord]):
    name = "mkdir"
    usage = '{"op": "mkdir", "path": P}   (makes missing parents too)'
    paths = (PathKey("path", write=True, makes=True),)

    def summary(self, step: MkdirStep) -> str:
        return f"mkdir {step['path']}"

    def prepare(self, view: View, index: int, step: MkdirStep) -> MkdirRecord:
        created: list[str] = []
        prefix = ""
        for part in step["path"].split("/"):
            prefix = f"{prefix}/{part}" if prefix else part
            kind = view.kind(prefix)
            if kind is None:
                created.append(prefix)
            elif kind != "dir":
                raise not_a_directory(view, prefix, kind)
        return {"i": index, "op": self.name, "created": created}

    def execute(self, ctx: ApplyContext, record: MkdirRecord, step: MkdirStep) -> None:
        created = record["created"]  # each one inside the one before
        if not created:
            return
        # Found by name once, every symlink on the way refused; each next one made in the last by descriptor.
        with ctx.ws.parent(created[0], follow=False) as (parent_fd, name):
            holder = os.dup(parent_fd)
        try:
            for directory in created:
                name = directory.rpartition("/")[2]
                os.mkdir(name, 0o755, dir_fd=holder)
                fsync_dir(holder)
                inner = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=holder)
                os.close(holder)
                holder = inner
        finally:
            os.close(holder)

    def simulate(self, overlay: Overlay, record: MkdirRecord, step: MkdirStep) -> None:
        for directory in record["created"]:
            overlay.make_dir(directory)

    def undo(self, ws: Workspace, journal: Journal, record: MkdirRecord, *, rollback: bool = False) -> None:
        for directory in reversed(record["created"]):
            with ws.parent(directory, write=True) as (parent_fd, name):
                try:
                    os.rmdir(name, dir_fd=parent_fd)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    # Not empty, or in use (a filesystem mounted on it): it stays, as undo says.
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EBUSY):
                        raise

    def undo_conflicts(self, sim: UndoSimulation, record: MkdirRecord) -> list[str]:
        problems = []
        for directory in reversed(record["created"]):
            if sim.kind(directory) == "dir":
                stray = [name for name in sim.children(directory) if f"{directory}/{name}" not in record["created"]]
                if stray:
                    path = f"{directory}/{stray[0]}"
                    problems.append(
                        f"{quoted_name(path)} was put in the directory {quoted_name(directory)} after the plan made it"
                        " (undo removes that directory); move it elsewhere, then undo"
                    )
            sim.present[directory] = False
        return problems


class _FileOp(Op[FileStep, FileRecord]):
    """write, append and patch: replace a file's content with one computed from the old one."""

    paths = (PathKey("path", write=True, names_file=True),)

    def summary(self, step: FileStep) -> str:
        return f"{self.name} {step['path']}"

    def new_content(self, step: FileStep, old: bytes) -> bytes:
        raise NotImplementedError

    def check_existing(self, step: FileStep) -> None:
        """Raise when the step may not change a file that exists."""

    def prepare(self, view: View, index: int, step: FileStep) -> FileRecord:
        path = step["path"]
        require_parent(view, path)
        kind = view.kind(path)
        if kind not in (None, "file"):
            raise SandboxError(f"{quoted_name(path)} exists and is not a regular file")
        old, mode = b"", 0o644
        if kind is not None:
            self.check_existing(step)
            if why := view.replace_refused(path):
                raise SandboxError(f"cannot change {quoted_name(path)}: it {why}")
            old, mode = view.read(path)
        elif self.name == "patch":
            raise SandboxError(f"{quoted_name(path)} does not exist")
        expected = step.get("if_sha256")
        # Checked here, under the workspace lock and against what is about to be replaced, so a
        # change made by something else since the new content was made from the old is never lost.
        if expected is not None and (kind is None or sha(old) != expected):
            now = "no longer exists" if kind is None else "no longer holds the content it was changed from"
            raise ChangedMeanwhile(f"{quoted_name(path)} {now} (something else changed it)")
        new = self.new_content(step, old)
        return {"i": index, "op": self.name, "path": path, "existed": kind is not None, "mode": mode, "sha": sha(new),
                "_new": new}  # fmt: skip

    def execute(self, ctx: ApplyContext, record: FileRecord, step: FileStep) -> None:
        journal, index = ctx.journal, record["i"]
        with ctx.ws.parent(record["path"], follow=False) as (parent_fd, name):
            if record["existed"]:
                # The old inode becomes the backup: same bytes, mode and mtime, and the path keeps
                # the old content until the rename below swaps in the new one.
                os.link(name, journal.backup_dir / str(index), src_dir_fd=parent_fd, follow_symlinks=False)
            write_new(parent_fd, tmp_name(journal, index), record.pop("_new"), record["mode"])
            if record["existed"]:
                rewrite_identity(parent_fd, name, tmp_name(journal, index), record["mode"])
                os.rename(tmp_name(journal, index), name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            else:
                # A file made there since the plan was checked is someone's: it is never replaced.
                rename_noreplace(parent_fd, tmp_name(journal, index), parent_fd, name)
            fsync_dir(parent_fd)

    def simulate(self, overlay: Overlay, record: FileRecord, step: FileStep) -> Change:
        path = record["path"]
        old = overlay.read(path)[0] if record["existed"] else None
        new = record.pop("_new")
        overlay.put_file(path, new, record["mode"])
        return Change(path, old, new)

    def undo(self, ws: Workspace, journal: Journal, record: FileRecord, *, rollback: bool = False) -> None:
        index = record["i"]
        with ws.parent(record["path"], write=True) as (parent_fd, name):
            # A new file's content still waiting under its temporary name was never put in place:
            # whatever is at the path now is not the plan's.
            if remove_quietly(parent_fd, tmp_name(journal, index)) and not record["existed"]:
                return
            backup = journal.backup_dir / str(index)
            if backup.exists():
                with dir_fd(journal.backup_dir) as backup_fd:
                    os.rename(str(index), name, src_dir_fd=backup_fd, dst_dir_fd=parent_fd)
                fsync_dir(parent_fd)
            elif not record["existed"] and rollback:
                discard_or_trash(journal.trash_dir, parent_fd, name, f"undo-{index}", holds_digest(record["sha"]))
            elif not record["existed"]:
                to_trash(journal.trash_dir, parent_fd, name, f"undo-{index}")

    def undo_conflicts(self, sim: UndoSimulation, record: FileRecord) -> list[str]:
        path = record["path"]
        problems = []
        if path not in sim.present and sim.exists(path):
            try:
                data = sim.view.read(path)[0]
            except (OSError, SandboxError):
                data = b""
            if sha(data) != record["sha"]:
                problems.append(f"{quoted_name(path)} changed after the plan was applied")
        sim.present[path] = record["existed"]
        return problems


class Write(_FileOp):
    name = "write"
    usage = '{"op": "write", "path": P, "content": TEXT, "overwrite": true|false}   (overwrite defaults to false)'
    paths = (PathKey("path", write=True, names_file=True, makes=True),)
    texts = ("content",)
    defaults: ClassVar[dict[str, object]] = {"overwrite": False}

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        if "if_sha256" in step and step.get("overwrite") is not True:
            return [("if_sha256", 'replaces a file that exists, so it needs "overwrite": true')]
        return []

    def check_existing(self, step: FileStep) -> None:
        if not step.get("overwrite"):
            raise SandboxError(f'{quoted_name(step["path"])} already exists (set "overwrite": true to replace it)')

    def new_content(self, step: FileStep, old: bytes) -> bytes:
        return str(step.get("content")).encode("utf-8")


class Append(_FileOp):
    name = "append"
    usage = '{"op": "append", "path": P, "content": TEXT}'
    texts = ("content",)

    def new_content(self, step: FileStep, old: bytes) -> bytes:
        return old + str(step.get("content")).encode("utf-8")


class Patch(_FileOp):
    name = "patch"
    usage = '{"op": "patch", "path": P, "find": TEXT, "replace": TEXT, "count": N}  (find must occur exactly N times, default 1)'  # noqa: E501
    texts = ("find", "replace")
    defaults: ClassVar[dict[str, object]] = {"count": 1}

    def new_content(self, step: FileStep, old: bytes) -> bytes:
        assert step["op"] == "patch"
        try:
            text = old.decode("utf-8")
        except UnicodeDecodeError:
            raise SandboxError(f"{quoted_name(step['path'])} is not UTF-8 text; patch works on text") from None
        found = text.count(step["find"])
        wanted = step["count"]
        if found == 0:
            raise SandboxError(f"{quoted_name(step['path'])}: the text to find does not occur")
        if wanted and found < wanted:
            raise SandboxError(
                f"{quoted_name(step['path'])}: the text to find occurs {found} times, fewer than count={wanted}"
            )
        return text.replace(step["find"], step["replace"], wanted or -1).encode("utf-8")


class _Transfer(Op[Any, TransferRecord]):
    """move and copy: from one path to another that must not exist yet."""

    paths: ClassVar[tuple[PathKey, ...]]

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, "from")
        if not problems and "from" in step and "keep_tree" in step:
            problems.append(("keep_tree", "only a step with 'match' or 'paths' keeps a tree; drop it"))
        return problems

    def summary(self, step: MoveStep | CopyStep) -> str:
        return f"{self.name} {step['from']} -> {step['to']}"

    def prepare(self, view: View, index: int, step: MoveStep | CopyStep) -> TransferRecord:
        src, dst = step["from"], step["to"]
        require_parent(view, dst)
        if view.kind(src) is None:
            raise SandboxError(f"{quoted_name(src)} does not exist")
        if view.kind(dst) is not None:
            raise SandboxError(f"{quoted_name(dst)} already exists")
        if dst.startswith(src + "/"):
            raise SandboxError(f"cannot {self.name} {quoted_name(src)} into itself ({quoted_name(dst)})")
        if self.name == "move":
            refuse_mounts_inside(view, src)
        return {"i": index, "op": self.name, "from": src, "to": dst}

    def simulate(self, overlay: Overlay, record: TransferRecord, step: MoveStep | CopyStep) -> None:
        overlay.transfer(record["from"], record["to"], keep_source=self.name == "copy")


class Move(_Transfer):
    name = "move"
    usage = (
        '{"op": "move", "from": P, "to": P}   (to is the new path in full)\n'
        '  {"op": "move", "match": MATCH, "to": DIR, "keep_tree": false}   (every file MATCH selects, into DIR)'
    )
    paths = (PathKey("from", write=True), PathKey("to", write=True, names_file=True, makes=True),
             PathKey("paths", write=True, many=True))  # fmt: skip

    def execute(self, ctx: ApplyContext, record: TransferRecord, step: MoveStep) -> None:
        with (
            ctx.ws.parent(record["from"], follow=False) as (src_fd, src_name),
            ctx.ws.parent(record["to"], follow=False) as (dst_fd, dst_name),
        ):
            rename_noreplace(src_fd, src_name, dst_fd, dst_name)
            fsync_dir(src_fd)
            fsync_dir(dst_fd)

    def undo(self, ws: Workspace, journal: Journal, record: TransferRecord, *, rollback: bool = False) -> None:
        if ws.lstat(record["to"]) is not None and ws.lstat(record["from"]) is None:
            with (
                ws.parent(record["to"], write=True) as (dst_fd, dst_name),
                ws.parent(record["from"], write=True) as (src_fd, src_name),
            ):
                rename_noreplace(dst_fd, dst_name, src_fd, src_name)
                fsync_dir(src_fd)

    def undo_conflicts(self, sim: UndoSimulation, record: TransferRecord) -> list[str]:
        problems = []
        if not sim.exists(record["to"]):
            problems.append(f"{quoted_name(record['to'])} is gone, so it cannot be moved back")
        elif sim.exists(record["from"]):
            problems.append(
                f"{quoted_name(record['from'])} exists again, so {quoted_name(record['to'])} cannot be moved back"
            )
        sim.present[record["from"]], sim.present[record["to"]] = True, False
        return problems


class Copy(_Transfer):
    name = "copy"
    usage = (
        '{"op": "copy", "from": P, "to": P}   (to is the new path in full)\n'
        '  {"op": "copy", "match": MATCH, "to": DIR, "keep_tree": false}'
    )
    paths = (PathKey("from", write=False), PathKey("to", write=True, names_file=True, makes=True),
             PathKey("paths", write=False, many=True))  # fmt: skip

    def prepare(self, view: View, index: int, step: MoveStep | CopyStep) -> TransferRecord:
        record = super().prepare(view, index, step)
        # What the copy will hold, so that undo can tell a later edit from the plan's own bytes.
        # Every .git in it is left out, as copy_tree leaves it out.
        record["tree"] = leave_out_git(view.fingerprint(record["from"]))[0]
        for rel, described in record["tree"].items():
            if described == "o":
                raise SandboxError(
                    f"{quoted_name(record['from'] + '/' + rel if rel else record['from'])}: {CANNOT_COPY}"
                )
        return record

    def simulate(self, overlay: Overlay, record: TransferRecord, step: MoveStep | CopyStep) -> None:
        left = overlay.transfer(record["from"], record["to"], keep_source=True)
        if left:  # said in the preview, after the step's summary
            shown = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
            only = len(left) == 1 and "/" not in left[0]  # directly in the folder copied
            record["_remark"] = f"its {left[0]} left out" if only else f"{shown} left out"

    def execute(self, ctx: ApplyContext, record: TransferRecord, step: CopyStep) -> None:
        with (
            ctx.ws.parent(record["from"]) as (src_fd, src_name),
            ctx.ws.parent(record["to"], follow=False) as (dst_fd, dst_name),
        ):
            tmp = tmp_name(ctx.journal, record["i"])
            copy_tree(src_fd, src_name, dst_fd, tmp)
            rename_noreplace(dst_fd, tmp, dst_fd, dst_name)
            fsync_dir(dst_fd)

    def undo(self, ws: Workspace, journal: Journal, record: TransferRecord, *, rollback: bool = False) -> None:
        index = record["i"]
        tree = record.get("tree")
        # Removed outright only while its source still holds the same bytes: otherwise the copy
        # may be all that is left of what the source held before the plan.
        discard = rollback and tree is not None and _holds(ws, record["from"], tree)
        with ws.parent(record["to"], write=True) as (dst_fd, dst_name):
            if remove_tree(dst_fd, tmp_name(journal, index)):
                return  # the copy never reached its path: what is there is not the plan's
            discard_or_trash(journal.trash_dir, dst_fd, dst_name, f"undo-{index}",
                             lambda parent_fd, name: discard and fingerprint(parent_fd, name) == tree)  # fmt: skip

    def undo_conflicts(self, sim: UndoSimulation, record: TransferRecord) -> list[str]:
        dst, tree = record["to"], record.get("tree")
        problems = []
        if tree is not None and not sim.affected(dst) and sim.exists(dst):
            try:
                now = sim.view.fingerprint(dst)
            except (OSError, SandboxError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                problems.append(f"cannot check the copy {quoted_name(dst)} for later changes: {reason}")
                now = {}
            for rel, described in sorted(now.items()):
                path = f"{dst}/{rel}" if rel else dst
                if tree.get(rel) != described and not sim.affected(path):
                    what = "changed" if rel in tree else "was added"
                    problems.append(
                        f"{quoted_name(path)} {what} after the plan copied it (undo would move it to the trash);"
                        " copy your changes elsewhere or delete them, then undo"
                    )
                    break
        sim.present[dst] = False
        return problems


def _holds(ws: Workspace, path: str, tree: Fingerprint) -> bool:
    """Whether the tree at ``path`` is ``tree`` still (False when it cannot be read)."""
    try:
        with ws.parent(path) as (parent_fd, name):
            return leave_out_git(fingerprint(parent_fd, name))[0] == tree
    except (OSError, SandboxError):
        return False


class Delete(Op[DeleteStep, DeleteRecord]):
    name = "delete"
    usage = (
        '{"op": "delete", "path": P}   (a file or a whole directory; it goes to the trash)\n'
        '  {"op": "delete", "match": MATCH}'
    )
    paths = (PathKey("path", write=True), PathKey("paths", write=True, many=True))

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        return selection_problems(step, "path")

    def summary(self, step: DeleteStep) -> str:
        return f"delete {step['path']}"

    def prepare(self, view: View, index: int, step: DeleteStep) -> DeleteRecord:
        if view.kind(step["path"]) is None:
            raise SandboxError(f"{quoted_name(step['path'])} does not exist")
        refuse_mounts_inside(view, step["path"])
        return {"i": index, "op": self.name, "path": step["path"]}

    def execute(self, ctx: ApplyContext, record: DeleteRecord, step: DeleteStep) -> None:
        with (
            ctx.ws.parent(record["path"], follow=False) as (parent_fd, name),
            dir_fd(ctx.journal.trash_dir) as trash_fd,
        ):
            rename_noreplace(parent_fd, name, trash_fd, str(record["i"]))
            fsync_dir(parent_fd)
            fsync_dir(trash_fd)

    def simulate(self, overlay: Overlay, record: DeleteRecord, step: DeleteStep) -> None:
        overlay.remove(record["path"])

    def undo(self, ws: Workspace, journal: Journal, record: DeleteRecord, *, rollback: bool = False) -> None:
        index = str(record["i"])
        if os.path.lexists(journal.trash_dir / index):
            with ws.parent(record["path"], write=True) as (parent_fd, name), dir_fd(journal.trash_dir) as trash_fd:
                rename_noreplace(trash_fd, index, parent_fd, name)
                fsync_dir(parent_fd)

    def undo_conflicts(self, sim: UndoSimulation, record: DeleteRecord) -> list[str]:
        problems = []
        if sim.exists(record["path"]):
            problems.append(f"{quoted_name(record['path'])} exists again, so the deleted one cannot be restored")
        sim.present[record["path"]] = True
        return problems


class Run(Op[RunStep, RunRecord]):
    name = "run"
    usage = '{"op": "run", "argv": ["program", "arg", ...], "timeout_s": N, "check": true|false}'
    defaults: ClassVar[dict[str, object]] = {"timeout_s": 60, "check": True}

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        for argument in step.get("argv") or []:
            try:
                os.fsencode(argument)
            except UnicodeEncodeError:
                return [("argv", "an argument holds a lone surrogate, which cannot be passed to a program")]
            except TypeError:
                continue  # the schema reports it
        return []

    def summary(self, step: RunStep) -> str:
        return "run " + " ".join(step["argv"]) + f" (timeout {step['timeout_s']}s)"

    def prepare(self, view: View, index: int, step: RunStep) -> RunRecord:
        return {"i": index, "op": self.name, "argv": step["argv"]}

    def execute(self, ctx: ApplyContext, record: RunRecord, step: RunStep) -> RunResult:
        result = run_command(ctx.ws.root, step["argv"], step["timeout_s"], ctx.limits, bwrap=ctx.bwrap)
        if step["check"] and result.exit_code != 0:
            why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
            last = [f": {line[:200]}" for line in result.output_tail.strip().splitlines()[-1:]]
            raise StepFailed(f"command {step['argv'][0]!r} {why}{''.join(last)}")
        return result


#: The ops of this module, in the order the rules list them.
FILE_OPS: tuple[Op[Any, Any], ...] = (Mkdir(), Write(), Append(), Patch(), Move(), Copy(), Delete(), Run())
