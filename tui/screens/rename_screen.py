"""Rename files by a template or by a regular expression, with a live preview of the new names."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, RadioButton, RadioSet

from tui.screens.plan_preview import PlanPreviewScreen, Preview, plural

#: The placeholders a template may use (see :mod:`engine.files.rename`).
PLACEHOLDERS = "{name} {stem} {ext} {n} {n:03} {parent} {mtime:%Y-%m-%d}"


class RenameScreen(PlanPreviewScreen):
    """Write a rename of ``paths``; dismiss with its preview (the expanded plan) on Enter, or None on Escape."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog plan-dialog"):
            yield Label(f"Rename {plural(len(self.paths), 'file')}", markup=False)
            with RadioSet(id="rename-mode"):
                yield RadioButton("Template", value=True, id="rename-by-template")
                yield RadioButton("Find and replace (regex)", id="rename-by-regex")
            yield Input(placeholder="new name, e.g. {n:03}-{name}", id="rename-template")
            yield Label(f"Placeholders: {PLACEHOLDERS}", id="rename-placeholders", markup=False)
            with Horizontal(id="rename-regex"):
                yield Input(placeholder="find: a regular expression over the name", id="rename-find")
                yield Input(placeholder=r"replace: \1 is the first group", id="rename-replace")
            yield from self.compose_preview()
            yield Label("Enter renames · Tab moves between fields · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self._show_mode()
        self.query_one("#rename-template", Input).focus()
        super().on_mount()

    @property
    def by_template(self) -> bool:
        return self.query_one("#rename-by-template", RadioButton).value

    def _show_mode(self) -> None:
        self.query_one("#rename-template", Input).display = self.by_template
        self.query_one("#rename-placeholders", Label).display = self.by_template
        self.query_one("#rename-regex", Horizontal).display = not self.by_template

    @on(RadioSet.Changed)
    def _mode_changed(self) -> None:
        self._show_mode()
        self.refresh_preview()

    @on(Input.Changed)
    def _typed(self) -> None:
        self.refresh_preview()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_apply()

    def written_plan(self) -> dict[str, Any] | Preview:
        step: dict[str, Any] = {"op": "rename", "paths": self.paths}
        if self.by_template:
            template = self.query_one("#rename-template", Input).value
            if not template:
                return Preview.asking("Type a template for the new names; the preview shows them")
            step["template"] = template
        else:
            find = self.query_one("#rename-find", Input).value
            if not find:
                return Preview.asking("Type a regular expression to find in each name, and its replacement")
            step["find"] = find
            step["replace"] = self.query_one("#rename-replace", Input).value
        return {"version": 1, "goal": f"rename {plural(len(self.paths), 'file')}", "steps": [step]}
