"""Undoing one applied plan, chosen by its journal id, and saying beforehand what that would do.

Undo works under the workspace lock and refuses when it would lose later work: a file the plan
wrote was changed since, a path it would restore is taken again, or what it deleted is no longer
in the trash. Each refusal names the path and says what to do. Undo after a question that said
what it would do (:func:`undo_preview`) also refuses when an entry it acts on was edited or replaced
while the question was open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.events import EventSink, UndoneEvent, UndoPreviewEvent
from engine.names import quoted_name
from engine.plans.apply import StepFailed, _recover_locked, _undo_all, undo_conflicts
from engine.plans.audit import audit
from engine.plans.journal import Journal, Via, find_journal, journals
from engine.plans.op_table import OPS, undo_directories, undo_symlink, undo_through_symlink
from engine.plans.seen import Found, check_found, found_in
from engine.plans.trash import restored
from engine.plans.view import WorkspaceView
from engine.workspace.links import symlink_on_the_way
from engine.workspace.sandbox import SandboxError, Workspace
from engine.workspace.state import StateError, command_for, os_problem, workspace_lock

UNBLOCK_HINT = "put those paths back as the plan left them (or move your changes aside), or undo the later plans first"
PLACES_HINT = "make those directories writable, and put back the ones the plan left"
FILES_HINT = "make those files writable"


@dataclass
class UndoPreview:
    """What undoing ``journal`` would do, newest step first, and what blocks it (empty: nothing)."""

    journal: Journal
    actions: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    hint: str = UNBLOCK_HINT  # what to do about what blocks it
    #: The entries undoing acts on, as this preview found them, where it was asked to take them
    #: (``take_found``; else None): pass them to :func:`undo_journal` after the question, so that
    #: one edited or replaced meanwhile stops the undo.
    found: Found | None = None

    def as_event(self) -> UndoPreviewEvent:
        """The ``undo_preview`` JSON-lines event."""
        return {"type": "undo_preview", "journal": self.journal.id, "actions": self.actions, "blocked": self.blocked}


def describe_undo(record: dict[str, Any]) -> str:
    """Say in words what undoing one journal record does, each name in quotes and escaped once as
    :func:`engine.names.display_name` escapes it (show the line with :func:`engine.names.display_line`)."""
    op = record["op"]
    if op == "mkdir":
        made = ", ".join(map(quoted_name, record.get("created", []))) or "none"
        return f"remove the directories it made, if empty: {made}"
    if op in ("write", "append", "patch"):
        if record.get("existed"):
            return f"restore the previous content of {quoted_name(record['path'])}"
        return f"move {quoted_name(record['path'])}, which it created, to the trash"
    if op == "move":
        return f"move {quoted_name(record['to'])} back to {quoted_name(record['from'])}"
    if op == "copy":
        return f"move the copy {quoted_name(record['to'])} to the trash"
    if op == "delete":
        return f"put {quoted_name(record['path'])} back from the trash"
    if op in ("tag", "untag"):
        if record.get("how") == "front-matter":
            return f"restore the previous content of {quoted_name(record['path'])} (its front matter tags)"
        return f"restore the tags of {quoted_name(record['path'])}"
    if op == "archive":
        return f"move the archive {quoted_name(record['to'])} to the trash"
    if op == "extract":
        if record.get("created"):
            return f"move {quoted_name(record['to'])}, which extracting made, to the trash"
        entries = len(record.get("entries", []))
        return f"move what extracting put in {quoted_name(record['to'])} to the trash ({entries} entries)"
    if op == "run":
        return f"nothing for the command {quoted_name(record.get('argv', ['?'])[0])}: what it changed is not journaled"
    return f"undo a {quoted_name(op)} step"


def _pick(root: Path, journal_id: str | None) -> Journal:
    if journal_id is None:
        # The newest plan that may be in effect; a damaged one is not passed over for an older one.
        for journal in reversed(journals(root)):
            if journal.state in ("applied", None):
                if problem := journal.problem:
                    raise StateError(f"the newest applied plan, {journal.id}, cannot be undone: {problem}")
                return journal
        raise UsageError(f"nothing to undo in {root}")
    journal = find_journal(root, journal_id)
    state = journal.state
    if state is None:
        raise StateError(f"plan {journal.id} cannot be undone: {journal.problem}")
    if state != "applied":
        raise UsageError(f"plan {journal.id} is {state}, not applied: nothing to undo")
    if problem := journal.problem:
        raise StateError(f"plan {journal.id} cannot be undone: {problem}")
    return journal


def _blocks(ws: Workspace, journal: Journal, records: list[dict[str, Any]]) -> list[str]:
    """Why undoing ``records`` (of ``journal``) now would lose later work."""
    problems = undo_conflicts(ws, records)
    for record in records:
        if record["op"] == "delete" and not os.path.lexists(journal.trash_dir / str(record["i"])):
            problems.append(
                f"the deleted {quoted_name(record['path'])} is no longer in the trash (it was emptied or restored)"
            )
    return problems


def _unchangeable(ws: Workspace, records: list[dict[str, Any]]) -> list[str]:
    """The files whose tags undoing ``records`` must change but may not (read-only, or someone else's)."""
    view = WorkspaceView(ws)
    if undo_symlink(view, records) is not None:
        return []  # what is through the symlink is not the plan's: said once the directory is back
    return [why for record in records if (why := OPS[record["op"]].undo_unwritable(view, record))]


def _unwritable(ws: Workspace, records: list[dict[str, Any]]) -> list[str]:
    """The directories undoing ``records`` must change but may not, each with what to do: read-only
    ones, ones that lead into ``.git`` or the state directory now, and ones reached through a symlink
    put in place of a directory since the plan was applied (each such symlink named once)."""
    problems = []
    view = WorkspaceView(ws)
    links: set[str] = set()
    for directory in sorted(undo_directories(records)):
        link = symlink_on_the_way(view, directory, inclusive=True)
        if link is not None:
            if link not in links:
                links.add(link)
                problems.append(str(undo_through_symlink(view, link)))
            continue
        try:
            fd = ws.open_dir(directory, write=True)
        except SandboxError as exc:
            if getattr(exc, "errno", None) is None:  # not a missing directory: that is said apart
                problems.append(f"{exc}, and undoing the plan writes there; put back the directory it left, then undo")
            continue
        try:
            writable = os.access(".", os.W_OK, dir_fd=fd)
        finally:
            os.close(fd)
        if not writable:
            shown = "the workspace root" if directory == "." else f"the directory {quoted_name(directory)}"
            problems.append(
                f"{shown} is read-only, and undoing the plan changes what is in it; make it writable, then undo"
            )
    return problems


def _acted_on(records: list[dict[str, Any]]) -> list[str]:
    """The paths undoing ``records`` moves, restores or trashes."""
    return list(dict.fromkeys(record[key] for record in records for key in ("path", "from", "to")
                              if isinstance(record.get(key), str)))  # fmt: skip


def _to_undo(journal: Journal) -> list[dict[str, Any]]:
    """The records of ``journal`` that undoing it reverses: all but a delete whose item ``trash
    restore`` put back already."""
    return [record for record in journal.records() if not restored(journal, record)]


def _preview(ws: Workspace, journal: Journal, take_found: bool) -> UndoPreview:
    journal.check_places()
    records = _to_undo(journal)
    actions = [
        describe_undo(record) if record in records else
        f"nothing for {quoted_name(record['path'])}: it was put back from the trash already"
        for record in reversed(journal.records())
    ]  # fmt: skip
    unwritable, files = _unwritable(ws, records), _unchangeable(ws, records)
    # Through a symlink put in place of a directory, what undo would find is not the plan's: what
    # else blocks it is said once the directory is back.
    blocks = [] if undo_symlink(WorkspaceView(ws), records) is not None else _blocks(ws, journal, records)
    hints = [PLACES_HINT] * bool(unwritable) + [FILES_HINT] * bool(files)
    hint = "; ".join(hints + [UNBLOCK_HINT] * bool(blocks or not hints))
    # Taking what is found reads up to 64 MiB of the files undo acts on (their edit marks): only
    # for an answer that will be checked against it, never for a dry run that just says.
    found = found_in(ws, _acted_on(records)) if take_found else None
    return UndoPreview(journal, actions, unwritable + files + blocks, hint, found)


def undo_preview(root: Path, journal_id: str | None = None, *, take_found: bool = False) -> UndoPreview:
    """Say what undoing ``journal_id`` (default: the newest applied plan) would do; change nothing.

    ``take_found``: the preview is a question whose answer undoes the plan; take what undoing acts
    on as it is now (:attr:`UndoPreview.found`), reading the smaller of those files, for
    :func:`undo_journal` to check. Without it, no file's content is read for that.
    Takes no lock and creates nothing. Raises :class:`UsageError` when there is nothing to undo or
    no such journal, :class:`StateError` for a damaged one.
    """
    root = Path(os.path.realpath(root))
    journal = _pick(root, journal_id)
    with Workspace(root) as ws:
        return _preview(ws, journal, take_found)


def undo_journal(
    root: Path, journal_id: str | None = None, *, on_event: EventSink | None = None, wait: float = 0,
    via: Via = "cli", found: Found | None = None,
) -> Journal:  # fmt: skip
    """Undo the plan applied as ``journal_id`` (default: the newest applied one); return its journal.

    Runs under the workspace lock (waiting up to ``wait`` seconds for it), after crash recovery.
    Raises :class:`StepFailed` naming what blocks it when undoing would lose later work, and
    :class:`UsageError` or :class:`StateError` when there is no such applied plan. ``found``: what
    the :func:`undo_preview` the person answered found (:attr:`UndoPreview.found`, taken with
    ``take_found``); if an entry of
    it changed since, :class:`~engine.plans.seen.PreviewChanged` is raised and nothing is undone.
    """
    emit = on_event or (lambda event: None)
    root = Path(os.path.realpath(root))
    with workspace_lock(root, wait), Workspace(root) as ws:
        _recover_locked(root, ws, emit)
        journal = _pick(root, journal_id)
        journal.check_places()
        records = _to_undo(journal)
        if found is not None:
            check_found(ws, found)
        # Before anything is changed: a directory or file it cannot write would stop the undo halfway.
        unwritable = _unwritable(ws, records) + _unchangeable(ws, records)
        if unwritable:
            more = f" (and {len(unwritable) - 1} more)" if unwritable[1:] else ""
            raise StateError(f"cannot undo plan {journal.id}: {unwritable[0]}{more}")
        problems = _blocks(ws, journal, records)
        if problems:
            lister = command_for(root, "plan", "undo", "--dry-run", journal.id)
            more = f" (and {len(problems) - 1} more: {lister} lists them)"
            raise StepFailed(
                f"cannot undo plan {journal.id}: {problems[0]}{more if problems[1:] else ''}; {UNBLOCK_HINT}"
            )
        try:
            journal.set_state("undoing")
            _undo_all(ws, journal, records)
            journal.set_state("undone")
        except OSError as exc:
            # Left "undoing": the next routeshell command finishes the undo once this is fixed.
            raise os_problem(exc, f"cannot undo plan {journal.id}", journal.dir) from None
        undone: UndoneEvent = {"type": "undone", "journal": journal.id}
        audit(root, "undone", journal.meta["plan"], via=via, plan_id=journal.id, emit=emit)
        emit(undone)
        return journal
