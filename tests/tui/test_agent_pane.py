"""The Agent pane: tasks run through the real session against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import shlex
import socket
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.widgets import TabbedContent

from agents.state import APPROVAL_MODES
from engine.config.profiles import load_profile
from tests.helpers import run_routeshell
from tests.scripted_llm import Hold, Reply, ScriptedLLM
from tests.tui.conftest import screen_text, settle, wait_until
from tui.app import RouteshellApp
from tui.screens.approval_screen import ApprovalScreen
from tui.screens.main_screen import MainScreen
from tui.widgets.agent_pane import APPROVAL_HELP, AgentPane
from tui.widgets.agent_transcript import AgentTranscript
from tui.widgets.entry_list import EntryList
from tui.widgets.task_input import TaskInput, history_path
from tui.widgets.usage_meter import UsageMeter

SIZE = (110, 36)
TASK = "change the greeting"
HOSTILE = "[red]hi[/red] \x1b[31m"
PLAN = {
    "version": 1,
    "goal": "greet loudly",
    "steps": [{"op": "patch", "path": "src/pkg/hello.py", "find": 'f"hello {name}"', "replace": 'f"HELLO {name}"'}],
}


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the task history out of the real ``$XDG_STATE_HOME``."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def agent_app(workspace: Path, scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The real app whose ``ci`` profile talks to the scripted server."""
    monkeypatch.setenv("LLM_API_BASE", scripted_llm.base_url)

    def factory() -> RouteshellApp:
        return RouteshellApp(workspace, load_profile("ci"))

    return factory


def main(app: RouteshellApp) -> MainScreen:
    """The shell window, also while a dialog is on top of it."""
    return next(screen for screen in app.screen_stack if isinstance(screen, MainScreen))


def pane_of(app: RouteshellApp) -> AgentPane:
    return main(app).query_one(AgentPane)


def log_text(app: RouteshellApp) -> str:
    """Every line written to the transcript so far (scrolled out of view or not)."""
    log = main(app).query_one(AgentTranscript).log_widget
    return "\n".join(line.text for line in log.lines)


async def open_agent(pilot, mode: str | None = None) -> AgentPane:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("1")
    await settle(pilot)
    pane = pane_of(pilot.app)
    if mode is not None:
        pane.action_set_approval(mode)
    return pane


async def submit(pilot, task: str) -> None:  # type: ignore[no-untyped-def]
    main(pilot.app).query_one(TaskInput).value = task
    await pilot.press("enter")


async def run_to_end(pilot, task: str) -> None:  # type: ignore[no-untyped-def]
    await submit(pilot, task)
    await settle(pilot)


def hello(workspace: Path) -> str:
    return (workspace / "src" / "pkg" / "hello.py").read_text()


async def test_approval_modes_match_the_session() -> None:
    assert tuple(APPROVAL_HELP) == APPROVAL_MODES


async def test_number_key_shows_the_pane_with_the_task_line_focused(agent_app) -> None:  # type: ignore[no-untyped-def]
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot)
        assert main(app).query_one(TabbedContent).active == "agent"
        assert isinstance(app.focused, TaskInput)
        shown = screen_text(app)
        assert "approval never" in shown
        assert "Type a task below" in shown
        assert "idle" in shown
        # Escape leaves the task line, so the number keys switch panes again.
        await pilot.press("escape", "2")
        await settle(pilot)
        assert main(app).query_one(TabbedContent).active == "files"
        assert isinstance(app.focused, EntryList)
        assert pane.meter.status == "idle"


async def test_never_shows_route_reason_plan_and_final(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply({**PLAN, "goal": HOSTILE}))
    before = hello(workspace)
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot)
        await run_to_end(pilot, TASK)
        text = log_text(app)
        assert f"» {TASK}" in text
        assert "route  single: builder" in text
        assert "why: a short task with no test or refactor cue" in text
        assert "> builder (round 1)" in text
        # The streamed reply, markup and escapes shown literally.
        assert '"goal": "[red]hi[/red] \\u001b[31m"' in text
        assert "plan p1 from the builder, 1 step: [red]hi[/red] \\x1b[31m" in text
        assert "plan p1 shown: " in text
        assert "done: builder: " in text
        shown = screen_text(app)
        assert "route  single: builder  (heuristic router)" in shown
        assert "why    a short task with no test or refactor cue" in shown
        assert pane.meter.status == "done"
        assert not pane.running
    assert hello(workspace) == before


async def test_ask_opens_the_diff_and_approve_applies(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply(PLAN))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot, "ask")
        await run_to_end(pilot, TASK)
        assert isinstance(app.screen, ApprovalScreen)
        shown = screen_text(app)
        assert "Plan p1 from the builder, 1 step, waits for your approval" in shown
        assert "patch src/pkg/hello.py" in shown
        assert '-    return f"hello {name}"' in shown
        assert '+    return f"HELLO {name}"' in shown
        assert pane.meter.status == "waiting for approval"
        assert app.focused is app.screen.query_one("#approval-preview")
        assert 'f"hello {name}"' in hello(workspace)
        await pilot.press("a")
        await settle(pilot)
        assert not isinstance(app.screen, ApprovalScreen)
        assert 'f"HELLO {name}"' in hello(workspace)
        text = log_text(app)
        assert "you approved plan p1" in text
        assert "applied 1 step as journal" in text
        assert "done: builder: greet loudly" in text
        assert pane.meter.status == "done"
        hint = pane.transcript.undo_hint
        assert "undo the last plan with: u in the Files pane, or routeshell" in text
    # The hint names the workspace, so it works when pasted from any directory.
    command = shlex.split(hint.split(" or ", 1)[1])
    assert command[:1] == ["routeshell"]
    result = run_routeshell(*command[1:], cwd=Path("/"))
    assert result.returncode == 0, result.stderr
    assert 'f"hello {name}"' in hello(workspace)


async def test_approve_keeps_an_edit_made_while_it_was_asked(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply(PLAN))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot, "ask")
        await run_to_end(pilot, TASK)
        assert isinstance(app.screen, ApprovalScreen)
        edited = hello(workspace) + "# USER EDIT\n"
        (workspace / "src" / "pkg" / "hello.py").write_text(edited)
        await pilot.press("a")
        await settle(pilot)
        text = log_text(app)
        assert "'src/pkg/hello.py' was changed since the preview; nothing was applied" in text
        assert pane.meter.status == "failed"
    assert hello(workspace) == edited


async def test_reject_with_a_reason_changes_nothing(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply(PLAN))
    before = hello(workspace)
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot, "ask")
        await run_to_end(pilot, TASK)
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.press("r", *"too loud", "enter")
        await settle(pilot)
        text = log_text(app)
        assert "you rejected plan p1: too loud" in text
        assert "failed: the builder's plan was rejected: too loud" in text
        assert pane.meter.status == "failed"
    assert hello(workspace) == before


async def test_later_keeps_the_plan_waiting_until_reviewed(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply(PLAN))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot, "ask")
        await run_to_end(pilot, TASK)
        # Escape in the reason line goes back to the dialog; Escape again closes it.
        await pilot.press("r", "escape")
        await settle(pilot)
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ApprovalScreen)
        assert "plan p1 still waits: ctrl+o reopens it" in log_text(app)
        await submit(pilot, "another task")
        await settle(pilot)
        assert pane.meter.status == "waiting for approval"
        assert main(app).query_one(TaskInput).value == "another task"
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.press("a")
        await settle(pilot)
        assert 'f"HELLO {name}"' in hello(workspace)


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Install an executable $EDITOR script running the given Python code on the file it is given."""

    def install(code: str) -> None:
        script = tmp_path / "editor"
        header = "#!/usr/bin/env python3\nimport json, sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n"
        script.write_text(f"{header}{code}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("EDITOR", str(script))
        monkeypatch.delenv("VISUAL", raising=False)

    return install


async def test_edit_applies_the_edited_plan(agent_app, scripted_llm, workspace, editor) -> None:  # type: ignore[no-untyped-def]
    editor(
        "plan = json.loads(path.read_text())\n"
        "plan['steps'][0]['replace'] = 'f\"edited {name}\"'\n"
        "path.write_text(json.dumps(plan))"
    )
    scripted_llm.enqueue(Reply(PLAN))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_agent(pilot, "ask")
        await run_to_end(pilot, TASK)
        await pilot.press("e")
        await settle(pilot)
        assert not isinstance(app.screen, ApprovalScreen)
        assert 'f"edited {name}"' in hello(workspace)
        assert "you edited and approved plan p1" in log_text(app)


async def test_edit_to_invalid_json_stays_in_the_dialog(agent_app, scripted_llm, workspace, editor) -> None:  # type: ignore[no-untyped-def]
    editor("path.write_text('{not json')")
    scripted_llm.enqueue(Reply(PLAN))
    before = hello(workspace)
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_agent(pilot, "ask")
        await run_to_end(pilot, TASK)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ApprovalScreen)
        assert any("not valid JSON" in str(n.message) for n in app._notifications)
        # JSON that Python will not read (a number too long, nesting too deep) is not JSON to it either.
        for text, why in (("'{\"n\": 1' + '0' * 4300 + '}'", "a number of more than 4300 digits"),
                          ("'[' * 100_000", "nested too deeply")):  # fmt: skip
            editor(f"path.write_text({text})")
            await pilot.press("e")
            await settle(pilot)
            assert isinstance(app.screen, ApprovalScreen)
            assert any(f"not valid JSON ({why})" in str(n.message) for n in app._notifications)
        # A plan that parses but would fail (patching text that is not there) is refused too.
        editor(
            "plan = json.loads(path.read_text())\n"
            "plan['steps'][0]['find'] = 'not in the file'\n"
            "path.write_text(json.dumps(plan))"
        )
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ApprovalScreen)
        assert any("The edited plan is not valid" in str(n.message) for n in app._notifications)
        assert hello(workspace) == before
        await pilot.press("r", "enter")
        await settle(pilot)
        assert "failed: the builder's plan was rejected" in log_text(app)
    assert hello(workspace) == before


async def test_history_is_recalled_and_kept(agent_app, scripted_llm, state_home) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply(PLAN), Reply(PLAN))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_agent(pilot)
        await run_to_end(pilot, "first task")
        await run_to_end(pilot, "second task")
        field = main(app).query_one(TaskInput)
        field.value = "half typed"
        await pilot.press("up")
        assert field.value == "second task"
        await pilot.press("up")
        assert field.value == "first task"
        await pilot.press("down", "down")
        assert field.value == "half typed"
    saved = history_path().read_text().splitlines()
    assert history_path() == state_home / "routeshell" / "history"
    assert [json.loads(line) for line in saved] == ["first task", "second task"]
    # A new shell starts with the saved history.
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_agent(pilot)
        await pilot.press("up")
        assert main(app).query_one(TaskInput).value == "second task"


async def test_meter_shows_tokens_estimated_or_not(agent_app, scripted_llm) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.enqueue(Reply(PLAN, usage={"prompt_tokens": 1200, "completion_tokens": 34, "total_tokens": 1234}))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot)
        await run_to_end(pilot, TASK)
        assert pane.meter.tokens == 1234
        assert not pane.meter.estimated
        assert pane.meter.elapsed is not None
        assert "tokens 1,234" in screen_text(app)
        # A server that reports no usage: the client estimates, and the meter says so.
        scripted_llm.enqueue(Reply(PLAN, usage=None))
        await run_to_end(pilot, TASK)
        assert pane.meter.estimated
        assert pane.meter.tokens > 0
        assert "(estimated)" in screen_text(app)


def palette_offers(app: RouteshellApp, command: str) -> bool:
    """True when the command palette's highlighted option is ``command``."""
    options = app.screen.query_one(CommandList)
    index = options.highlighted
    return index is not None and command in str(options.get_option_at_index(index).prompt)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def test_endpoint_error_is_one_line_and_the_pane_goes_on(workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLM_API_BASE", closed_port_url())
    app = RouteshellApp(workspace, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot)
        await run_to_end(pilot, TASK)
        text = log_text(app)
        errors = [line for line in text.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, text
        assert "unreachable" in errors[0] or "connect" in errors[0], errors[0]
        assert "Traceback" not in text
        assert pane.meter.status == "failed"
        assert not pane.running
        assert isinstance(app.focused, TaskInput)
        # The pane takes the next task.
        await run_to_end(pilot, "again")
        assert log_text(app).count("error: ") == 2


async def test_ui_stays_responsive_while_the_model_is_held(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    scripted_llm.enqueue(Hold(release, then=Reply(PLAN)))
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot)
        await submit(pilot, TASK)
        await wait_until(pilot, lambda: "> builder (round 1)" in log_text(app), "the builder to start")
        assert pane.running
        assert pane.meter.status == "running"
        # Enter again is refused while the run goes on.
        await submit(pilot, "a second task")
        await pilot.pause()
        assert any("A task is running" in str(n.message) for n in app._notifications)
        # Switch panes, use the Files pane, come back: all while the model has not answered.
        await pilot.press("escape", "2")
        await pilot.pause()
        assert main(app).query_one(TabbedContent).active == "files"
        await pilot.press("full_stop")
        await wait_until(
            pilot, lambda: ".hidden" in [e.name for e in main(app).query_one(EntryList).entries], "the hidden files"
        )
        await pilot.press("1")
        await pilot.pause()
        assert main(app).query_one(TabbedContent).active == "agent"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert pane.approval == "all"
        assert pane.running
        release.set()
        await settle(pilot)
        assert not pane.running
        assert "done: builder: " in log_text(app)


async def test_stop_ends_the_run_after_the_step_in_progress(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    scripted_llm.enqueue(Hold(release, then=Reply(PLAN)))
    before = hello(workspace)
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot, "all")
        await submit(pilot, TASK)
        await wait_until(pilot, lambda: "> builder (round 1)" in log_text(app), "the builder to start")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert pane.meter.status == "stopping"
        release.set()
        await settle(pilot)
        text = log_text(app)
        assert "stopped: nothing after the step in progress ran" in text
        assert "applied" not in text
        assert pane.meter.status == "stopped"
        assert not pane.running
        # Approval "all" would have applied the plan: the stop came first.
        assert hello(workspace) == before
        # ctrl+r continues the same thread from its last completed step, and finishes it.
        scripted_llm.enqueue(Reply(PLAN))
        await pilot.press("ctrl+r")
        await settle(pilot)
        text = log_text(app)
        assert "continuing thread" in text
        assert "done: builder: " in text, text
        assert pane.meter.status == "done"
    assert hello(workspace) != before


async def test_palette_and_ctrl_t_switch_the_approval_mode(agent_app) -> None:  # type: ignore[no-untyped-def]
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot)
        await pilot.press("ctrl+p", *"approval auto")
        await wait_until(pilot, lambda: palette_offers(app, "Agent: approval auto"), "the palette to offer it")
        await pilot.press("enter")
        await settle(pilot)
        assert pane.approval == "auto"
        assert "approval auto" in screen_text(app)
        for expected in ("never", "all", "ask", "auto"):
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert pane.approval == expected


def test_meter_shows_no_clock_when_idle() -> None:
    meter = UsageMeter()
    assert "tokens 0" in str(meter.render())
    assert " s" not in str(meter.render())


def test_history_path_follows_xdg(tmp_path: Path) -> None:
    home = str(tmp_path)
    assert history_path({"HOME": home}) == tmp_path / ".local" / "state" / "routeshell" / "history"
    assert history_path({"HOME": home, "XDG_STATE_HOME": "relative"}) == (
        tmp_path / ".local" / "state" / "routeshell" / "history"
    )
    assert history_path({"HOME": home, "XDG_STATE_HOME": "/x/state"}) == Path("/x/state/routeshell/history")


async def test_stop_pressed_while_the_session_opens_runs_nothing(agent_app, scripted_llm, workspace) -> None:  # type: ignore[no-untyped-def]
    """The first task opens the session in the worker; a stop pressed meanwhile still stops the run.

    Another process holding the session database keeps the session opening until it lets go.
    """
    scripted_llm.enqueue(Reply(PLAN))
    before = hello(workspace)
    (workspace / ".routeshell").mkdir()
    holder = sqlite3.connect(workspace / ".routeshell" / "sessions.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    app = agent_app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            pane = await open_agent(pilot, "all")
            await submit(pilot, TASK)
            await pilot.pause()
            assert pane.running
            await pilot.press("ctrl+s")
            assert pane.meter.status == "stopping"
            holder.execute("COMMIT")
            await wait_until(pilot, lambda: not pane.running, "the run to end")
            await settle(pilot)
            assert pane.meter.status == "stopped", log_text(app)
            assert "stopped: nothing after the step in progress ran" in log_text(app)
    finally:
        holder.close()
    # Approval "all" would have applied the plan: nothing ran, not even a model call.
    assert hello(workspace) == before
    assert not [r for r in scripted_llm.requests if r["_path"].endswith("/chat/completions")]


async def test_a_session_database_linked_out_of_the_workspace_is_refused(agent_app, workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / ".routeshell").mkdir()
    (workspace / ".routeshell" / "sessions.sqlite").symlink_to(outside / "victim.sqlite")
    app = agent_app()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_agent(pilot, "all")
        await run_to_end(pilot, TASK)
        text = log_text(app)
        assert text.count("error: ") == 1, text
        # (the transcript wraps the long line wherever its path puts it: compared without spaces)
        needle = "sessions.sqlite is not a regular file (a symlink); move it aside"
        assert "".join(needle.split()) in "".join(text.split())
        assert "Traceback" not in text
        assert not pane.running
    assert list(outside.iterdir()) == []
