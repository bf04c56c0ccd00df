"""Applying plans inside a workspace: all-or-nothing, journaled, undoable, crash-safe.

Each step is prepared (its preconditions checked and its undo information decided), recorded in
the journal and fsynced, and only then carried out. Undoing a record is idempotent, so the same
code rolls back a failed apply, undoes an applied plan, and recovers after a crash at any point.
Nothing is destroyed: replaced files are kept as backups and deleted ones go to the trash.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ExitCode, RouteshellError
from engine.plans.journal import Journal, Via, journals
from engine.plans.runner import Limits, RunResult, bubblewrap, run_command
from engine.workspace.sandbox import SandboxError, Workspace, fsync_dir, rename_noreplace
from engine.workspace.state import StateError, keep_reserve, workspace_lock

Event = dict[str, Any]
EventSink = Callable[[Event], None]


class StepFailed(RouteshellError):
    """A step could not be carried out; everything before it was rolled back (exit code 1)."""


class Cancelled(RouteshellError):
    """The apply was cancelled between steps; everything done was rolled back."""

    exit_code = ExitCode.INTERRUPTED


@dataclass
class ApplyResult:
    """An applied plan: its journal id and the results of its ``run`` steps."""

    journal_id: str
    steps: int
    runs: list[RunResult] = field(default_factory=list)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tmp_name(journal: Journal, index: int) -> str:
    return f".rs-tmp-{journal.id}-{index}"


@contextmanager
def _dir_fd(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


def _read_regular(parent_fd: int, name: str) -> tuple[bytes, int]:
    """Read a regular file by name in a directory, never through a symlink; return data and mode."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(f"{name!r}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)


def _exists(ws: Workspace, path: str) -> bool:
    return ws.lstat(path) is not None


# -- preparing and carrying out steps -------------------------------------------------------


def _require_parent(ws: Workspace, path: str) -> None:
    head = path.rpartition("/")[0]
    if not head:
        return
    info = ws.lstat(head)
    if info is None:
        raise SandboxError(f"the directory {head!r} does not exist (add a mkdir step before)")
    if not stat.S_ISDIR(info.st_mode):
        raise SandboxError(f"{head!r} is not a directory")


def _prepare(ws: Workspace, journal: Journal, index: int, step: dict[str, Any]) -> dict[str, Any]:
    """Check a step's preconditions; return its journal record, holding what undo needs."""
    op = step["op"]
    record: dict[str, Any] = {"i": index, "op": op}
    for key in ("path", "to"):
        if key in step and op not in ("mkdir", "delete"):
            _require_parent(ws, step[key])
    if op == "mkdir":
        created: list[str] = []
        prefix = ""
        for part in step["path"].split("/"):
            prefix = f"{prefix}/{part}" if prefix else part
            info = ws.lstat(prefix)
            if info is None:
                created.append(prefix)
            elif not stat.S_ISDIR(info.st_mode):
                raise SandboxError(f"{prefix!r} exists and is not a directory")
        record["created"] = created
    elif op in ("write", "append", "patch"):
        path = step["path"]
        info = ws.lstat(path)
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise SandboxError(f"{path!r} exists and is not a regular file")
        old = b""
        mode = 0o644
        if info is not None:
            if op == "write" and not step["overwrite"]:
                raise SandboxError(f'{path!r} already exists (set "overwrite": true to replace it)')
            with ws.parent(path) as (parent_fd, name):
                old, mode = _read_regular(parent_fd, name)
        elif op == "patch":
            raise SandboxError(f"{path!r} does not exist")
        new = new_content(step, old)
        record.update(path=path, existed=info is not None, mode=mode, sha=_sha(new))
        record["_new"] = new  # carried to _execute, not journaled (the plan holds it)
    elif op in ("move", "copy"):
        src, dst = step["from"], step["to"]
        info = ws.lstat(src)
        if info is None:
            raise SandboxError(f"{src!r} does not exist")
        if _exists(ws, dst):
            raise SandboxError(f"{dst!r} already exists")
        if dst.startswith(src + "/") or src == ".":
            raise SandboxError(f"cannot {op} {src!r} into itself ({dst!r})")
        record.update({"from": src, "to": dst})
    elif op == "delete":
        if not _exists(ws, step["path"]):
            raise SandboxError(f"{step['path']!r} does not exist")
        record["path"] = step["path"]
    elif op == "run":
        record["argv"] = step["argv"]
    return record


def new_content(step: dict[str, Any], old: bytes) -> bytes:
    """Return the bytes a write, append or patch step leaves in a file that held ``old``."""
    op = step["op"]
    if op == "write":
        return str(step["content"]).encode("utf-8")
    if op == "append":
        return old + str(step["content"]).encode("utf-8")
    try:
        text = old.decode("utf-8")
    except UnicodeDecodeError:
        raise SandboxError(f"{step['path']!r} is not UTF-8 text; patch works on text") from None
    found = text.count(step["find"])
    wanted = step["count"]
    if found == 0:
        raise SandboxError(f"{step['path']!r}: the text to find does not occur")
    if wanted and found < wanted:
        raise SandboxError(f"{step['path']!r}: the text to find occurs {found} times, fewer than count={wanted}")
    return text.replace(step["find"], step["replace"], wanted or -1).encode("utf-8")


def _execute(
    ws: Workspace, journal: Journal, record: dict[str, Any], step: dict[str, Any], limits: Limits, bwrap: str | None
) -> RunResult | None:
    op = record["op"]
    index = record["i"]
    if op == "mkdir":
        for directory in record["created"]:
            with ws.parent(directory) as (parent_fd, name):
                os.mkdir(name, 0o755, dir_fd=parent_fd)
                fsync_dir(parent_fd)
    elif op in ("write", "append", "patch"):
        with ws.parent(record["path"]) as (parent_fd, name):
            if record["existed"]:
                # The old inode becomes the backup: same bytes, mode and mtime, and the path keeps
                # the old content until the rename below swaps in the new one.
                os.link(name, journal.backup_dir / str(index), src_dir_fd=parent_fd, follow_symlinks=False)
            _write_new(parent_fd, _tmp_name(journal, index), record.pop("_new"), record["mode"])
            os.rename(_tmp_name(journal, index), name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            fsync_dir(parent_fd)
    elif op == "move":
        with ws.parent(record["from"]) as (src_fd, src_name), ws.parent(record["to"]) as (dst_fd, dst_name):
            rename_noreplace(src_fd, src_name, dst_fd, dst_name)
            fsync_dir(src_fd)
            fsync_dir(dst_fd)
    elif op == "copy":
        with ws.parent(record["from"]) as (src_fd, src_name), ws.parent(record["to"]) as (dst_fd, dst_name):
            tmp = _tmp_name(journal, index)
            _copy_tree(src_fd, src_name, dst_fd, tmp)
            rename_noreplace(dst_fd, tmp, dst_fd, dst_name)
            fsync_dir(dst_fd)
    elif op == "delete":
        with ws.parent(record["path"]) as (parent_fd, name), _dir_fd(journal.trash_dir) as trash_fd:
            rename_noreplace(parent_fd, name, trash_fd, str(index))
            fsync_dir(parent_fd)
            fsync_dir(trash_fd)
    elif op == "run":
        result = run_command(ws.root, step["argv"], step["timeout_s"], limits, bwrap=bwrap)
        if step["check"] and result.exit_code != 0:
            why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
            last = result.output_tail.strip().splitlines()[-1:] or [""]
            raise StepFailed(f"command {step['argv'][0]!r} {why}: {last[0][:200]}")
        return result
    return None


def _write_new(parent_fd: int, name: str, data: bytes, mode: int) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_tree(src_fd: int, src_name: str, dst_fd: int, dst_name: str) -> None:
    """Copy a file, symlink or directory tree by descriptors, never following a symlink."""
    info = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=src_fd), dst_name, dir_fd=dst_fd)
    elif stat.S_ISREG(info.st_mode):
        data, mode = _read_regular(src_fd, src_name)
        _write_new(dst_fd, dst_name, data, mode)
    elif stat.S_ISDIR(info.st_mode):
        os.mkdir(dst_name, 0o700, dir_fd=dst_fd)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        inner_src = os.open(src_name, flags, dir_fd=src_fd)
        inner_dst = os.open(dst_name, flags, dir_fd=dst_fd)
        try:
            for name in os.listdir(inner_src):
                _copy_tree(inner_src, name, inner_dst, name)
            os.fchmod(inner_dst, stat.S_IMODE(info.st_mode))
            os.fsync(inner_dst)
        finally:
            os.close(inner_src)
            os.close(inner_dst)
    else:
        raise SandboxError(f"{src_name!r}: cannot copy a FIFO, socket or device")


# -- undoing ----------------------------------------------------------------------------------


def _undo_record(ws: Workspace, journal: Journal, record: dict[str, Any]) -> None:
    """Reverse one record. Idempotent: safe whether the step ran fully, partly or not at all."""
    try:
        _undo_record_unchecked(ws, journal, record)
    except SandboxError as exc:
        # A directory on the step's path does not exist, so the step left nothing there.
        if getattr(exc, "errno", None) != errno.ENOENT:
            raise


def _undo_record_unchecked(ws: Workspace, journal: Journal, record: dict[str, Any]) -> None:
    op = record["op"]
    index = record["i"]
    if op == "mkdir":
        for directory in reversed(record["created"]):
            with ws.parent(directory) as (parent_fd, name):
                try:
                    os.rmdir(name, dir_fd=parent_fd)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                        raise
    elif op in ("write", "append", "patch"):
        with ws.parent(record["path"]) as (parent_fd, name):
            _remove_quietly(parent_fd, _tmp_name(journal, index))
            backup = journal.backup_dir / str(index)
            if backup.exists():
                with _dir_fd(journal.backup_dir) as backup_fd:
                    os.rename(str(index), name, src_dir_fd=backup_fd, dst_dir_fd=parent_fd)
                fsync_dir(parent_fd)
            elif not record["existed"]:
                _to_trash(journal, parent_fd, name, f"undo-{index}")
    elif op == "move":
        if _exists(ws, record["to"]) and not _exists(ws, record["from"]):
            with ws.parent(record["to"]) as (dst_fd, dst_name), ws.parent(record["from"]) as (src_fd, src_name):
                rename_noreplace(dst_fd, dst_name, src_fd, src_name)
                fsync_dir(src_fd)
    elif op == "copy":
        with ws.parent(record["to"]) as (dst_fd, dst_name):
            tmp = _tmp_name(journal, index)
            try:
                is_dir = _is_dir(dst_fd, tmp)
            except FileNotFoundError:
                pass
            else:
                if is_dir:
                    shutil.rmtree(tmp, dir_fd=dst_fd)
                else:
                    os.unlink(tmp, dir_fd=dst_fd)
            _to_trash(journal, dst_fd, dst_name, f"undo-{index}")
    elif op == "delete":
        trashed = journal.trash_dir / str(index)
        if os.path.lexists(trashed):
            with ws.parent(record["path"]) as (parent_fd, name), _dir_fd(journal.trash_dir) as trash_fd:
                rename_noreplace(trash_fd, str(index), parent_fd, name)
                fsync_dir(parent_fd)


def _is_dir(dir_fd: int, name: str) -> bool:
    return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)


def _remove_quietly(dir_fd: int, name: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)


def _to_trash(journal: Journal, parent_fd: int, name: str, trash_name: str) -> None:
    """Move ``name`` (if present) into the journal's trash: undo displaces, it never destroys."""
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    with _dir_fd(journal.trash_dir) as trash_fd:
        rename_noreplace(parent_fd, name, trash_fd, trash_name)
        fsync_dir(trash_fd)
    fsync_dir(parent_fd)


def _undo_all(ws: Workspace, journal: Journal) -> None:
    for record in reversed(journal.records()):
        _undo_record(ws, journal, record)


def undo_conflicts(ws: Workspace, journal: Journal) -> list[str]:
    """Return why undoing ``journal`` now would lose later work, walking its records in reverse."""
    present: dict[str, bool] = {}  # what the simulated undo has changed so far
    touched: set[str] = set()

    def exists(path: str) -> bool:
        return present[path] if path in present else _exists(ws, path)

    problems = []
    for record in reversed(journal.records()):
        op = record["op"]
        if op in ("write", "append", "patch"):
            path = record["path"]
            if path not in touched and exists(path):
                with ws.parent(path) as (parent_fd, name):
                    try:
                        data, _ = _read_regular(parent_fd, name)
                    except (OSError, SandboxError):
                        data = b""
                if _sha(data) != record["sha"]:
                    problems.append(f"{path!r} changed after the plan was applied")
            present[path] = record["existed"]
            touched.add(path)
        elif op == "move":
            if not exists(record["to"]):
                problems.append(f"{record['to']!r} is gone, so it cannot be moved back")
            elif exists(record["from"]):
                problems.append(f"{record['from']!r} exists again, so {record['to']!r} cannot be moved back")
            present[record["from"]], present[record["to"]] = True, False
            touched.update((record["from"], record["to"]))
        elif op == "delete":
            if exists(record["path"]):
                problems.append(f"{record['path']!r} exists again, so the deleted one cannot be restored")
            present[record["path"]] = True
            touched.add(record["path"])
        elif op == "copy":
            present[record["to"]] = False
            touched.add(record["to"])
    return problems


# -- the public operations -------------------------------------------------------------------


def _where(step: dict[str, Any]) -> str:
    """The op and the paths a step works on, for error messages (a run's reason names its command)."""
    if "from" in step:
        return f"{step['op']} {step['from']!r} to {step['to']!r}"
    if "path" in step:
        return f"{step['op']} {step['path']!r}"
    return str(step["op"])


def _left_in_trash(journal: Journal) -> list[str]:
    """What a step of ``journal`` deleted and is still in its trash (after an undo, it should be none)."""
    with suppress(OSError):
        return sorted(str(journal.trash_dir / name) for name in os.listdir(journal.trash_dir) if name.isdigit())
    return []


def _recover_locked(root: Path, ws: Workspace, emit: EventSink) -> list[str]:
    recovered = []
    for journal in journals(root):
        state = journal.state
        if state not in ("applying", "undoing"):
            continue
        try:
            _undo_all(ws, journal)
            journal.set_state("rolled-back" if state == "applying" else "undone")
        except (RouteshellError, OSError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            kept = _left_in_trash(journal)
            where = f"; what it deleted is kept in {journal.trash_dir} ('routeshell trash list')" if kept else ""
            raise StateError(
                f"cannot finish rolling back plan {journal.id}, interrupted while {state}: {reason}{where}; "
                f"fix that and run 'routeshell plan history' to try again"
            ) from None
        recovered.append(journal.id)
        event: Event = {"type": "recovered", "journal": journal.id, "was": state}
        if kept := _left_in_trash(journal):
            event["kept_in_trash"] = kept
        emit(event)
    return recovered


def recover(root: Path, on_event: EventSink | None = None, *, wait: float = 0) -> list[str]:
    """Finish what a crash interrupted: roll back half-applied plans, complete half-done undos.

    Returns the ids of the journals it finished. Creates nothing: a workspace without journals,
    or none left half done, is only read. Raises :class:`StateError` when a journal needs
    recovery and the lock cannot be taken or the rollback cannot be written.
    """
    root = Path(os.path.realpath(root))
    if not any(journal.state in ("applying", "undoing") for journal in journals(root)):
        return []
    with workspace_lock(root, wait), Workspace(root) as ws:
        return _recover_locked(root, ws, on_event or (lambda event: None))


def _frees_space(plan: dict[str, Any]) -> bool:
    # A delete is a rename into the trash and a move a rename: neither needs room for data.
    return all(step["op"] in ("delete", "move") for step in plan["steps"])


def apply_plan(
    root: Path,
    plan: dict[str, Any],
    *,
    limits: Limits | None = None,
    on_event: EventSink | None = None,
    cancel: Callable[[], bool] | None = None,
    origin: str | None = None,
    via: Via | None = None,
    wait: float = 0,
) -> ApplyResult:
    """Apply a validated, normalised plan to ``root``, all or nothing.

    ``cancel`` is polled before each step; when it returns True the apply stops and rolls back.
    ``origin`` is kept in the journal (see :func:`engine.plans.journal.applied_from`), and ``via``
    (agent, cli, files-pane) for ``plan show``. ``wait``: seconds to wait for the workspace lock.
    Returns the journal id (for undo) and the ``run`` results. Raises :class:`StepFailed`,
    :class:`Cancelled` or :class:`SandboxError` after rolling back every earlier step, and
    :class:`StateError` when the journal cannot be written (then nothing was changed).
    """
    emit = on_event or (lambda event: None)
    root = Path(os.path.realpath(root))
    limits = limits or Limits()
    with workspace_lock(root, wait), Workspace(root) as ws:
        _recover_locked(root, ws, emit)
        journal = Journal.create(root, plan, origin, via, frees=_frees_space(plan))
        bwrap = bubblewrap() if any(step["op"] == "run" for step in plan["steps"]) else None
        result = ApplyResult(journal.id, len(plan["steps"]))
        index = 0
        try:
            for index, step in enumerate(plan["steps"]):
                if cancel is not None and cancel():
                    raise Cancelled(f"cancelled before step {index + 1}; the {index} earlier steps were rolled back")
                record = _prepare(ws, journal, index, step)
                try:
                    journal.record({key: value for key, value in record.items() if not key.startswith("_")})
                except OSError as exc:
                    # Never run a step whose record is not wholly on disk: it could not be undone.
                    raise StateError(f"its journal record could not be written ({exc.strerror or exc})") from None
                run = _execute(ws, journal, record, step, limits, bwrap)
                event: Event = {"type": "step", "index": index, "op": step["op"]}
                if run is not None:
                    result.runs.append(run)
                    event.update(exit_code=run.exit_code, timed_out=run.timed_out, tail=run.output_tail[-1000:])
                emit(event)
            index = len(plan["steps"])
            journal.set_state("applied")
        except BaseException as exc:
            try:
                _roll_back(ws, journal)
            except (RouteshellError, OSError) as undo_exc:
                why = undo_exc.strerror if isinstance(undo_exc, OSError) and undo_exc.strerror else str(undo_exc)
                raise StateError(
                    f"step {index + 1} of plan {journal.id} failed and rolling it back failed too ({why}); "
                    f"fix that, then any 'routeshell plan' command finishes the rollback"
                ) from None
            if isinstance(exc, Cancelled) or not isinstance(exc, (RouteshellError, OSError)):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            earlier = f"the {index} earlier steps were rolled back" if index else "nothing was changed"
            if index == len(plan["steps"]):
                raise StateError(f"the plan could not be marked applied ({reason}); {earlier}") from None
            step = plan["steps"][index]
            raise StepFailed(f"step {index + 1} ({_where(step)}) failed: {reason}; {earlier}") from None
        emit({"type": "applied", "journal": journal.id, "steps": result.steps})
        keep_reserve(root)  # made again if a full disk used it up
        return result


def _roll_back(ws: Workspace, journal: Journal) -> None:
    _undo_all(ws, journal)
    with suppress(OSError):
        # If even this cannot be written, the journal stays "applying" and the next command
        # finishes the (idempotent) rollback.
        journal.set_state("rolled-back")


def undo_last(root: Path, *, on_event: EventSink | None = None, wait: float = 0) -> Journal:
    """Undo the most recent applied plan; return its journal (see :func:`engine.plans.undo.undo_journal`)."""
    from engine.plans.undo import undo_journal

    return undo_journal(root, None, on_event=on_event, wait=wait)
