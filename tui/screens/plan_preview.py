"""The base of the dialogs that preview a plan while it is typed: rename by pattern and classify.

A moment after the last key, the plan the fields describe is expanded into concrete steps
(:func:`engine.plans.expand.expand_plan`) in a thread worker, so a preview of thousands of files
never blocks typing. The preview shows where each file would go, or every problem that stops the
plan; Enter is refused while there is one. The dialog returns the preview, the expanded plan with
what it read of the workspace (its :class:`~engine.events.Seen`): the apply checks that again under
the workspace lock, so what runs is exactly what was shown, and a file edited, replaced or removed
while the preview was on screen stops the apply before any change.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.errors import RouteshellError
from engine.events import Seen
from engine.names import display_line, display_name
from engine.plans.dry_run import preview_and_seen
from engine.plans.expand import expand_plan
from engine.plans.model import InvalidPlan, PlanProblem, normalise, plan_problems
from engine.plans.policy import Policy
from tui.error_line import one_line

HERE = Path(__file__).parent
#: The style sheet of the select, rename and classify dialogs.
SELECTION_DIALOGS_CSS = HERE / "selection_dialogs.tcss"
#: A preview lists at most this many rows, then how many more there are.
ROWS_SHOWN = 200
#: How long typing must pause before the preview is worked out again.
DEBOUNCE_S = 0.3


@dataclass(frozen=True)
class Preview:
    """What a written plan would do: the concrete plan and its moves, or why there is none."""

    plan: dict[str, Any] | None
    moves: list[tuple[str, str]] = field(default_factory=list)  # (source, final target), in plan order
    problems: list[str] = field(default_factory=list)  # one line each, not yet escaped
    hint: str = ""  # what to type, while the fields describe no plan yet
    warnings: list[str] = field(default_factory=list)  # what the expansion warns of, not yet escaped
    #: What the preview read of the workspace, for the apply to check again (with :attr:`plan`).
    seen: Seen | None = None

    @classmethod
    def asking(cls, hint: str) -> Preview:
        return cls(None, hint=hint)


def move_pairs(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (source, final target) for each file the concrete ``plan`` moves, in plan order.

    A rename that swaps or chains names parks each file under a temporary name first; the pair
    follows it through to where it ends up.
    """
    chains: dict[str, str] = {}  # where a file is now -> where it was before the plan
    for step in plan["steps"]:
        if step["op"] == "move":
            chains[step["to"]] = chains.pop(step["from"], step["from"])
    return [(source, target) for target, source in chains.items()]


def expand_preview(root: Path, policy: Policy, written: dict[str, Any], where: Callable[[PlanProblem], str]) -> Preview:
    """Check and expand ``written`` against the workspace at ``root``; ``where`` words each problem."""
    warnings: list[str] = []
    selected: list[tuple[str, os.stat_result]] = []
    try:
        problems = plan_problems(written)
        if problems:
            raise InvalidPlan("plan", problems)
        concrete = expand_plan(root, normalise(written), policy, warn=warnings.append,
                               saw=lambda path, info: selected.append((path, info)))  # fmt: skip
    except InvalidPlan as exc:
        return Preview(None, problems=[where(problem) for problem in exc.problems], warnings=warnings)
    # The dry run the apply will make, step by step (a target that is a file, not a directory...),
    # and what it and the selections read: a change to it before Enter stops the apply.
    previews, seen = preview_and_seen(root, concrete, policy, selected=selected)
    failing = [f"step {p.index + 1} ({p.summary}): {p.problem}" for p in previews if p.problem]
    if failing:
        return Preview(None, problems=failing[:20], warnings=warnings)
    return Preview(concrete, move_pairs(concrete), warnings=warnings, seen=seen)


def arrow_row(source: str, target: str) -> Text:
    """One preview row, ``source → target``, names escaped."""
    return Text.assemble(display_name(source), (" → ", "bold"), display_name(target))


def rows_text(rows: list[Text], total: int) -> Text:
    """The rows shown (at most :data:`ROWS_SHOWN` are made), then "and N more" for the rest of ``total``."""
    text = Text("\n").join(rows[:ROWS_SHOWN])
    if total > ROWS_SHOWN:
        text.append(f"\n… and {total - ROWS_SHOWN:,} more", style="italic")
    return text


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 file``, ``2 files``."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


class PlanPreviewScreen(ModalScreen[Preview | None]):
    """A dialog whose fields write a plan; it previews the plan and dismisses with that preview (its
    plan expanded, and what it read), or None."""

    CSS_PATH = SELECTION_DIALOGS_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="plan_dialog.cancel", tooltip="Close without changing anything"),
    ]

    @dataclass
    class Previewed(Message):
        generation: int
        preview: Preview

    def __init__(self, root: Path, policy: Policy, paths: list[str]) -> None:
        super().__init__()
        self.root = root
        self.policy = policy
        #: The workspace-relative paths the plan works on.
        self.paths = paths
        self._generation = 0
        #: The preview of what the fields say now; None while it is being worked out.
        self.shown: Preview | None = None
        self._apply_when_ready = False
        # One expansion at a time: a newer one waits for it, then finds out whether it is still wanted.
        self._expanding = threading.Lock()
        #: The warnings shown so far: the plan is expanded again after each pause in typing.
        self._warned: set[str] = set()

    # -- what a dialog fills in ---------------------------------------------------------

    def written_plan(self) -> dict[str, Any] | Preview:
        """The plan the fields describe, or a preview saying what to type or what is wrong."""
        raise NotImplementedError

    def problem_line(self, problem: PlanProblem) -> str:
        """How a problem of the plan is told (its reason; a dialog may say where it was written)."""
        return problem.reason

    def preview_rows(self, preview: Preview) -> tuple[list[Text], int, str]:
        """The rows to show (at most :data:`ROWS_SHOWN`), how many there are in all, and a summary line."""
        rows = [arrow_row(source, target) for source, target in preview.moves[:ROWS_SHOWN]]
        return rows, len(preview.moves), f"{plural(len(preview.moves), 'file')} to rename"

    # -- the preview ----------------------------------------------------------------------

    def compose_preview(self) -> ComposeResult:
        yield Static("", id="preview-summary", markup=False)
        with VerticalScroll(id="preview-scroll", can_focus=False):
            yield Static("", id="preview-rows", markup=False)

    def on_mount(self) -> None:
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Work out the preview of the fields as they are now (after a pause in typing)."""
        self._generation += 1
        written = self.written_plan()
        if isinstance(written, Preview):
            self._show(written)
            return
        self.shown = None
        self.query_one("#preview-summary", Static).update(Text("working out the preview …", style="italic"))
        self._expand(self._generation, written)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _expand(self, generation: int, written: dict[str, Any]) -> None:
        worker = get_current_worker()
        time.sleep(DEBOUNCE_S)
        with self._expanding:
            if worker.is_cancelled:
                return
            try:
                preview = expand_preview(self.root, self.policy, written, self.problem_line)
            except (RouteshellError, OSError) as exc:
                preview = Preview(None, problems=[one_line(exc)])
            except Exception as exc:
                # A bug in the engine costs this preview, never the dialog or the app.
                preview = Preview(None, problems=[one_line(exc, unexpected=True)])
        if not worker.is_cancelled:
            self.post_message(self.Previewed(generation, preview))

    @on(Previewed)
    def _on_previewed(self, message: Previewed) -> None:
        if message.generation == self._generation:
            self._show(message.preview)

    def _show(self, preview: Preview) -> None:
        self.shown = preview
        for warning in preview.warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                self.notify(display_line(warning), title="File index", severity="warning", markup=False)
        summary = self.query_one("#preview-summary", Static)
        rows = self.query_one("#preview-rows", Static)
        rows.set_class(bool(preview.problems), "-problem")
        summary.set_class(bool(preview.problems), "-problem")
        if preview.problems:
            summary.update(Text(f"Cannot apply: {plural(len(preview.problems), 'problem')}", style="bold"))
            rows.update(rows_text([Text(display_line(line)) for line in preview.problems], len(preview.problems)))
        elif preview.plan is None:
            summary.update(Text(preview.hint, style="italic"))
            rows.update("")
        else:
            shown, total, line = self.preview_rows(preview)
            summary.update(Text(line))
            rows.update(rows_text(shown, total))
        if self._apply_when_ready:
            self._apply_when_ready = False
            self.action_apply()

    # -- answers --------------------------------------------------------------------------

    def action_apply(self) -> None:
        """Dismiss with the preview shown; wait for it first, and refuse while there is a problem."""
        if self.shown is None:
            self._apply_when_ready = True
        elif self.shown.plan is None:
            self.app.bell()
        else:
            self.dismiss(self.shown)

    def action_cancel(self) -> None:
        self.dismiss(None)
