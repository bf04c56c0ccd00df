"""A readable transcript of agent events, printed with rich, for ``routeshell run`` and ``--plain``.

Every string that came from a model or a file goes through :class:`rich.text.Text` (never markup)
and :func:`engine.names.display_name`, so markup and terminal escapes are shown literally.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from engine.names import display_name


def _safe(value: Any) -> str:
    return display_name(str(value))


def _steps(count: int) -> str:
    return f"{count} step{'s' * (count != 1)}"


def preview_lines(previews: list[dict[str, Any]], *, max_diff_lines: int = 200) -> list[Text]:
    """Return the lines showing a plan's dry run: one summary per step and its diff."""
    lines: list[Text] = []
    for preview in previews:
        mark = "!" if preview.get("problem") else "-"
        lines.append(Text(f"  {mark} [{preview['index'] + 1}] {_safe(preview['summary'])}"))
        if preview.get("problem"):
            lines.append(Text(f"      would fail: {_safe(preview['problem'])}", style="red"))
        diff = (preview.get("diff") or "").splitlines()
        for line in diff[:max_diff_lines]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            lines.append(Text("      " + _safe(line), style=style))
        if len(diff) > max_diff_lines:
            lines.append(Text(f"      ... {len(diff) - max_diff_lines} more diff lines", style="dim"))
    return lines


class Transcript:
    """Prints events as they arrive; ``deltas`` also echoes the models' streamed text.

    ``undo_hint`` is how the reader undoes a plan where the transcript is shown.
    """

    def __init__(self, console: Console, *, deltas: bool = False, undo_hint: str = "routeshell plan undo") -> None:
        self.console = console
        self.deltas = deltas
        self.undo_hint = undo_hint
        self._streaming = False

    def _line(self, text: str | Text, style: str = "") -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False
        self.console.print(text if isinstance(text, Text) else Text(text, style=style), highlight=False)

    def handle(self, event: dict[str, Any]) -> None:
        """Print one event."""
        kind = event.get("type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    def _on_route(self, event: dict[str, Any]) -> None:
        roles = " -> ".join(event["roles"])
        rounds = f", up to {event['max_rounds']} rounds" if event["topology"] == "loop" else ""
        self._line(f"route  {event['topology']}: {roles}{rounds}  (thread {event['thread']})", "bold")
        if event.get("reason"):
            self._line(f"       why: {_safe(event['reason'])}", "dim")
        if event.get("note"):
            self._line(f"       note: {_safe(event['note'])}", "yellow")

    def _on_role_start(self, event: dict[str, Any]) -> None:
        self._line(f"> {event['role']} (round {event['round']})", "bold cyan")

    def _on_delta(self, event: dict[str, Any]) -> None:
        if self.deltas:
            self.console.print(Text(_safe(event["text"]), style="dim"), end="", highlight=False)
            self._streaming = True

    def _on_repair(self, event: dict[str, Any]) -> None:
        first = _safe(event["problems"][0]) if event["problems"] else "invalid"
        self._line(f"  reply {event['attempt']} rejected ({first}); asking again", "yellow")

    def _on_role_end(self, event: dict[str, Any]) -> None:
        self._line(f"  {event['role']} done in {event['seconds']:.1f}s, {event['tokens']} tokens", "dim")

    def _on_plan(self, event: dict[str, Any]) -> None:
        plan = event["plan"]
        goal = f": {_safe(plan['goal'])}" if plan.get("goal") else ""
        self._line(f"  plan {event['id']} from the {event['role']}, {_steps(len(plan['steps']))}{goal}")

    def _on_approval(self, event: dict[str, Any]) -> None:
        self._line(f"  plan {event['id']} from the {event['role']} waits for approval:", "bold yellow")
        for line in preview_lines(event["preview"]):
            self._line(line)

    def _on_step(self, event: dict[str, Any]) -> None:
        if event["op"] == "run":
            status = "timed out" if event.get("timed_out") else f"exit {event.get('exit_code')}"
            self._line(f"  ran step {event['index'] + 1}: {status}", "dim")

    def _on_applied(self, event: dict[str, Any]) -> None:
        again = " (already applied before the restart; not applied again)" if event.get("replayed") else ""
        self._line(f"  applied {_steps(event['steps'])} as journal {event['journal']}{again}", "green")

    def _on_reviewed(self, event: dict[str, Any]) -> None:
        if event["status"] != "applied":
            style = "red" if event["status"] in ("rejected", "failed", "reverted") else "dim"
            self._line(f"  plan {event['id']} {event['status']}: {_safe(event['summary'])}", style)

    def _on_test(self, event: dict[str, Any]) -> None:
        if event["passed"]:
            self._line(f"  tests pass (exit {event['exit_code']})", "bold green")
            return
        status = "timed out" if event["timed_out"] else f"exit {event['exit_code']}"
        self._line(f"  tests fail ({status}):", "bold red")
        for line in event["tail"].rstrip().splitlines()[-15:]:
            self._line("    " + _safe(line), "dim")

    def _on_error(self, event: dict[str, Any]) -> None:
        self._line(f"error: {_safe(event['message'])}", "bold red")

    def _on_final(self, event: dict[str, Any]) -> None:
        usage = event["usage"]
        estimated = " (estimated)" if usage.get("estimated") else ""
        self._line(("done: " if event["ok"] else "failed: ") + _safe(event["summary"]),
                   "bold green" if event["ok"] else "bold red")  # fmt: skip
        self._line(f"tokens: {usage['total_tokens']}{estimated}  thread: {event['thread']}", "dim")
        if event.get("undo"):
            self._line(f"undo the last plan with: {self.undo_hint}  (journal {event['undo']})", "dim")
