"""One renderer for agent events: ``routeshell run``/``--plain`` and the Agent pane show the same lines."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console
from textual.app import App, ComposeResult

from tests.helpers import run_routeshell
from tests.scripted_llm import Reply, ScriptedLLM
from tests.tui.conftest import settle
from tui.transcript import DEFAULT_UNDO_HINT, Transcript, event_lines
from tui.widgets.agent_transcript import AgentTranscript

WIDTH = 400
UNKNOWN = {"type": "checkpoint_saved", "path": "\x1b[2J[red]x[/red]", "step": 3}


class TranscriptApp(App[None]):
    """Just the Agent pane's transcript widget."""

    def compose(self) -> ComposeResult:
        yield AgentTranscript(undo_hint=DEFAULT_UNDO_HINT, id="transcript")


def console_lines(events: list[dict[str, Any]]) -> list[str]:
    """What ``routeshell run`` and ``--plain`` print for ``events``, one string per line."""
    out = io.StringIO()
    transcript = Transcript(Console(file=out, width=WIDTH, color_system=None, highlight=False))
    for event in events:
        transcript.handle(event)
    return [line.rstrip() for line in out.getvalue().splitlines()]


async def pane_lines(events: list[dict[str, Any]]) -> list[str]:
    """What the Agent pane's transcript shows for ``events`` (its opening hint left out)."""
    app = TranscriptApp()
    async with app.run_test(size=(WIDTH, 40)) as pilot:
        transcript = app.query_one(AgentTranscript)
        await settle(pilot)
        transcript.log_widget.clear()
        for event in events:
            transcript.handle(event)
        await settle(pilot)
        return [line.text.rstrip() for line in transcript.log_widget.lines]


def test_an_unknown_event_is_shown_escaped_not_dropped() -> None:
    [line] = event_lines(UNKNOWN)
    shown = '{"type":"checkpoint_saved","path":"\\u001b[2J[red]x[/red]","step":3}'
    assert line.plain == "  event checkpoint_saved: " + shown
    assert not line.spans  # the markup in it stays text
    [typeless] = event_lines({"note": "\x9b"})
    assert typeless.plain == '  event ?: {"note":"\\u009b"}'


def test_a_known_event_with_unexpected_fields_is_shown_not_raised() -> None:
    [line] = event_lines({"type": "role_end", "role": "builder"})
    assert line.plain.startswith("  event role_end (unexpected fields): ")
    assert '"role":"builder"' in line.plain


def test_quiet_events_give_no_line() -> None:
    assert event_lines({"type": "usage", "role": "builder", "total_tokens": 3}) == []
    assert event_lines({"type": "delta", "role": "builder", "text": "x"}) == []


def test_a_warning_is_one_line_its_message_escaped() -> None:
    message = "/w/\x1b[31m/index.sqlite is not a regular file (a symlink); [b]kept in memory"
    [line] = event_lines({"type": "warning", "message": message})
    assert line.plain == "warning: /w/\\x1b[31m/index.sqlite is not a regular file (a symlink); [b]kept in memory"
    assert not line.spans


def test_the_final_line_carries_the_surface_s_undo_hint() -> None:
    final = {"type": "final", "ok": True, "summary": "ok", "usage": {"total_tokens": 3}, "thread": "t1", "undo": "j1"}
    lines = [line.plain for line in event_lines(final, undo_hint="/undo")]
    assert lines[-1] == "undo the last plan with: /undo  (journal j1)"


def test_a_summary_escaped_where_it_was_written_is_not_escaped_twice() -> None:
    declined = "the request cannot be planned: it names /tmp/\\x1b[31mx.txt, outside the workspace"
    final = {"type": "final", "ok": False, "summary": declined, "undo": None}
    assert event_lines(final, undo_hint="/undo")[0].plain == f"failed: {declined}"
    # What is not printable is escaped all the same.
    final["summary"] = "gone \x1b[2J\x07"
    assert event_lines(final, undo_hint="/undo")[0].plain == "failed: gone \\x1b[2J\\x07"


async def test_run_and_the_agent_pane_show_the_same_lines(scripted_llm: ScriptedLLM, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    plan = {"version": 1, "goal": "\x1b]0;pwned\x07 notes [b]now", "steps": [
        {"op": "write", "path": "notes.txt", "content": "\x1b[2J\tplain\n"},
        {"op": "run", "argv": [sys.executable, "-c", "pass"]}]}  # fmt: skip
    scripted_llm.enqueue(Reply(plan))
    result = run_routeshell("run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws),
                            "--topology", "single", "--approve", "auto", "--json", "write the notes")  # fmt: skip
    # The run step makes the plan wait for an approval, which shows its diff.
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {event["type"] for event in events}
    assert {"route", "role_start", "delta", "role_end", "plan", "approval", "final"} <= kinds, result
    # Streamed text is each surface's own (the pane always streams, run only with --show-stream).
    events = [event for event in events if event["type"] != "delta"] + [UNKNOWN]
    shown = console_lines(events)
    assert await pane_lines(events) == shown
    text = "\n".join(shown)
    assert "\x1b" not in text
    assert "\\x1b]0;pwned\\x07 notes [b]now" in text
    # The tab after the 8 characters of "+\\x1b[2J" goes to the next stop, column 16.
    assert "+\\x1b[2J" + " " * 8 + "plain" in text
    assert "event checkpoint_saved" in text


def test_streamed_text_keeps_its_lines_and_shows_escapes() -> None:
    out = io.StringIO()
    transcript = Transcript(Console(file=out, width=WIDTH, color_system=None), deltas=True)
    for text in ["\x1b[2J", "[red]x[/red]\n", "\tnext"]:
        transcript.handle({"type": "delta", "role": "builder", "text": text})
    transcript.handle({"type": "role_end", "role": "builder", "seconds": 1.0, "tokens": 5})
    assert out.getvalue() == "\\x1b[2J[red]x[/red]\n        next\n  builder done in 1.0s, 5 tokens\n"


def sample_events(s: str) -> list[dict[str, Any]]:
    """One event of every type with ``s`` in each field that carries text from a model, file or command."""
    plan = {"version": 1, "goal": s, "steps": [{"op": "write", "path": "a", "content": s}]}
    preview = {"type": "preview", "index": 0, "op": "write", "summary": s, "diff": f"+{s}\n-{s}\n", "problem": s}
    usage = {"total_tokens": 3}
    return [
        {"type": "route", "topology": s, "roles": [s], "max_rounds": 2, "thread": s, "reason": s, "note": s},
        {"type": "route", "topology": "loop", "roles": [s], "max_rounds": 2, "thread": s},
        {"type": "role_start", "role": s, "round": 1},
        {"type": "repair", "role": s, "attempt": 1, "problems": [s]},
        {"type": "role_end", "role": s, "seconds": 1.5, "tokens": 3},
        {"type": "plan", "id": s, "role": s, "plan": plan},
        {"type": "approval", "id": s, "role": s, "plan": plan, "preview": [preview]},
        preview,
        {"type": "step", "index": 0, "op": "run", "exit_code": 1, "timed_out": False},
        {"type": "applied", "journal": s, "steps": 1, "replayed": True},
        {"type": "recovered", "journal": s, "was": s},
        {"type": "undone", "journal": s},
        {"type": "reviewed", "id": s, "status": "failed", "summary": s},
        {"type": "test", "passed": False, "timed_out": False, "exit_code": 1, "tail": s},
        {"type": "error", "message": s},
        {"type": "warning", "message": s},
        {"type": "final", "ok": False, "summary": s, "usage": usage, "thread": s, "undo": s},
        {"type": "x-" + s, "text": s},  # a type nobody knows
    ]


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
@example("unexpected fields")
@example("  event repair (unexpected fields): ")
def test_every_line_of_every_event_is_printable(s: str) -> None:
    for event in sample_events(s):
        lines = event_lines(event)
        assert lines, event
        # A known event that its renderer could not show falls back to this line: ``s`` itself may say
        # "(unexpected fields)", so only the fallback's own start is looked for.
        fallback = f"  event {event['type']} (unexpected fields): "
        for line in lines:
            assert line.plain.isprintable(), (event, line.plain)
            assert not line.plain.startswith(fallback), event


def test_the_undo_hint_is_never_wrapped_so_that_it_can_be_pasted() -> None:
    buffer = io.StringIO()
    hint = "routeshell --profile local plan undo --workspace /tmp/" + "a-long-folder-name/" * 6 + "it"
    transcript = Transcript(Console(file=buffer, width=60, highlight=False), undo_hint=hint)
    transcript.handle({"type": "final", "ok": True, "summary": "done " * 30, "undo": "j1"})
    lines = buffer.getvalue().splitlines()
    assert f"undo the last plan with: {hint}  (journal j1)" in lines
    assert len(lines) > 2  # the summary still wraps at the width
