"""File operations of the Files pane. Each one becomes a plan applied by the engine.

So every change the pane makes is journaled, shows in ``routeshell plan history`` and can be
undone with ``u``. Plans are applied in a thread; a long one shows progress and can be
cancelled with Escape, which rolls back whatever it had done.

What is applied is what was shown: an operation that asks first (a confirmation, a conflict, the
new name, the rename list in the editor) notes the entries its question names as they are when it
is asked (:meth:`FileOperationsMixin._look`), and the plan its answer makes is applied only if
none of them changed meanwhile; else one line says what changed, and nothing is.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from textual import work
from textual.binding import Binding
from textual.widgets import ProgressBar

from engine.errors import RouteshellError
from engine.events import Event, Seen
from engine.names import display_line, display_name
from engine.plans import file_plans
from engine.plans.apply import ApplyResult, Cancelled, StepFailed, apply_plan
from engine.plans.audit import audit
from engine.plans.dry_run import look, seen_since
from engine.plans.file_plans import Conflict
from engine.plans.seen import Found, Since
from engine.plans.undo import undo_journal, undo_preview
from engine.workspace.sandbox import Workspace
from tui.error_line import one_line
from tui.external_editor import EditorFailed, edit_bytes
from tui.screens.confirm_screen import ConfirmScreen
from tui.screens.conflict_screen import ConflictScreen
from tui.screens.prompt_screen import PromptScreen

if TYPE_CHECKING:
    from tui.widgets.files_pane import FilesPane

_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}

OPERATION_BINDINGS = [
    Binding("space", "toggle_mark", "Mark", id="files.mark", tooltip="Mark or unmark (marks span directories)"),
    Binding("x", "clear_marks", "Unmark", show=False, id="files.clear_marks", tooltip="Clear every mark"),
    Binding("n", "new_file", "New", id="files.new_file", tooltip="Create an empty file here"),
    Binding("N", "new_directory", "New dir", show=False, id="files.new_dir", tooltip="Create a directory here"),
    Binding("r", "rename", "Rename", show=False, id="files.rename", tooltip="Rename the entry"),
    Binding("R", "bulk_rename", "Bulk rename", show=False, id="files.bulk_rename",
            tooltip="Rename the marked entries of this directory (or all) in $EDITOR"),
    Binding("c", "transfer('copy')", "Copy here", show=False, id="files.copy", tooltip="Copy the marked entries here"),
    Binding("m", "transfer('move')", "Move here", show=False, id="files.move", tooltip="Move the marked entries here"),
    Binding("d,delete", "delete", "Delete", id="files.delete", tooltip="Move marked entries (or this one) to trash"),
    Binding("e", "edit", "Edit", show=False, id="files.edit", tooltip="Edit the file in $EDITOR"),
    Binding("u", "undo", "Undo", id="files.undo", tooltip="Undo the last applied plan"),
]  # fmt: skip

#: Actions that change files or open a dialog: none of them starts while a plan applies (the worker
#: group is exclusive, so starting one would detach the apply from the pane and from Esc).
BLOCKED_WHILE_APPLYING = frozenset({
    "new_file", "new_directory", "rename", "bulk_rename", "transfer", "delete", "edit", "undo", "select_pattern",
    "rename_pattern", "classify", "tag", "tag_filter", "archive", "extract", "duplicates", "sizes",
})  # fmt: skip

# The undo question lists at most this many of the things undo will do.
UNDO_ACTIONS_SHOWN = 8
# Plans with more steps than this show a progress bar while they apply.
PROGRESS_FROM_STEPS = 20


@dataclass(frozen=True)
class NotApplied:
    """Why a plan of the pane was not applied: one line for a notification, with its title."""

    message: str
    title: str
    severity: Literal["warning", "error"] = "error"


class FileOperationsMixin:
    """Actions of :class:`FilesPane` that change files."""

    _cancel: threading.Event | None = None

    # -- helpers --------------------------------------------------------------------------

    def _pane(self) -> FilesPane:
        return self  # type: ignore[return-value]

    def _here(self) -> str:
        return self._pane().directory

    def _selection(self) -> list[str]:
        """The marked paths, or the highlighted entry when nothing is marked."""
        pane = self._pane()
        if pane.marks:
            return sorted(pane.marks)
        entry = pane.entry_list.highlighted
        return [file_plans.join(self._here(), entry.name)] if entry else []

    @property
    def applying(self) -> bool:
        return self._cancel is not None

    async def _look(self, paths: list[str]) -> Found:
        """The entries at ``paths`` as they are now, off the event loop: take them as a question
        naming them is asked, and pass them to :meth:`_apply` (``found``) with the plan of its answer."""
        try:
            return await asyncio.to_thread(look, self._pane().root, paths)
        except (RouteshellError, OSError):
            return []  # the workspace cannot be read: the apply says why, and changes nothing

    async def _apply(
        self, plan: dict[str, Any], *, select: str | None = None, seen: Seen | None = None, found: Found | None = None,
    ) -> bool:  # fmt: skip
        """Apply ``plan`` in a thread, with progress for long plans; notify; reload. True on success.

        ``seen``: what the preview shown of ``plan`` read; ``found``: what :meth:`_look` found of the
        entries a question named. If any of it changed since, nothing is applied and one line says
        what changed.
        """
        outcome = await self._try_apply(plan, select=select, seen=seen, found=found)
        pane = self._pane()
        if isinstance(outcome, NotApplied):
            pane.notify(outcome.message, title=outcome.title, severity=outcome.severity, markup=False)
            return False
        pane.notify(f"{display_line(plan.get('goal', ''))} (plan {outcome.journal_id}; u to undo)", markup=False)
        return True

    async def _try_apply(
        self, plan: dict[str, Any], *, select: str | None = None, seen: Seen | None = None, found: Found | None = None,
    ) -> ApplyResult | NotApplied:  # fmt: skip
        """Apply ``plan`` as :meth:`_apply` does, but say nothing: return its result, or why it failed."""
        pane = self._pane()
        cancel = threading.Event()
        self._cancel = cancel
        bar = pane.query_one("#files-progress", ProgressBar)
        total = len(plan["steps"])
        if total > PROGRESS_FROM_STEPS:
            bar.update(total=total, progress=0)
            bar.display = True
        pane.refresh_bindings()
        pane._set_status(f"applying {total} step{'s' * (total != 1)} … Esc cancels (it is rolled back)")

        def on_event(event: Event) -> None:
            if event["type"] == "step":
                pane.app.call_from_thread(bar.advance, 1)
            elif event["type"] == "warning":  # the audit log not written, the file index not used
                message = display_line(str(event["message"]))
                pane.app.call_from_thread(pane.notify, message, title="Warning", severity="warning", markup=False)

        def run() -> ApplyResult:
            checked = seen if found is None else seen_since(pane.root, plan, pane.policy, found)
            # A refusal dates a change from what the person answered: a preview shown, or a question.
            since: Since = "preview" if found is None else "question"
            return apply_plan(pane.root, plan, on_event=on_event, cancel=cancel.is_set, via="files-pane",
                              policy=pane.policy, seen=checked, since=since)  # fmt: skip

        try:
            return await asyncio.to_thread(run)
        except Cancelled as exc:
            return NotApplied(display_line(str(exc)), "Cancelled", "warning")
        except (StepFailed, RouteshellError, OSError) as exc:
            return NotApplied(display_line(str(exc)), "Not applied")
        except Exception as exc:
            # A bug in the engine must leave the pane usable: one line, and nothing else changes.
            return NotApplied(one_line(exc, unexpected=True), "Not applied")
        finally:
            self._cancel = None
            bar.display = False
            pane.refresh_bindings()
            if select is None:
                pane.action_reload()
            else:
                pane.load(pane.directory, select=select)

    def action_cancel_apply(self) -> bool:
        """Cancel a running apply; returns False when none is running."""
        if self._cancel is None:
            return False
        self._cancel.set()
        self._pane()._set_status("cancelling … what the plan did so far is being rolled back")
        return True

    # -- marks ----------------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        pane = self._pane()
        entry = pane.entry_list.highlighted
        if entry is None:
            return
        path = file_plans.join(self._here(), entry.name)
        pane.marks.symmetric_difference_update({path})
        pane.refresh_marks()
        pane.entry_list.action_cursor(1)

    def action_clear_marks(self) -> None:
        pane = self._pane()
        pane.marks.clear()
        pane.refresh_marks()

    # -- operations -----------------------------------------------------------------------

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_new_file(self) -> None:
        name = typed_name(await self._pane().app.push_screen_wait(PromptScreen("New file name:")))
        if name:
            await self._plan_and_apply(lambda: file_plans.new_file(self._here(), name), select=name)

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_new_directory(self) -> None:
        name = typed_name(await self._pane().app.push_screen_wait(PromptScreen("New directory name:")))
        if name:
            await self._plan_and_apply(lambda: file_plans.new_directory(self._here(), name), select=name)

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_rename(self) -> None:
        entry = self._pane().entry_list.highlighted
        if entry is None:
            return
        here = self._here()
        found = await self._look([file_plans.join(here, entry.name)])
        # The name is offered as it is shown (escaped), and what is typed back is read the same way.
        shown = display_name(entry.name)
        name = typed_name(await self._pane().app.push_screen_wait(PromptScreen(f"Rename {shown} to:", shown)))
        if name and name != entry.name:
            await self._plan_and_apply(lambda: file_plans.rename(here, entry.name, name), select=name, found=found)

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_delete(self) -> None:
        pane = self._pane()
        paths = self._selection()
        if not paths:
            return
        try:
            plan = file_plans.delete(paths)
        except RouteshellError as exc:
            pane.notify(display_line(str(exc)), title="Not applied", severity="error", markup=False)
            return
        found = await self._look(paths)
        what = display_name(paths[0]) if len(paths) == 1 else f"{len(paths)} marked entries"
        confirmed = await pane.app.push_screen_wait(ConfirmScreen(f"Move {what} to the trash? (u undoes it)"))
        if not confirmed:
            await asyncio.to_thread(self._audit_declined, plan)
        elif await self._apply(plan, found=found):
            pane.marks.difference_update(paths)
            pane.refresh_marks()

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_transfer(self, op: str) -> None:
        pane = self._pane()
        sources = sorted(pane.marks)
        if not sources:
            pane.notify(f"Mark entries with space first, then {op} them here", severity="warning")
            return
        here = self._here()
        answers: dict[tuple[str, str], Conflict] = {}

        def find_clashes() -> list[tuple[str, str]]:
            with Workspace(pane.root) as ws:
                return file_plans.conflicts(ws, sources, here)

        try:
            clashes = await asyncio.to_thread(find_clashes)
        except RouteshellError as exc:
            pane.notify(display_line(str(exc)), title="Not applied", severity="error", markup=False)
            return
        found = await self._look(sources + [target for _, target in clashes])
        for number, (source, target) in enumerate(clashes):
            if source == target:
                continue
            answer = await pane.app.push_screen_wait(ConflictScreen(source, target, len(clashes) - number))
            if answer is None:
                pane.notify(f"{op.capitalize()} cancelled; nothing changed", severity="warning")
                return
            choice, for_all = answer
            answers[(source, target)] = choice
            if for_all:
                answers.update(dict.fromkeys(clashes[number:], choice))
                break

        def build() -> dict[str, Any] | None:
            with Workspace(pane.root) as ws:
                return file_plans.transfer(ws, op, sources, here, lambda s, t: answers.get((s, t), Conflict.RENAME))

        if await self._plan_and_apply(build, found=found):
            pane.marks.clear()
            pane.refresh_marks()

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_undo(self) -> None:
        pane = self._pane()
        try:
            preview = await asyncio.to_thread(undo_preview, pane.root, take_found=True)
        except (RouteshellError, OSError) as exc:
            pane.notify(display_line(str(exc)), title="Nothing undone", severity="error", markup=False)
            return
        journal = preview.journal
        goal = journal.meta["plan"].get("goal", "") if journal.problem is None else ""
        if preview.blocked:
            blocks = "; ".join(display_line(problem) for problem in preview.blocked)
            pane.notify(f"Plan {display_name(journal.id)} cannot be undone: {blocks}. To undo it, {preview.hint}.",
                        title="Not undone", severity="error", markup=False, timeout=15)  # fmt: skip
            return
        shown = preview.actions[:UNDO_ACTIONS_SHOWN]
        more = len(preview.actions) - len(shown)
        actions = "\n".join(f"- {display_line(action)}" for action in shown) + (f"\n- and {more} more" if more else "")
        question = f"Undo plan {display_name(journal.id)}?\n{display_line(goal) or '(no goal)'}\nIt will:\n{actions}"
        if not await pane.app.push_screen_wait(ConfirmScreen(question)):
            pane.notify("Nothing undone")
            return
        try:
            # This very plan, even if another one was applied while the question was open, and only
            # while what it acts on is as the question found it.
            await asyncio.to_thread(undo_journal, pane.root, journal.id, via="files-pane", found=preview.found)
        except (RouteshellError, OSError) as exc:
            pane.notify(display_line(str(exc)), title="Not undone", severity="error", markup=False)
            return
        marks = await asyncio.to_thread(self._existing, set(pane.marks))
        if marks != pane.marks:
            # What the undo moved away is no longer marked (marks name paths, and those paths are gone).
            pane.marks.intersection_update(marks)
            pane.refresh_marks()
        pane.action_reload()
        pane.notify(f"Undid plan {display_name(journal.id)}: {display_line(goal)}", markup=False)

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_edit(self) -> None:
        pane = self._pane()
        entry = pane.entry_list.highlighted
        if entry is None or entry.is_dir:
            return
        path = file_plans.join(self._here(), entry.name)
        try:
            original = await asyncio.to_thread(self._read, path)
            original.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Its bytes could not come back as they were: a plan's content is text.
            where = f"byte 0x{original[exc.start]:02x} at offset {exc.start}"
            pane.notify(f"{display_name(path)} is not UTF-8 text ({where}); only UTF-8 files are edited here",
                        title="Cannot edit", severity="error", markup=False)  # fmt: skip
            return
        except (RouteshellError, OSError) as exc:
            pane.notify(display_line(str(exc)), title="Cannot edit", severity="error", markup=False)
            return
        # The editor works on a copy of the bytes; saving it becomes a plan, so the edit can be undone.
        edited = self._run_editor(Path(entry.name).name, original)
        if edited is None:
            return
        if edited == original:
            pane.notify(f"{display_name(path)} was not changed", markup=False)
            return
        try:
            new_text = edited.decode("utf-8")
        except UnicodeDecodeError:
            pane.notify(f"The editor saved {display_name(path)} as bytes that are not UTF-8; nothing changed",
                        title="Not applied", severity="error", markup=False)  # fmt: skip
            return
        read_digest = hashlib.sha256(original).hexdigest()
        plan = file_plans.write_file(path, new_text, if_sha256=read_digest)
        outcome = await self._try_apply(plan, select=entry.name)
        if not isinstance(outcome, NotApplied):
            pane.notify(f"{display_line(plan['goal'])} (plan {outcome.journal_id}; u to undo)", markup=False)
        elif await asyncio.to_thread(self._digest, path) != read_digest:
            await self._keep_edit(path, new_text)
        else:
            pane.notify(outcome.message, title=outcome.title, severity=outcome.severity, markup=False)

    async def _keep_edit(self, path: str, text: str) -> None:
        """The file at ``path`` changed while it was edited: keep the edit beside it, as its own plan."""
        pane = self._pane()

        def build() -> dict[str, Any]:
            with Workspace(pane.root) as ws:
                return file_plans.keep_edit(ws, path, text)

        try:
            plan = await asyncio.to_thread(build)
        except RouteshellError as exc:
            outcome: ApplyResult | NotApplied = NotApplied(display_line(str(exc)), "Not applied")
        else:
            kept = plan["steps"][0]["path"]
            outcome = await self._try_apply(plan, select=kept.rpartition("/")[2])
        changed = f"{display_name(path)} changed while it was being edited, so the edit was not applied to it"
        if isinstance(outcome, NotApplied):
            pane.notify(f"{changed}, and it could not be kept: {outcome.message}", title="Edit lost",
                        severity="error", markup=False, timeout=30)  # fmt: skip
            return
        pane.notify(f"{changed}; it is kept in {display_name(kept)} (plan {outcome.journal_id})",
                    title="Not applied", severity="warning", markup=False, timeout=30)  # fmt: skip

    def _read(self, path: str) -> bytes:
        with Workspace(self._pane().root) as ws:
            return ws.read_bytes(path)

    def _digest(self, path: str) -> str | None:
        """The SHA-256 of the file at ``path`` now, or None when it cannot be read."""
        try:
            return hashlib.sha256(self._read(path)).hexdigest()
        except (RouteshellError, OSError):
            return None

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_bulk_rename(self) -> None:
        pane = self._pane()
        here = self._here()
        marked_here = [p.rpartition("/")[2] for p in sorted(pane.marks) if (p.rpartition("/")[0] or ".") == here]
        names = marked_here or [entry.name for entry in pane.entry_list.entries]
        if not names:
            return
        if any("\n" in name or "\r" in name for name in names):
            pane.notify("A name holds a line break: rename it alone with r", severity="error")
            return
        found = await self._look([file_plans.join(here, name) for name in names])
        # A name that is not UTF-8 goes out as its bytes and comes back (surrogateescape).
        edited = self._run_editor("rename.txt", "\n".join(names).encode("utf-8", "surrogateescape") + b"\n")
        if edited is not None:
            text = edited.decode("utf-8", "surrogateescape")
            await self._plan_and_apply(lambda: file_plans.bulk_rename(here, names, text), found=found)

    async def _plan_and_apply(
        self, build: Callable[[], dict[str, Any] | None], *, select: str | None = None, found: Found | None = None,
    ) -> bool:  # fmt: skip
        """Build a plan off the event loop and apply it (``found``: as :meth:`_apply` takes it)."""
        try:
            # Building may look at the workspace (conflicts, free names): off the event loop.
            plan = await asyncio.to_thread(build)
        except RouteshellError as exc:
            self._pane().notify(display_line(str(exc)), title="Not applied", severity="error", markup=False)
            return False
        if plan is None:
            self._pane().notify("Nothing to do")
            return False
        return await self._apply(plan, select=select, found=found)

    def _existing(self, paths: set[str]) -> set[str]:
        """The paths of ``paths`` that name something in the workspace now."""
        found = set()
        with Workspace(self._pane().root) as ws:
            for path in paths:
                try:
                    if ws.lstat(path) is not None:
                        found.add(path)
                except RouteshellError:
                    continue
        return found

    def _audit_declined(self, plan: dict[str, Any]) -> None:
        """Record in the audit log that a plan the pane asked about was declined."""
        audit(self._pane().root, "rejected", plan, via="files-pane", reason="declined in the Files pane")

    def _run_editor(self, name: str, data: bytes) -> bytes | None:
        """Open ``data`` in the user's editor (terminal handed over); return the bytes saved."""
        try:
            return edit_bytes(self._pane().app, name, data)
        except EditorFailed as exc:
            self._pane().notify(f"{display_line(str(exc))}; nothing changed", severity="warning", markup=False)
            return None


def typed_name(text: str | None) -> str | None:
    """Read a name typed in a prompt the way :func:`display_name` shows names: ``\\xe9`` is the byte
    0xE9 (a name that is not UTF-8), ``\\n`` a newline, ``\\\\`` a backslash; any other backslash
    stays as typed. None stays None.
    """
    if text is None or "\\" not in text:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        following = text[index + 1 : index + 2]
        if char != "\\" or not following:
            out.append(char)
            index += 1
            continue
        if following in _ESCAPES:
            out.append(_ESCAPES[following])
            index += 2
            continue
        width = _HEX_DIGITS.get(following, 0)
        digits = text[index + 2 : index + 2 + width]
        if width and len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
            code = int(digits, 16)
            # \xNN above 0x7f is a raw byte: the surrogate os.fsdecode gives it.
            out.append(chr(0xDC00 + code) if following == "x" and code >= 0x80 else chr(min(code, 0x10FFFF)))
            index += 2 + width
            continue
        out.append(char)
        index += 1
    return "".join(out)
