"""How agent and plan events read as text: one place for ``routeshell run``, ``--plain`` and the Agent pane.

:func:`event_lines` turns one event into rich ``Text`` lines; :class:`Transcript` prints them on a
console (``run`` and ``--plain``) and the Agent pane writes the same lines into its log. Every
string that came from a model, a file, a command or a server goes through
:func:`engine.names.display_name` (one-line values), :func:`engine.names.display_line` (errors and
problems, whose names are escaped already) or :func:`engine.names.display_text` (diffs, streamed text)
and into a ``Text``, never markup, so markup and terminal escapes in it are shown
literally. An event of a type this module does not know is shown as its type and compact JSON,
never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from engine.names import display_line, display_name, display_text

Event = Mapping[str, Any]

MAX_DIFF_LINES = 200
TEST_TAIL_LINES = 15
#: An unknown event's JSON is cut to this many characters: it is there to be noticed, not read in full.
MAX_UNKNOWN_CHARS = 1000
#: Events with nothing to say as a line: ``delta`` is streamed text (each surface shows it its own
#: way, see :func:`streamed_text`), ``usage`` feeds the token meter and ``role_end``.
QUIET_EVENTS = frozenset({"delta", "usage"})
DEFAULT_UNDO_HINT = "routeshell plan undo"


def _safe(value: Any) -> str:
    """A value (a name, an id) shown escaped."""
    return display_name(str(value))


def _said(message: Any) -> str:
    """A message (an error, a problem) shown with its control characters escaped: the names in it are
    escaped already, where it was written (:func:`engine.names.quoted_name`), and are not escaped again."""
    return display_line(str(message))


def _steps(count: int) -> str:
    return f"{count} step{'s' * (count != 1)}"


def diff_lines(diff: str, *, indent: str = "", max_lines: int = MAX_DIFF_LINES) -> list[Text]:
    """Return a unified ``diff`` as coloured lines, shown literally (tabs expanded, controls escaped).

    Only ``"\\n"`` ends a line: a form feed or a carriage return inside a file's line stays in
    that line, escaped. After ``max_lines`` lines one line says how many more there are.
    """
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[Text] = []
    for line in lines[:max_lines]:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        out.append(Text(indent + display_text(line), style=style))
    if len(lines) > max_lines:
        out.append(Text(f"{indent}... {len(lines) - max_lines} more diff lines", style="dim"))
    return out


def preview_lines(previews: Sequence[Mapping[str, Any]], *, max_diff_lines: int = MAX_DIFF_LINES) -> list[Text]:
    """Return the lines showing a plan's dry run: one summary per step and its diff."""
    lines: list[Text] = []
    for preview in previews:
        mark = "!" if preview.get("problem") else "-"
        lines.append(Text(f"  {mark} [{preview['index'] + 1}] {_safe(preview['summary'])}"))
        if preview.get("problem"):
            lines.append(Text(f"      would fail: {_said(preview['problem'])}", style="red"))
        lines += diff_lines(preview.get("diff") or "", indent="      ", max_lines=max_diff_lines)
    return lines


def streamed_text(text: str) -> Text:
    """Return a piece of a model's streamed reply as dim text, shown literally."""
    return Text(display_text(text), style="dim")


def error_line(message: str) -> Text:
    """Return the line that shows an error."""
    return Text(f"error: {_said(message)}", style="bold red")


def unknown_lines(event: Event, why: str = "") -> list[Text]:
    """Return an event nobody knows how to show as its type and compact JSON, escaped."""
    raw = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=repr)
    if len(raw) > MAX_UNKNOWN_CHARS:
        raw = raw[:MAX_UNKNOWN_CHARS] + " ..."
    kind = _safe(event.get("type", "?"))
    return [Text(f"  event {kind}{why}: {display_text(raw)}", style="dim")]


def _route(event: Event, undo_hint: str) -> list[Text]:
    roles = " -> ".join(_safe(role) for role in event["roles"])
    rounds = f", up to {event['max_rounds']} rounds" if event["topology"] == "loop" else ""
    lines = [Text(f"route  {_safe(event['topology'])}: {roles}{rounds}  (thread {_safe(event['thread'])})",
                  style="bold")]  # fmt: skip
    if event.get("reason"):
        lines.append(Text(f"       why: {_safe(event['reason'])}", style="dim"))
    if event.get("note"):
        lines.append(Text(f"       note: {_safe(event['note'])}", style="yellow"))
    return lines


def _role_start(event: Event, undo_hint: str) -> list[Text]:
    return [Text(f"> {_safe(event['role'])} (round {event['round']})", style="bold cyan")]


def _repair(event: Event, undo_hint: str) -> list[Text]:
    first = _said(event["problems"][0]) if event.get("problems") else "invalid"
    return [Text(f"  reply {event['attempt']} rejected ({first}); asking again", style="yellow")]


def _role_end(event: Event, undo_hint: str) -> list[Text]:
    return [Text(f"  {_safe(event['role'])} done in {event['seconds']:.1f}s, {event['tokens']} tokens", style="dim")]


def _plan(event: Event, undo_hint: str) -> list[Text]:
    plan = event["plan"]
    goal = f": {display_line(str(plan['goal']))}" if plan.get("goal") else ""
    return [Text(f"  plan {_safe(event['id'])} from the {_safe(event['role'])}, {_steps(len(plan['steps']))}{goal}")]


def _approval(event: Event, undo_hint: str) -> list[Text]:
    head = f"  plan {_safe(event['id'])} from the {_safe(event['role'])} waits for approval:"
    return [Text(head, style="bold yellow"), *preview_lines(list(event.get("preview") or []))]


def _preview(event: Event, undo_hint: str) -> list[Text]:
    return preview_lines([dict(event)])


def _step(event: Event, undo_hint: str) -> list[Text]:
    # File steps are summed up by "applied"; a command's outcome is news.
    if event["op"] != "run":
        return []
    status = "timed out" if event.get("timed_out") else f"exit {event.get('exit_code')}"
    return [Text(f"  ran step {event['index'] + 1}: {status}", style="dim")]


def _applied(event: Event, undo_hint: str) -> list[Text]:
    again = " (already applied before the restart; not applied again)" if event.get("replayed") else ""
    return [Text(f"  applied {_steps(event['steps'])} as journal {_safe(event['journal'])}{again}", style="green")]


def _recovered(event: Event, undo_hint: str) -> list[Text]:
    return [Text(f"  recovered plan {_safe(event['journal'])} interrupted while {_safe(event['was'])}", "yellow")]


def _undone(event: Event, undo_hint: str) -> list[Text]:
    return [Text(f"  undid plan {_safe(event['journal'])}", style="green")]


def _reviewed(event: Event, undo_hint: str) -> list[Text]:
    if event["status"] == "applied":
        return []  # "applied" said it already
    style = "red" if event["status"] in ("rejected", "failed", "reverted") else "dim"
    return [Text(f"  plan {_safe(event['id'])} {_safe(event['status'])}: {_said(event['summary'])}", style=style)]


def _test(event: Event, undo_hint: str) -> list[Text]:
    if event["passed"]:
        return [Text(f"  tests pass (exit {event['exit_code']})", style="bold green")]
    status = "timed out" if event.get("timed_out") else f"exit {event['exit_code']}"
    lines = [Text(f"  tests fail ({status}):", style="bold red")]
    for line in str(event.get("tail") or "").rstrip().split("\n")[-TEST_TAIL_LINES:]:
        lines.append(Text("    " + display_text(line), style="dim"))
    return lines


def _error(event: Event, undo_hint: str) -> list[Text]:
    return [error_line(str(event["message"]))]


def _warning(event: Event, undo_hint: str) -> list[Text]:
    return [Text(f"warning: {_said(event['message'])}", style="yellow")]


def _final(event: Event, undo_hint: str) -> list[Text]:
    ok = bool(event["ok"])
    # (A summary is a message, its names escaped where it was written: escaped once more here, every
    # backslash would show doubled. Whatever is not printable is still escaped.)
    summary = display_line(str(event["summary"]))
    lines = [Text(("done: " if ok else "failed: ") + summary, style="bold green" if ok else "bold red")]
    if event.get("usage"):
        usage = event["usage"]
        estimated = " (estimated)" if usage.get("estimated") else ""
        lines.append(Text(f"tokens: {usage['total_tokens']}{estimated}  thread: {_safe(event['thread'])}", "dim"))
    if event.get("undo"):
        # Never wrapped, so that the command still works when pasted (the terminal may fold it on screen).
        lines.append(Text(f"undo the last plan with: {undo_hint}  (journal {_safe(event['undo'])})", style="dim",
                          no_wrap=True))  # fmt: skip
    return lines


_RENDER: dict[str, Callable[[Event, str], list[Text]]] = {
    "route": _route,
    "role_start": _role_start,
    "repair": _repair,
    "role_end": _role_end,
    "plan": _plan,
    "approval": _approval,
    "preview": _preview,
    "step": _step,
    "applied": _applied,
    "recovered": _recovered,
    "undone": _undone,
    "reviewed": _reviewed,
    "test": _test,
    "error": _error,
    "warning": _warning,
    "final": _final,
}


def event_lines(event: Event, *, undo_hint: str = DEFAULT_UNDO_HINT) -> list[Text]:
    """Return the lines that show ``event`` (a dict as ``routeshell run --json`` prints it).

    ``undo_hint`` is how the reader undoes a plan where the lines are shown. Events in
    :data:`QUIET_EVENTS` give no line. An event of an unknown type, or of a known type but an
    unexpected shape, is shown as its type and compact JSON rather than dropped.
    """
    kind = event.get("type")
    if kind in QUIET_EVENTS:
        return []
    render = _RENDER.get(kind) if isinstance(kind, str) else None
    if render is None:
        return unknown_lines(event)
    try:
        return render(event, undo_hint)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return unknown_lines(event, " (unexpected fields)")


class Transcript:
    """Prints events on ``console`` as they arrive; ``deltas`` also echoes the models' streamed text.

    ``undo_hint`` is how the reader undoes a plan where the transcript is shown.
    """

    def __init__(self, console: Console, *, deltas: bool = False, undo_hint: str = DEFAULT_UNDO_HINT) -> None:
        self.console = console
        self.deltas = deltas
        self.undo_hint = undo_hint
        self._streaming = False

    def _line(self, text: Text) -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False
        # A line that must not wrap (a command to paste) is written whole: the terminal may fold it.
        # Other lines wrap as the console does (a console with soft_wrap writes every line whole).
        self.console.print(text, highlight=False, soft_wrap=True if text.no_wrap else None)

    def handle(self, event: Event) -> None:
        """Print one event."""
        if event.get("type") == "delta":
            if self.deltas:
                self.console.print(streamed_text(str(event.get("text", ""))), end="", highlight=False)
                self._streaming = True
            return
        for line in event_lines(event, undo_hint=self.undo_hint):
            self._line(line)
