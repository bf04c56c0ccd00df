"""The workspace's trash: what plans deleted, and what undoing them displaced.

``trash/<journal id>/<n>`` holds what step n of that plan deleted; ``undo-<n>`` what undoing
step n moved out of the way (what the plan had created: on a rollback, only what was changed
since, as the rest is removed outright). Items are named
``<journal id>/<name>`` on the command line. Restoring puts an item back where it was, only
if that place is free; emptying deletes them for good (and frees their space).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.names import quoted_name, shell_line
from engine.plans.apply import _recover_locked
from engine.plans.files import MountedInside, dir_fd, mounts_beneath, remove_tree
from engine.plans.journal import Journal
from engine.plans.view import WorkspaceView
from engine.workspace.links import symlink_on_the_way
from engine.workspace.sandbox import Workspace, fsync_dir, rename_noreplace
from engine.workspace.state import (
    TRASH_DIR,
    StateError,
    command_for,
    existing_state_dir,
    keep_reserve,
    os_problem,
    state_path,
    workspace_lock,
)

#: What an item is renamed to while ``trash empty`` deletes it: out of the reach of undo and
#: restore, so that a delete stopped halfway (a kill, a file it may not delete) never leaves part
#: of an item that either would put back as if whole. The next ``trash empty`` finishes it.
EMPTYING = ".emptying-"
#: Left beside where an item was when ``trash restore`` puts it back: the undo of the plan that
#: deleted it has nothing left to do for that step (see :func:`restored`).
RESTORED = ".restored-"
HALF_EMPTIED = "left partly deleted by an emptying of the trash that was stopped; trash empty ends it"


@dataclass(frozen=True)
class TrashItem:
    """One thing in the trash: where it came from (None when its journal does not say) and its size."""

    journal_id: str
    name: str
    origin: str | None
    why: str
    size: int
    kind: str  # file, directory, symlink, other

    @property
    def id(self) -> str:
        return f"{self.journal_id}/{self.name}"

    def as_event(self) -> dict[str, Any]:
        """The ``trash`` JSON-lines event."""
        return {"type": "trash", "id": self.id, "origin": self.origin, "why": self.why, "size": self.size,
                "kind": self.kind}  # fmt: skip


def _size(path: Path) -> tuple[int, str]:
    """Bytes under ``path`` (never following a symlink) and what it is."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return info.st_size, "symlink"
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size, "file" if stat.S_ISREG(info.st_mode) else "other"
    total = 0
    for directory, dirs, files in os.walk(path):
        # Another filesystem mounted in it is not the trash's: its files are not counted.
        dirs[:] = [name for name in dirs if os.lstat(os.path.join(directory, name)).st_dev == info.st_dev]
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total, "directory"


def _origin(journal: Journal, records: list[dict[str, Any]] | str, name: str) -> tuple[str | None, str]:
    """Where a trash entry was in the workspace, and why it is in the trash.

    ``records``: the checked records of its journal, or what is wrong with them.
    """
    if isinstance(records, str):
        return None, f"its journal is damaged ({command_for(journal.root, 'plan', 'history')} says how)"
    undo = name.startswith("undo-")
    index = name.removeprefix("undo-")
    for record in records:
        if str(record["i"]) == index:
            path = record.get("path") or record.get("to")
            if undo:
                return path, f"moved aside by the undo of step {int(index) + 1} ({record['op']})"
            return path, f"deleted by step {int(index) + 1} of plan {journal.id}"
    return None, "its journal does not say where it was"


def _records(journal: Journal) -> list[dict[str, Any]] | str:
    """The checked records of ``journal``, or what is wrong with them (a damaged journal says nowhere)."""
    try:
        return journal.records()
    except StateError as exc:
        return str(exc)


def list_trash(root: Path) -> list[TrashItem]:
    """Return everything in the trash of ``root``, oldest plan first; creates nothing."""
    directory = existing_state_dir(root, TRASH_DIR)
    if directory is None:
        return []
    items = []
    for journal_id in sorted(os.listdir(directory)):
        folder = directory / journal_id
        if not folder.is_dir() or folder.is_symlink():
            continue
        journal = Journal(Path(root), journal_id)
        records = _records(journal)
        for name in sorted(os.listdir(folder), key=lambda n: (len(n), n)):
            if name.startswith(RESTORED):
                continue  # a note, not an item
            if name.startswith(EMPTYING):
                origin, why = None, HALF_EMPTIED
            else:
                origin, why = _origin(journal, records, name)
            size, kind = _size(folder / name)
            items.append(TrashItem(journal_id, name, origin, why, size, kind))
    return items


def _find(root: Path, item_id: str) -> TrashItem:
    for item in list_trash(root):
        if item.id == item_id:
            return item
    plan_part = item_id.partition("/")[0]
    if plan_part not in ("", ".", ".."):
        # A plan's part of the trash that is a symlink or a file holds no items: said so, not "no such item".
        existing_state_dir(root, TRASH_DIR, plan_part)
    raise UsageError(f"no {item_id!r} in the trash of {root}; {command_for(root, 'trash', 'list')} shows what is there")


def restore(root: Path, item_id: str, *, wait: float = 0) -> TrashItem:
    """Put a trash item back where it was; return it.

    Refuses (with what to do) when its journal does not say where it was, or that place is taken
    or its directory is gone. Runs under the workspace lock.
    """
    root = Path(os.path.realpath(root))
    with workspace_lock(root, wait), Workspace(root) as ws:
        _recover_locked(root, ws, lambda event: None)
        item = _find(root, item_id)
        journal = Journal(root, item.journal_id)
        journal.check_places()
        problem = _records(journal)
        if isinstance(problem, str):
            raise StateError(f"cannot restore {item.id}: {problem}")
        if item.origin is None:
            raise UsageError(f"{item.id}: {item.why}; copy it out of {root}/.routeshell/{TRASH_DIR}/{item.id} by hand")
        link = symlink_on_the_way(WorkspaceView(ws), item.origin)
        if link is not None:
            # Put back where the symlink leads, the item would land in a place it never was.
            raise UsageError(
                f"cannot restore {item.id}: {quoted_name(link)} is now a symlink, and was a directory when the item "
                "was deleted: nothing is put back through a symlink; put the directory back in its place, or copy "
                f"the item out of {root}/.routeshell/{TRASH_DIR}/{item.id} by hand"
            )
        if ws.lstat(item.origin) is not None:
            raise UsageError(
                f"cannot restore {item.id}: {quoted_name(item.origin)} exists; move it aside, or copy the item out of "
                f"{root}/.routeshell/{TRASH_DIR}/{item.id} by hand"
            )
        head = item.origin.rpartition("/")[0]
        if head and ws.lstat(head) is None:
            raise UsageError(
                f"cannot restore {item.id}: the directory {quoted_name(head)} is gone; make it again first"
            )
        trash = state_path(root) / TRASH_DIR / item.journal_id
        trash_fd = os.open(trash, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            with ws.parent(item.origin, write=True) as (parent_fd, name):
                # The note first: without the item gone from the trash it means nothing (see restored()).
                os.close(os.open(RESTORED + item.name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=trash_fd))  # fmt: skip
                rename_noreplace(trash_fd, item.name, parent_fd, name)
                fsync_dir(parent_fd)
                fsync_dir(trash_fd)
        finally:
            os.close(trash_fd)
        return item


def restored(journal: Journal, record: dict[str, Any]) -> bool:
    """Whether what step ``record`` of ``journal`` deleted was put back by ``trash restore``: it is
    no longer in the trash, and the restore left its note. Undoing the plan has nothing to do for it."""
    if record["op"] != "delete":
        return False
    name = str(record["i"])
    trash = journal.trash_dir
    return os.path.lexists(trash / (RESTORED + name)) and not os.path.lexists(trash / name)


def _mount_problem(root: Path, item: TrashItem, where: str, *, nothing_deleted: bool) -> StateError:
    point = state_path(root) / TRASH_DIR / item.id / where if where else state_path(root) / TRASH_DIR / item.id
    restore = command_for(root, "trash", "restore", item.id)
    return StateError(
        f"cannot empty the trash: {item.id} holds {point}, where another filesystem is mounted, and emptying it "
        f"would delete the files there; unmount it ({shell_line(['umount', str(point)])}) or put the item back "
        f"({restore}), then empty the trash again" + ("; nothing was deleted" if nothing_deleted else "")
    )


def empty(root: Path, *, wait: float = 0) -> tuple[int, int]:
    """Delete everything in the trash for good; return (items, bytes) freed.

    After this, undoing a plan that deleted something is refused: what it deleted is gone. An item
    that holds a mount point of another filesystem stops it before anything is deleted: nothing
    is ever deleted across a mount point.
    """
    root = Path(os.path.realpath(root))
    directory = existing_state_dir(root, TRASH_DIR)
    if directory is None:
        return 0, 0
    with workspace_lock(root, wait), Workspace(root) as ws:
        # A crashed apply's deletes are put back first: they are not the trash's to empty.
        _recover_locked(root, ws, lambda event: None)
        items = list_trash(root)
        try:
            for item in items:
                if item.kind == "directory":
                    with dir_fd(directory / item.journal_id / item.name) as fd:
                        mounted = mounts_beneath(fd)
                    if mounted:
                        raise _mount_problem(root, item, mounted[0], nothing_deleted=True)
        except OSError as exc:
            raise os_problem(exc, "cannot look into the trash", directory) from None
        for item in items:
            try:
                with dir_fd(directory / item.journal_id) as fd:
                    name = item.name
                    if not name.startswith(EMPTYING):
                        name = EMPTYING + name
                        # A leftover of an emptying stopped after its rename (none, normally); it is
                        # also listed, and removed, as its own item.
                        remove_tree(fd, name)
                        rename_noreplace(fd, item.name, fd, name)
                        fsync_dir(fd)
                    remove_tree(fd, name)
            except MountedInside as exc:  # mounted since the check above
                raise _mount_problem(root, item, exc.where, nothing_deleted=False) from None
            except PermissionError as exc:
                # Something in the item this user may not change (another user's folder): the rest
                # of the workspace may well be writable, so that is not what is said.
                where = f" ({quoted_name(exc.filename)} in it)" if isinstance(exc.filename, str) else ""
                raise StateError(
                    f"cannot delete {item.id} from the trash{where}: {exc.strerror}; it holds what this user may not"
                    " delete (another user's folder, or one made read-only by someone else); what is left of it stays"
                    " in the trash, where no undo puts it back; fix its permissions, or empty the trash as a user who"
                    f" may, then {command_for(root, 'trash', 'empty')} again"
                ) from None
            except OSError as exc:
                raise os_problem(exc, f"cannot delete {item.id} from the trash", directory) from None
        keep_reserve(root)
        return len(items), sum(item.size for item in items)
