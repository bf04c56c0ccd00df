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
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ExitCode, RouteshellError, keep_errno
from engine.events import AppliedEvent, EventSink, RecoveredEvent, Seen, StepEvent
from engine.names import quoted_name
from engine.plans.audit import Action, audit
from engine.plans.expand import expand_plan
from engine.plans.journal import DROP_TEXTS_ABOVE, Journal, JournalState, Via, journals
from engine.plans.op_base import ApplyContext, ChangedMeanwhile, SymlinkRefused
from engine.plans.op_base import StepFailed as StepFailed  # raised here too; importers know it from here
from engine.plans.op_table import OPS, prepare_step, refused_symlink, undo_symlink, undo_through_symlink
from engine.plans.op_table import undo_conflicts as ops_undo_conflicts
from engine.plans.policy import Policy
from engine.plans.runner import Limits, RunResult, bubblewrap
from engine.plans.seen import PreviewChanged as PreviewChanged  # raised here too; importers know it from here
from engine.plans.seen import Since, check_seen
from engine.plans.view import Overlay, WorkspaceView
from engine.workspace.sandbox import SandboxError, Workspace
from engine.workspace.state import StateError, command_for, keep_reserve, workspace_lock


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


def _execute(ctx: ApplyContext, record: dict[str, Any], step: dict[str, Any]) -> RunResult | None:
    try:
        return OPS[record["op"]].execute(ctx, record, step)
    except SandboxError as exc:
        refusal = refused_symlink(WorkspaceView(ctx.ws), step, exc)
        if refusal is exc:
            raise
        raise refusal from None


def _undo_record(ws: Workspace, journal: Journal, record: dict[str, Any], *, rollback: bool) -> None:
    """Reverse one record. Idempotent: safe whether the step ran fully, partly or not at all."""
    # Undo goes through no symlink: one put in place of a directory since the step is named, before
    # the op looks (through it, a path may seem gone), and the op's own opens refuse one put there later.
    view = WorkspaceView(ws)
    if (link := undo_symlink(view, [record])) is not None:
        raise undo_through_symlink(view, link)
    try:
        OPS[record["op"]].undo(ws, journal, record, rollback=rollback)
    except SandboxError as exc:
        # A directory on the step's path does not exist, so the step left nothing there.
        code = getattr(exc, "errno", None)
        if code == errno.ENOENT:
            return
        if code in (errno.ELOOP, errno.ENOTDIR) and (link := undo_symlink(view, [record])) is not None:
            raise undo_through_symlink(view, link) from None
        raise


def _undo_all(ws: Workspace, journal: Journal, records: list[dict[str, Any]], *, rollback: bool = False) -> None:
    """Reverse ``records`` (the checked records of ``journal``), newest first.

    ``rollback``: the apply failed or was interrupted, so the plan never took effect; what it made
    and nobody changed since is removed outright instead of kept in the trash (see :meth:`Op.undo`).
    """
    journal.check_places()
    for record in reversed(records):
        _undo_record(ws, journal, record, rollback=rollback)


def undo_conflicts(ws: Workspace, records: list[dict[str, Any]]) -> list[str]:
    """Return why undoing ``records`` (one journal's) now would lose later work, walking them in reverse."""
    return ops_undo_conflicts(ws, records)


# -- the public operations -------------------------------------------------------------------


def _where(step: dict[str, Any]) -> str:
    """The op and the paths a step works on, for error messages (a run's reason names its command)."""
    if "from" in step:
        return f"{step['op']} {quoted_name(step['from'])} to {quoted_name(step['to'])}"
    if "path" in step:
        return f"{step['op']} {quoted_name(step['path'])}"
    return str(step["op"])


def _refuse_changed(view: WorkspaceView, steps: list[dict[str, Any]]) -> None:
    """Refuse a plan whose leading writes with ``if_sha256`` would be refused: before its journal is
    started, so that an edit made from what was read, refused because the file changed since, leaves
    no rolled-back plan in ``plan history``. Called under the workspace lock.

    Those steps are prepared here as the apply prepares them, on the workspace as it is: each replaces
    only its own file, so none changes what a later one finds. From the first other step (or a
    second write of the same file) on, the apply checks each precondition as the steps before leave
    the workspace, with a journal. Any other problem is left to the apply, which says it as it does.
    """
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if "if_sha256" not in step or step["path"] in seen:
            return
        seen.add(step["path"])
        try:
            prepare_step(view, index, step)
        except ChangedMeanwhile as exc:
            raise StepFailed(f"step {index + 1} ({_where(step)}) failed: {exc}; nothing was changed") from None
        except (RouteshellError, OSError):
            return


def _rolled_back(steps: list[dict[str, Any]], index: int, *, started: bool) -> str:
    """What a failed or cancelled apply leaves, in words: the ``index`` steps before the one that stopped
    it were rolled back (``started``: that step had begun), but never what a ``run`` step's command wrote."""
    commands = sum(step["op"] == "run" for step in steps[: index + started])
    if not commands:
        return f"the {index} earlier steps were rolled back" if index else "nothing was changed"
    which = "the command" if commands == 1 else "the commands"
    why = "files a run step writes itself are not journaled, so rolling back leaves them"
    if not index:
        return f"no earlier step had run, and what {which} changed stays: {why}"
    return f"the {index} earlier steps were rolled back, but not what {which} changed: {why}"


def _left_in_trash(journal: Journal) -> list[str]:
    """What a step of ``journal`` deleted and is still in its trash (after an undo, it should be none)."""
    with suppress(OSError):
        return sorted(str(journal.trash_dir / name) for name in os.listdir(journal.trash_dir) if name.isdigit())
    return []


def _interrupted(journal: Journal) -> JournalState | None:
    """The state ``journal`` was left in by a crash ("applying", "undoing"), or None when there is nothing
    to finish: it ended, or its directory is not ours to touch (no plan, no record, and other files)."""
    state = journal.state
    if state not in ("applying", "undoing") or journal.unstarted == "foreign":
        return None
    return state


def _recover_locked(root: Path, ws: Workspace, emit: EventSink) -> list[str]:
    recovered = []
    for journal in journals(root):
        state = _interrupted(journal)
        if state is None:
            if journal.state == "rolled-back":
                journal.drop_texts(above=DROP_TEXTS_ABOVE)  # left by a crash, or by an earlier routeshell
            continue
        # Killed while its journal was being started: no step ran, and the directory goes.
        cut_short = journal.unstarted == "cut-short"
        # A damaged journal stops here, in its own words, before anything is written.
        records = [] if cut_short else journal.records()
        try:
            if cut_short:
                journal.discard()
            else:
                _undo_all(ws, journal, records, rollback=state == "applying")
                journal.set_state("rolled-back" if state == "applying" else "undone")
        except (RouteshellError, OSError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            kept = _left_in_trash(journal)
            listing = command_for(root, "trash", "list")
            where = f"; what it deleted is kept in {journal.trash_dir} ({listing})" if kept else ""
            raise StateError(
                f"cannot finish rolling back plan {journal.id}, interrupted while {state}: {reason}{where}; "
                f"fix that and run {command_for(root, 'plan', 'history')} to try again"
            ) from None
        recovered.append(journal.id)
        _audit_recovery(root, journal, state, emit)
        if state == "applying":
            journal.drop_texts()
        event: RecoveredEvent = {"type": "recovered", "journal": journal.id, "was": state}
        if kept := _left_in_trash(journal):
            event["kept_in_trash"] = kept
        emit(event)
    return recovered


def _audit_recovery(root: Path, journal: Journal, state: str, emit: EventSink) -> None:
    """Record what recovery finished: an interrupted apply rolled back, or an interrupted undo completed."""
    try:
        meta = journal.meta
    except StateError:
        meta = {}
    plan, via, origin = meta.get("plan"), str(meta.get("via") or "unknown"), meta.get("origin")
    if state == "applying":
        reason = "interrupted while it was being applied; the next command rolled it back"
        audit(root, "failed", plan, via=via, origin=origin, plan_id=journal.id, reason=reason, emit=emit)
    else:
        audit(root, "undone", plan, via=via, origin=origin, plan_id=journal.id, reason="finished after a crash",
              emit=emit)  # fmt: skip


def recover(root: Path, on_event: EventSink | None = None, *, wait: float = 0) -> list[str]:
    """Finish what a crash interrupted: roll back half-applied plans, complete half-done undos.

    Returns the ids of the journals it finished. Creates nothing: a workspace without journals,
    or none left half done, is only read. Raises :class:`StateError` when a journal needs
    recovery and the lock cannot be taken or the rollback cannot be written.
    """
    root = Path(os.path.realpath(root))
    if not any(_interrupted(journal) for journal in journals(root)):
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
    policy: Policy | None = None,
    seen: Seen | None = None,
    since: Since = "preview",
) -> ApplyResult:
    """Apply a validated, normalised plan to ``root``, all or nothing.

    Selections (``match``, ``paths``, rename, classify) are expanded first, under the lock, and the
    concrete plan is checked against ``policy`` (:func:`engine.plans.expand.expand_plan`); pass the
    plan the person approved, already expanded, so that exactly that runs (what an expansion here
    warns of, a file index it could not use, is a ``warning`` event to ``on_event``). ``seen``: what the
    preview the person answered read (:func:`engine.plans.dry_run.preview_and_seen`); if any of it
    changed since, or the selections now expand to other steps, :class:`PreviewChanged` is raised
    and nothing is applied (checked under the lock, just before the first change); its line says
    the change was made since ``since``: the preview, or the question ``seen`` was taken for
    (:func:`engine.plans.dry_run.seen_since`).

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
    policy = policy or Policy()
    via = via or ("agent" if origin else "cli")

    def audited(action: Action, plan: dict[str, Any], journal_id: str | None = None, reason: str | None = None) -> None:
        audit(root, action, plan, via=via, origin=origin, plan_id=journal_id, reason=reason, emit=emit)

    refused: list[str] = []

    def warned(message: str) -> None:
        emit({"type": "warning", "message": message})

    def refuse(reason: str) -> None:
        refused.append(reason)
        audited("refused", plan, reason=reason)

    with ExitStack() as held:
        try:
            held.enter_context(workspace_lock(root, wait))
            ws = held.enter_context(Workspace(root))
            _recover_locked(root, ws, emit)
            plan = expand_plan(root, plan, policy, on_refusal=refuse, warn=warned)
            _refuse_changed(WorkspaceView(ws, policy.archive), plan["steps"])
            if seen is not None:
                check_seen(ws, seen, plan["steps"], since)
            journal = Journal.create(root, plan, origin, via, frees=_frees_space(plan))
        except (RouteshellError, OSError) as exc:
            # Nothing was changed, but the apply was asked for and did not happen: that is recorded too.
            # When the state directory is what failed (read-only, full), the error's one line already
            # says so; a second line saying that the log could not be written either would add nothing.
            if not refused:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                audit(root, "failed", plan, via=via, origin=origin, reason=reason,
                      emit=None if isinstance(exc, StateError) else emit)  # fmt: skip
            raise
        bwrap = bubblewrap() if any(step["op"] == "run" for step in plan["steps"]) else None
        ctx = ApplyContext(ws, journal, limits, bwrap, policy.archive)
        run = _Run(ctx, WorkspaceView(ws, policy.archive), plan["steps"], emit, cancel)
        result = ApplyResult(journal.id, len(plan["steps"]), run.results)
        try:
            run.all()
            journal.set_state("applied")
        except BaseException as exc:
            index = run.index
            try:
                _roll_back(ws, journal, untouched=index if isinstance(exc, SymlinkRefused) else None)
            except (RouteshellError, OSError) as undo_exc:
                audited("failed", plan, journal.id, str(exc) or type(exc).__name__)
                why = undo_exc.strerror if isinstance(undo_exc, OSError) and undo_exc.strerror else str(undo_exc)
                raise StateError(
                    f"step {index + 1} of plan {journal.id} failed and rolling it back failed too ({why}); "
                    f"fix that, then {command_for(root, 'plan', 'history')} finishes the rollback"
                ) from None
            # Logged after the rollback: on a full disk, the room the plan took is free again by now.
            audited("failed", plan, journal.id, str(exc) or type(exc).__name__)
            if isinstance(exc, Cancelled) or not isinstance(exc, (RouteshellError, OSError)):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            earlier = _rolled_back(plan["steps"], index, started=run.started == index)
            if index == len(plan["steps"]):
                raise keep_errno(
                    StateError(f"the plan could not be marked applied ({reason}); {earlier}"), exc
                ) from None
            step = plan["steps"][index]
            raise keep_errno(
                StepFailed(f"step {index + 1} ({_where(step)}) failed: {reason}; {earlier}"), exc
            ) from None
        applied: AppliedEvent = {"type": "applied", "journal": journal.id, "steps": result.steps}
        audited("applied", plan, journal.id)
        emit(applied)
        keep_reserve(root)  # made again if a full disk used it up
        return result


#: Steps that only rename or make directories, so a run of them can be journaled with one fsync.
_BATCHED = ("mkdir", "move", "delete")
_BATCH = 256


class _Run:
    """Carries out a plan's steps in order; ``index`` is the step being prepared or carried out.

    Each step is prepared (checked, its undo information decided), its record fsynced to the
    journal, and only then carried out. A run of renames and mkdirs is prepared together against
    the workspace as the run leaves it and journaled with one fsync: undo is idempotent, so a
    crash after the records and before some of those steps is undone like any other.
    """

    def __init__(self, ctx: ApplyContext, view: WorkspaceView, steps: list[dict[str, Any]], emit: EventSink,
                 cancel: Callable[[], bool] | None) -> None:  # fmt: skip
        self.ctx, self.view, self.steps, self.emit, self.cancel = ctx, view, steps, emit, cancel
        self.index = 0
        self.started = -1  # the last step that began to be carried out
        self.results: list[RunResult] = []

    def all(self) -> None:
        while self.index < len(self.steps):
            records = self._prepare(self._batch_end())
            try:
                self.ctx.journal.record_many([{k: v for k, v in r.items() if not k.startswith("_")} for r in records])
            except OSError as exc:
                # Never run a step whose record is not wholly on disk: it could not be undone.
                raise keep_errno(
                    StateError(f"its journal record could not be written ({exc.strerror or exc})"), exc
                ) from None
            for record in records:
                self._carry_out(record)
                self.index += 1

    def _batch_end(self) -> int:
        start = end = self.index
        end += 1
        if self.steps[start]["op"] in _BATCHED:
            while end < len(self.steps) and end - start < _BATCH and self.steps[end]["op"] in _BATCHED:
                end += 1
        return end

    def _prepare(self, end: int) -> list[dict[str, Any]]:
        start = self.index
        if end == start + 1:
            return [prepare_step(self.view, start, self.steps[start])]
        overlay = Overlay(self.ctx.ws, self.ctx.archive_limits)
        records = []
        for at in range(start, end):
            self.index = at  # a step that cannot be prepared is the one named in the error
            records.append(prepare_step(overlay, at, self.steps[at]))
            OPS[self.steps[at]["op"]].simulate(overlay, dict(records[-1]), self.steps[at])
        self.index = start
        return records

    def _carry_out(self, record: dict[str, Any]) -> None:
        index, step = self.index, self.steps[self.index]
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"cancelled before step {index + 1}; {_rolled_back(self.steps, index, started=False)}")
        self.started = index
        run = _execute(self.ctx, record, step)
        event: StepEvent = {"type": "step", "index": index, "op": step["op"]}
        if run is not None:
            self.results.append(run)
            event["exit_code"] = run.exit_code
            event["timed_out"] = run.timed_out
            event["tail"] = run.output_tail[-1000:]
        self.emit(event)


def _roll_back(ws: Workspace, journal: Journal, *, untouched: int | None = None) -> None:
    """Undo every record of ``journal`` but that of step ``untouched``: refused by a symlink on its way
    as it was carried out, it did nothing, and undoing it would act through that symlink."""
    records = [record for record in journal.records() if record["i"] != untouched]
    _undo_all(ws, journal, records, rollback=True)
    try:
        journal.set_state("rolled-back")
    except OSError:
        # The journal stays "applying" and the next command finishes the (idempotent) rollback.
        return
    journal.drop_texts()  # the plan never took effect: what it would have written is room again


def undo_last(root: Path, *, on_event: EventSink | None = None, wait: float = 0) -> Journal:
    """Undo the most recent applied plan; return its journal (see :func:`engine.plans.undo.undo_journal`)."""
    from engine.plans.undo import undo_journal

    return undo_journal(root, None, on_event=on_event, wait=wait)
