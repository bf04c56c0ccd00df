"""The table of every plan op, and the two loops over it that apply, undo and the dry run share.

Validation (``model.py``), the apply and undo (``apply.py``), the dry run (``dry_run.py``) and the
rules the model is given all read :data:`OPS`. A new op also needs its step shape in
``engine/schemas/plan.schema.json``; a test keeps the two in step.
"""

from __future__ import annotations

import errno
from typing import Any

from engine.names import quoted_name
from engine.plans.bulk_ops import BULK_OPS
from engine.plans.op_base import Op, refuse_symlinks_on_the_way, through_symlink
from engine.plans.ops import FILE_OPS
from engine.plans.view import UndoSimulation, View
from engine.workspace.links import leads_outside, symlink_on_the_way
from engine.workspace.sandbox import SandboxError, Workspace, check_relpath

#: Every op, by name: the one table that validation, apply, undo, the dry run and the prompts read.
OPS: dict[str, Op[Any, Any]] = {op.name: op for op in (*FILE_OPS, *BULK_OPS)}


def prepare_step(view: View, index: int, step: dict[str, Any]) -> dict[str, Any]:
    """Check a normalised step against ``view`` (paths first, then the op's own checks); return its record.

    A path the step writes must not go through a symlinked directory at any depth (the refusal names
    the symlink); the apply carries the step out with every symlink on its way refused, so one put
    there after this check is refused too (:func:`refused_symlink`).
    """
    op = OPS[step["op"]]
    for key in op.paths:
        if key.write and isinstance(step.get(key.key), str):
            path = step[key.key]
            check_relpath(path, write=True)
            try:
                view.check_writable(path, inclusive=key.root_ok)
            except SandboxError as exc:
                if getattr(exc, "errno", None) == errno.EXDEV:
                    # Outside the workspace: through a symlink, which is named as leading there.
                    refuse_symlinks_on_the_way(view, path, made=key.makes, inclusive=key.root_ok)
                raise
            refuse_symlinks_on_the_way(view, path, made=key.makes, inclusive=key.root_ok)
    record: dict[str, Any] = op.prepare(view, index, step)
    return record


def refused_symlink(view: View, step: dict[str, Any], exc: SandboxError) -> SandboxError:
    """The refusal of ``step``, carried out with every symlink on its way refused, when ``exc`` (its
    error) came from one: a symlink put on the way after the step was checked, named as the check names it."""
    if getattr(exc, "errno", None) in (errno.ELOOP, errno.ENOTDIR):
        for key in OPS[step["op"]].paths:
            if key.write and isinstance(step.get(key.key), str):
                link = symlink_on_the_way(view, step[key.key], inclusive=key.root_ok)
                if link is not None:
                    return through_symlink(view, link, made=key.makes)
    return exc


def undo_conflicts(ws: Workspace, records: list[dict[str, Any]]) -> list[str]:
    """Return why undoing ``records`` (one journal's) now would lose later work, newest record first."""
    sim = UndoSimulation(ws)
    problems: list[str] = []
    for record in reversed(records):
        problems += OPS[record["op"]].undo_conflicts(sim, record)
    return problems


def undo_directories(records: list[dict[str, Any]]) -> set[str]:
    """The directories whose entries undoing ``records`` changes: where each path it writes is."""
    directories = set()
    for record in records:
        if record["op"] == "extract" and not record.get("created"):
            directories.add(record["to"])  # what extracting put in the folder leaves it
            continue
        keys = [key.key for key in OPS[record["op"]].paths if key.write]
        written = [record[key] for key in keys if isinstance(record.get(key), str)]
        if record["op"] == "mkdir":
            written += record["created"]
        directories.update(path.rpartition("/")[0] or "." for path in written)
    return directories


def undo_symlink(view: View, records: list[dict[str, Any]]) -> str | None:
    """The first symlink on the way to a directory undoing ``records`` changes, or None.

    Each was a directory when the plan was applied (no step goes through a symlink); one put in its
    place since would make the undo change what is where it leads, which the plan never touched.
    """
    for directory in sorted(undo_directories(records)):
        link = symlink_on_the_way(view, directory, inclusive=True)
        if link is not None:
            return link
    return None


def undo_through_symlink(view: View, link: str) -> SandboxError:
    """The refusal of an undo (or a rollback) whose way goes through ``link``, a symlink now."""
    where = " leading outside the workspace" if leads_outside(view, link) else ""
    return SandboxError(
        f"{quoted_name(link)} is now a symlink{where}, and was a directory when the plan was applied: undo changes"
        " nothing through a symlink; put the directory back in its place, then undo"
    )
