"""A plan waiting for the user: its dry run as a diff, and approve, edit or reject.

Dismisses with the answer the session resumes with (``{"action": "approve"}``,
``{"action": "edit", "plan": ...}``, ``{"action": "reject", "reason": ...}``) or with ``None``
when the user decides later: the session stays paused and the Agent pane can reopen it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from engine.errors import RouteshellError
from engine.events import ApprovalAnswer, ApprovalRequest
from engine.names import display_line, display_name
from tui.external_editor import EditorFailed, edit_text
from tui.transcript import preview_lines


class ApprovalScreen(ModalScreen[ApprovalAnswer | None]):
    """Shows ``approval`` (the session's ``approval`` event) for a plan on the workspace ``root``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", id="approval.approve", tooltip="Apply the plan as shown"),
        Binding("e", "edit", "Edit", id="approval.edit", tooltip="Edit the plan's JSON in $EDITOR, then apply it"),
        Binding("r", "reject", "Reject", id="approval.reject", tooltip="Reject the plan (a reason is optional)"),
        Binding("escape", "later", "Later", id="approval.later",
                tooltip="Close; the plan keeps waiting (ctrl+o in the Agent pane reopens it)"),
    ]  # fmt: skip

    def __init__(self, approval: ApprovalRequest, root: Path) -> None:
        super().__init__()
        self.approval = approval
        self.root = root

    def compose(self) -> ComposeResult:
        plan = self.approval["plan"]
        count = len(plan["steps"])
        plan_id, role = display_name(str(self.approval["id"])), display_name(str(self.approval["role"]))
        title = Text(f"Plan {plan_id} from the {role}, {count} step{'s' * (count != 1)}, waits for your approval")
        title.stylize("bold")
        with Vertical(classes="dialog", id="approval-dialog"):
            yield Static(title, id="approval-title")
            if plan.get("goal"):
                yield Static(Text("goal: " + display_line(str(plan["goal"]))), id="approval-goal")
            if self.approval.get("runs"):
                yield Static(
                    Text("It runs commands (in the sandbox) once applied.", style="bold yellow"), id="approval-runs"
                )
            with VerticalScroll(id="approval-preview"):
                yield Static(Text("\n").join(preview_lines(self.approval.get("preview", []))), id="approval-diff")
            reason = Input(placeholder="why? (optional)", id="approval-reason")
            reason.border_title = "Reject: Enter rejects, Esc goes back"
            yield reason
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve (a)", id="approve", variant="success")
                yield Button("Edit JSON (e)", id="edit")
                yield Button("Reject (r)", id="reject", variant="error")
                yield Button("Later (Esc)", id="later")

    def on_mount(self) -> None:
        self.query_one("#approval-reason", Input).display = False
        self.query_one("#approval-preview", VerticalScroll).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        getattr(self, f"action_{event.button.id}")()

    def action_approve(self) -> None:
        self.dismiss({"action": "approve"})

    def action_reject(self) -> None:
        reason = self.query_one("#approval-reason", Input)
        reason.display = True
        reason.focus()

    @on(Input.Submitted, "#approval-reason")
    def _reject_with_reason(self, event: Input.Submitted) -> None:
        answer: ApprovalAnswer = {"action": "reject"}
        if event.value.strip():
            answer["reason"] = event.value.strip()
        self.dismiss(answer)

    def action_later(self) -> None:
        reason = self.query_one("#approval-reason", Input)
        if reason.display:
            # Escape in the reason line goes back to the question rather than closing it.
            reason.value = ""
            reason.display = False
            self.query_one("#approval-preview", VerticalScroll).focus()
            return
        self.dismiss(None)

    def action_edit(self) -> None:
        original = json.dumps(self.approval["plan"], indent=2, ensure_ascii=False) + "\n"
        try:
            edited = edit_text(self.app, f"plan-{self.approval['id']}.json", original)
        except EditorFailed as exc:
            self.notify(f"{exc}; the plan still waits", severity="warning", markup=False)
            return
        if edited == original:
            self.notify("The plan is unchanged; press a to approve it as it is", severity="warning")
            return
        plan, why = _parse_edited(edited)
        if why is not None:
            self.notify(f"The edited plan is not valid JSON ({why}); press e to fix it", severity="error",
                        markup=False)  # fmt: skip
            return
        problem = self._problem(plan)
        if problem:
            self.notify(f"The edited plan is not valid: {problem}; press e to fix it", severity="error", markup=False)
            return
        self.dismiss({"action": "edit", "plan": plan})

    def _problem(self, plan: Any) -> str | None:
        """The first reason the edited plan would be refused (the session checks it again)."""
        # Imported here: the role rules pull in the schemas, which the shell needs only now.
        from agents.roles import reply_problems

        try:
            problems = reply_problems(self.approval["role"], plan, self.root)
        except (RouteshellError, OSError) as exc:
            return display_name(str(exc))
        return display_name(problems[0]) if problems else None


def _parse_edited(text: str) -> tuple[Any, str | None]:
    """The edited plan, or None and why it is not JSON."""
    from engine.jsonl import NumberTooLong, decode_error_reason, parse_json

    try:
        return parse_json(text), None
    except json.JSONDecodeError as exc:
        return None, f"{decode_error_reason(exc)} at line {exc.lineno}"
    except NumberTooLong as exc:
        return None, str(exc)
    except RecursionError:
        return None, "nested too deeply"
