"""The router's decision for the current task: topology, roles, and the reason it gave."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from engine.names import display_name

WAITING_TEXT = "the router decides when you submit a task"


class RouteDecision(Static):
    """Two lines: the route (topology and roles) and why; blank-ish until the first ``route`` event."""

    def on_mount(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the last decision."""
        text = Text()
        text.append("route  ", style="bold")
        text.append(WAITING_TEXT, style="dim")
        self.update(text)

    def show(self, event: dict[str, Any]) -> None:
        """Show a ``route`` event; its reason and note came from a router, so they are shown literally."""
        text = Text()
        text.append("route  ", style="bold")
        text.append(display_name(str(event["topology"])), style="bold cyan")
        text.append(": " + " → ".join(display_name(str(role)) for role in event["roles"]))
        if event["topology"] == "loop":
            text.append(f", up to {event['max_rounds']} rounds")
        if event.get("router"):
            text.append(f"  ({display_name(str(event['router']))} router)", style="dim")
        text.append("\nwhy    ", style="bold")
        text.append(display_name(str(event.get("reason") or "no reason given")))
        if event.get("note"):
            text.append("\nnote   ", style="bold yellow")
            text.append(display_name(str(event["note"])), style="yellow")
        self.update(text)
