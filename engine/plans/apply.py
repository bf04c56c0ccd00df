"""Applying plans inside a workspace: all-or-nothing, journaled, undoable, crash-safe.

Each step is prepared (its preconditions checked and its undo information decided), recorded in
the journal and fsynced, and only then carried out. Undoing a record is idempotent, so the same
code rolls back a failed apply, undoes an applied plan, and recovers after a crash at any point.
Nothing is destroyed: replaced files are kept as backups and deleted ones go to the trash.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ExitCode, RouteshellError, UsageError
from engine.plans.journal import Journal, journals, workspace_lock
from engine.plans.ops import OPS, ApplyContext, prepare_step
from engine.plans.ops import StepFailed as StepFailed  # raised here too; importers know it from here
from engine.plans.ops import undo_conflicts as ops_undo_conflicts
from engine.plans.runner import Limits, RunResult, bubblewrap
from engine.plans.view import WorkspaceView
from engine.workspace.sandbox import STATE_DIR, SandboxError, Workspace

Event = dict[str, Any]
EventSink = Callable[[Event], None]


class Cancelled(RouteshellError):
    """The apply was cancelled between steps; everything done was rolled back."""

    exit_code = ExitCode.INTERRUPTED


@dataclass
class ApplyResult:
    """An applied plan: its journal id and the results of its ``run`` steps."""

    journal_id: str
    steps: int
    runs: list[RunResult] = field(default_factory=list)


# -- preparing, carrying out and undoing steps: each op does its own (engine/plans/ops.py) ------


def _prepare(ws: Workspace, journal: Journal, index: int, step: dict[str, Any]) -> dict[str, Any]:
    """Check a step's preconditions; return its journal record, holding what undo needs."""
    return prepare_step(WorkspaceView(ws), index, step)


def _execute(
    ws: Workspace, journal: Journal, record: dict[str, Any], step: dict[str, Any], limits: Limits, bwrap: str | None
) -> RunResult | None:
    return OPS[record["op"]].execute(ApplyContext(ws, journal, limits, bwrap), record, step)


def _undo_record(ws: Workspace, journal: Journal, record: dict[str, Any]) -> None:
    """Reverse one record. Idempotent: safe whether the step ran fully, partly or not at all."""
    try:
        _undo_record_unchecked(ws, journal, record)
    except SandboxError as exc:
        # A directory on the step's path does not exist, so the step left nothing there.
        if getattr(exc, "errno", None) != errno.ENOENT:
            raise


def _undo_record_unchecked(ws: Workspace, journal: Journal, record: dict[str, Any]) -> None:
    OPS[record["op"]].undo(ws, journal, record)


def _undo_all(ws: Workspace, journal: Journal) -> None:
    for record in reversed(journal.records()):
        _undo_record(ws, journal, record)


def undo_conflicts(ws: Workspace, journal: Journal) -> list[str]:
    """Return why undoing ``journal`` now would lose later work, walking its records in reverse."""
    return ops_undo_conflicts(ws, journal.records())


# -- the public operations -------------------------------------------------------------------


def _recover_locked(root: Path, ws: Workspace, emit: EventSink) -> list[str]:
    recovered = []
    for journal in journals(root):
        state = journal.state
        if state in ("applying", "undoing"):
            _undo_all(ws, journal)
            journal.set_state("rolled-back" if state == "applying" else "undone")
            recovered.append(journal.id)
            emit({"type": "recovered", "journal": journal.id, "was": state})
    return recovered


def recover(root: Path, on_event: EventSink | None = None) -> list[str]:
    """Finish what a crash interrupted: roll back half-applied plans, complete half-done undos.

    Returns the ids of the journals it finished; a workspace without state is left untouched.
    """
    root = Path(os.path.realpath(root))
    if not (root / STATE_DIR / "journal").is_dir():
        return []
    with workspace_lock(root), Workspace(root) as ws:
        return _recover_locked(root, ws, on_event or (lambda event: None))


def apply_plan(
    root: Path,
    plan: dict[str, Any],
    *,
    limits: Limits | None = None,
    on_event: EventSink | None = None,
    cancel: Callable[[], bool] | None = None,
    origin: str | None = None,
) -> ApplyResult:
    """Apply a validated, normalised plan to ``root``, all or nothing.

    ``cancel`` is polled before each step; when it returns True the apply stops and rolls back.
    ``origin`` is kept in the journal (see :func:`engine.plans.journal.applied_from`).
    Returns the journal id (for undo) and the ``run`` results. Raises :class:`StepFailed`,
    :class:`Cancelled` or :class:`SandboxError` after rolling back every earlier step.
    """
    emit = on_event or (lambda event: None)
    root = Path(os.path.realpath(root))
    limits = limits or Limits()
    with workspace_lock(root), Workspace(root) as ws:
        _recover_locked(root, ws, emit)
        journal = Journal.create(root, plan, origin)
        bwrap = bubblewrap() if any(step["op"] == "run" for step in plan["steps"]) else None
        result = ApplyResult(journal.id, len(plan["steps"]))
        index = 0
        try:
            for index, step in enumerate(plan["steps"]):
                if cancel is not None and cancel():
                    raise Cancelled(f"cancelled before step {index + 1}; the {index} earlier steps were rolled back")
                record = _prepare(ws, journal, index, step)
                journal.record({key: value for key, value in record.items() if not key.startswith("_")})
                run = _execute(ws, journal, record, step, limits, bwrap)
                event: Event = {"type": "step", "index": index, "op": step["op"]}
                if run is not None:
                    result.runs.append(run)
                    event.update(exit_code=run.exit_code, timed_out=run.timed_out, tail=run.output_tail[-1000:])
                emit(event)
        except BaseException as exc:
            _undo_all(ws, journal)
            journal.set_state("rolled-back")
            if isinstance(exc, (SandboxError, StepFailed, OSError)):
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                earlier = f"the {index} earlier steps were rolled back" if index else "nothing was changed"
                raise StepFailed(
                    f"step {index + 1} ({plan['steps'][index]['op']}) failed: {reason}; {earlier}"
                ) from None
            raise
        journal.set_state("applied")
        emit({"type": "applied", "journal": journal.id, "steps": result.steps})
        return result


def undo_last(root: Path, *, on_event: EventSink | None = None) -> Journal:
    """Undo the most recent applied plan; return its journal. Refuses if that would lose later work."""
    emit = on_event or (lambda event: None)
    root = Path(os.path.realpath(root))
    with workspace_lock(root), Workspace(root) as ws:
        _recover_locked(root, ws, emit)
        applied = [journal for journal in journals(root) if journal.state == "applied"]
        if not applied:
            raise UsageError(f"nothing to undo in {root}")
        journal = applied[-1]
        problems = undo_conflicts(ws, journal)
        if problems:
            raise StepFailed(f"cannot undo plan {journal.id}: {problems[0]}" + (" (and more)" if problems[1:] else ""))
        journal.set_state("undoing")
        _undo_all(ws, journal)
        journal.set_state("undone")
        emit({"type": "undone", "journal": journal.id})
        return journal
