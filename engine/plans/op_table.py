"""The table of every plan op, and the two loops over it that apply, undo and the dry run share.

Validation (``model.py``), the apply and undo (``apply.py``), the dry run (``dry_run.py``) and the
rules the model is given all read :data:`OPS`. A new op also needs its step shape in
``engine/schemas/plan.schema.json``; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any

from engine.plans.bulk_ops import BULK_OPS
from engine.plans.op_base import Op
from engine.plans.ops import FILE_OPS
from engine.plans.view import UndoSimulation, View
from engine.workspace.sandbox import Workspace, check_relpath

#: Every op, by name: the one table that validation, apply, undo, the dry run and the prompts read.
OPS: dict[str, Op[Any, Any]] = {op.name: op for op in (*FILE_OPS, *BULK_OPS)}


def prepare_step(view: View, index: int, step: dict[str, Any]) -> dict[str, Any]:
    """Check a normalised step against ``view`` (paths first, then the op's own checks); return its record."""
    op = OPS[step["op"]]
    for key in op.paths:
        if key.write and isinstance(step.get(key.key), str):
            check_relpath(step[key.key], write=True)
            view.check_writable(step[key.key])
    record: dict[str, Any] = op.prepare(view, index, step)
    return record


def undo_conflicts(ws: Workspace, records: list[dict[str, Any]]) -> list[str]:
    """Return why undoing ``records`` (one journal's) now would lose later work, newest record first."""
    sim = UndoSimulation(ws)
    problems: list[str] = []
    for record in reversed(records):
        problems += OPS[record["op"]].undo_conflicts(sim, record)
    return problems
