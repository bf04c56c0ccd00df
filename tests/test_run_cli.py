"""``routeshell run`` as a user meets it: the real command in a subprocess against a scripted model.

Every test starts the installed ``routeshell`` script with ``--profile ci --base-url`` pointing at
the :class:`ScriptedLLM` in this process, on a small workspace, and checks what a user (or a
script reading ``--json``) sees: stdout, one-line errors on stderr, exit codes and files on disk.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.workspace.sandbox import STATE_DIR
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell, tree
from tests.scripted_llm import Hold, Reply, ScriptedLLM, Status

PYTHON = sys.executable
#: How long a test waits for the subprocess to reach a point; only a hung run gets near it.
WAIT_S = 60.0

HOSTILE = "[red]x[/red] \x1b[31mEVIL"


def plan(*steps: dict[str, Any], goal: str = "a test plan") -> dict[str, Any]:
    return {"version": 1, "goal": goal, "steps": list(steps)}


BUILD = plan({"op": "write", "path": "app.py", "content": "VALUE = 2\n", "overwrite": True}, goal="set VALUE to 2")
TEST_FILE = {
    "op": "write",
    "path": "test_app.py",
    "content": "import app\n\nassert app.VALUE == 2\n",
    "overwrite": True,
}
TEST_PASSES = plan(TEST_FILE, {"op": "run", "argv": [PYTHON, "test_app.py"]}, goal="check VALUE")
TEST_FAILS = plan(TEST_FILE, {"op": "run", "argv": [PYTHON, "-c", "import sys; sys.exit(1)"]}, goal="always fails")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A small workspace with one module the plans change."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("VALUE = 1\n")
    return root


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide transcript, so that no checked line is wrapped whatever terminal runs the tests."""
    monkeypatch.setenv("COLUMNS", "200")


def run(
    llm: ScriptedLLM | str, ws: Path, *args: str, stdin_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``routeshell run --profile ci --base-url URL --workspace WS ARGS...``."""
    url = llm if isinstance(llm, str) else llm.base_url
    base = ("run", "--profile", "ci", "--base-url", url, "--workspace", str(ws))
    return run_routeshell(*base, *args, stdin_text=stdin_text)


def events(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line as JSON; each must be an object with a ``type``."""
    found = []
    for line in stdout.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        assert isinstance(event.get("type"), str), line
        found.append(event)
    return found


def of_type(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in found if event["type"] == kind]


def journals(ws: Path) -> list[str]:
    directory = ws / STATE_DIR / "journal"
    return sorted(entry.name for entry in directory.iterdir()) if directory.is_dir() else []


def role_of(request: dict[str, Any]) -> str:
    """Which role a recorded chat request came from, read off its system prompt."""
    system = request["messages"][0]["content"]
    return next(
        role for role in ("planner", "builder", "tester", "refactor") if system.startswith(f"You are the {role}")
    )


def roles_asked(llm: ScriptedLLM) -> list[str]:
    return [role_of(request) for request in llm.requests]


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    """Poll ``condition`` until it holds; fail with the process's output if it exits or hangs first."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"routeshell exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"routeshell did not get to {what} within {WAIT_S:.0f} s")
        time.sleep(0.01)


def closed_port_url() -> str:
    """The URL of a loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- --json ---------------------------------------------------------------------------------------


def test_json_events_of_a_single_run(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    result = run(scripted_llm, ws, "--json", "--topology", "single", "--approve", "all", "set VALUE to 2 in app.py")
    assert result.returncode == 0, result
    found = events(result.stdout)
    kinds = [event["type"] for event in found]
    wanted = ["route", "role_start", "usage", "role_end", "plan", "applied", "reviewed", "final"]
    positions = [kinds.index(kind) for kind in wanted]
    assert positions == sorted(positions), kinds
    assert kinds[0] == "route"
    assert kinds[-1] == "final"
    route, final = found[0], found[-1]
    assert route["topology"] == "single"
    assert route["roles"] == ["builder"]
    (applied,) = of_type(found, "applied")
    assert final["ok"] is True
    assert "set VALUE to 2" in final["summary"]
    assert final["undo"] == applied["journal"]
    assert final["thread"] == route["thread"]
    assert journals(ws) == [applied["journal"]]
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    assert "app.py" in scripted_llm.requests[0]["messages"][1]["content"]
    assert scripted_llm.unexpected == 0


# -- the human transcript -------------------------------------------------------------------------


def test_transcript_shows_route_apply_and_done(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    hostile = plan(
        {"op": "write", "path": "app.py", "content": f"VALUE = 2  # {HOSTILE}\n", "overwrite": True}, goal=HOSTILE
    )
    scripted_llm.enqueue(Reply(hostile))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "set VALUE to 2 in app.py")
    assert result.returncode == 0, result
    out = result.stdout
    assert "route  single: builder" in out
    assert "applied 1 step" in out
    assert "as journal" in out
    assert "done: " in out
    assert "\x1b" not in out
    assert "[red]x[/red]" in out
    assert "\\x1b[31mEVIL" in out
    assert (ws / "app.py").read_text() == f"VALUE = 2  # {HOSTILE}\n"
    assert result.stderr == ""


def test_transcript_shows_a_hostile_diff_literally(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    # A plan with a run step waits for approval under --approve auto, and its diff is shown.
    hostile = plan(
        {"op": "write", "path": "notes.txt", "content": f"{HOSTILE}\n"},
        {"op": "run", "argv": [PYTHON, "-c", "pass"]},
        goal=HOSTILE,
    )
    scripted_llm.enqueue(Reply(hostile))
    before = tree(ws)
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "auto", "write the notes")
    assert result.returncode == 1, result
    out = result.stdout
    assert "waits for approval" in out
    assert "\x1b" not in out + result.stderr
    assert "+[red]x[/red] \\x1b[31mEVIL" in out
    assert tree(ws) == before


@pytest.mark.parametrize("diffs", [(), ("--show-diff",)], ids=["plain", "show-diff"])
def test_a_plan_waiting_for_approval_lists_its_steps_once(
    scripted_llm: ScriptedLLM, ws: Path, wide: None, diffs: tuple[str, ...]
) -> None:
    # Under --approve auto a plan with a run step waits: its approval shows the steps and diffs.
    waiting = plan({"op": "write", "path": "notes.txt", "content": "first note\n"},
                   {"op": "run", "argv": [PYTHON, "-c", "pass"]}, goal="write the notes")  # fmt: skip
    scripted_llm.enqueue(Reply(waiting))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "auto", *diffs, "write the notes")
    assert result.returncode == 1, result
    out = result.stdout
    assert out.count("plan p1 from the builder, 2 steps: write the notes\n") == 1
    assert out.count("waits for approval") == 1
    assert out.count("  - [1] write notes.txt\n") == 1
    assert out.count("  - [2] ") == 1
    assert out.count("+first note\n") == 1
    # The steps come after the line saying the plan waits, so they read as what is to be approved.
    assert out.index("waits for approval") < out.index("  - [1] write notes.txt")


def test_transcript_shows_a_streamed_reply_and_tabs_literally(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    # Raw escapes in the reply around the plan; escapes and a tab in the file the plan writes.
    hostile = plan(
        {"op": "write", "path": "notes.txt", "content": "\x1b[2J\x1b]0;pwned\x07\n\tindented\n"},
        {"op": "run", "argv": [PYTHON, "-c", "pass"]},
        goal=HOSTILE,
    )
    scripted_llm.enqueue(Reply(f"\x1b[2J\x1b]0;pwned\x07 {HOSTILE}:\n```json\n{json.dumps(hostile)}\n```\n"))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "auto", "--show-stream", "write the notes")
    assert result.returncode == 1, result
    out = result.stdout
    for raw in ("\x1b", "\x07", "\t"):
        assert raw not in out + result.stderr
    # The streamed text keeps its lines; its escapes and markup are shown as text.
    assert "\\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red] \\x1b[31mEVIL:\n```json\n" in out
    assert "+\\x1b[2J\\x1b]0;pwned\\x07\n" in out
    assert "+       indented\n" in out  # a tab goes to the next stop of 8, never "\\t"


# -- exit codes -----------------------------------------------------------------------------------


def test_tests_still_failing_after_the_last_round_is_exit_1(scripted_llm: ScriptedLLM, ws: Path) -> None:
    for _ in range(3):
        scripted_llm.enqueue(Reply(BUILD), Reply(TEST_FAILS))
    result = run(scripted_llm, ws, "--json", "--topology", "loop", "--approve", "all", "set VALUE to 2")
    assert result.returncode == 1, result
    found = events(result.stdout)
    assert found[0]["max_rounds"] == 3
    assert [event["passed"] for event in of_type(found, "test")] == [False, False, False]
    final = found[-1]
    assert final["type"] == "final"
    assert final["ok"] is False
    assert "still fail after 3 rounds" in final["summary"]
    assert roles_asked(scripted_llm) == ["builder", "tester"] * 3
    assert scripted_llm.unexpected == 0


def test_a_plan_waiting_for_approval_is_exit_1_and_says_how_to_resume(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD), Reply(TEST_PASSES))
    result = run(scripted_llm, ws, "--json", "--topology", "loop", "--approve", "auto", "set VALUE to 2")
    assert result.returncode == 1, result
    found = events(result.stdout)
    thread = found[0]["thread"]
    (approval,) = of_type(found, "approval")
    assert approval["role"] == "tester"
    assert approval["runs"] is True
    assert found[-1]["type"] == "final"
    assert found[-1]["paused"] is True
    # The builder's plan has no run step, so "auto" applied it; the tester's waits.
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    assert not (ws / "test_app.py").exists()
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("routeshell: stopped:")
    assert f"--thread {thread} --resume" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param((), "give a TASK", id="no-task"),
        pytest.param(("--resume",), "--resume needs --thread", id="resume-without-thread"),
        pytest.param(("--answer", "reject", "a task"), "--answer only goes with --resume", id="answer-without-resume"),
        pytest.param(("--topology", "star", "a task"), "invalid choice: 'star'", id="unknown-topology"),
        pytest.param(("--thread", "nope", "--resume"), "no thread 'nope'", id="unknown-thread"),
        pytest.param(("   ",), "the task is empty", id="empty-task"),
        pytest.param(("--max-cost-tokens", "0", "a task"), "--max-cost-tokens", id="zero-budget"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    scripted_llm: ScriptedLLM, ws: Path, args: tuple[str, ...], needle: str
) -> None:
    assert_one_line_error(run(scripted_llm, ws, *args), 2, needle)
    assert scripted_llm.requests == []


def test_empty_task_on_stdin_is_exit_2(scripted_llm: ScriptedLLM, ws: Path) -> None:
    assert_one_line_error(run(scripted_llm, ws, "-", stdin_text="\n  \n"), 2, "the task is empty")


def test_missing_workspace_is_exit_2(scripted_llm: ScriptedLLM, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    assert_one_line_error(run(scripted_llm, missing, "a task"), 2, str(missing), "is not a directory")
    assert not missing.exists()


def test_unreachable_endpoint_is_exit_3(ws: Path) -> None:
    url = closed_port_url()
    result = run(url, ws, "--topology", "single", "a task")
    assert_one_line_error(result, 3, f"LLM endpoint {url}", "unreachable")


def test_endpoint_answering_500_is_exit_3(scripted_llm: ScriptedLLM, ws: Path) -> None:
    # The ci profile tries twice; an empty script answers 500 too, so more retries would see the same.
    scripted_llm.enqueue(Status(500), Status(500))
    result = run(scripted_llm, ws, "--topology", "single", "a task")
    assert_one_line_error(result, 3, f"LLM endpoint {scripted_llm.base_url}", "HTTP 500")
    assert (ws / "app.py").read_text() == "VALUE = 1\n"


def test_endpoint_error_in_json_mode_ends_with_a_final_event(scripted_llm: ScriptedLLM, ws: Path) -> None:
    url = closed_port_url()
    result = run(url, ws, "--json", "--topology", "single", "a task")
    assert_one_line_error(result, 3, f"LLM endpoint {url}")
    found = events(result.stdout)
    assert found[-1]["type"] == "final"
    assert found[-1]["ok"] is False
    assert found[-1]["exit_code"] == 3


# -- input and approval modes ----------------------------------------------------------------------


def test_task_read_from_stdin(scripted_llm: ScriptedLLM, ws: Path) -> None:
    task = "make VALUE in app.py equal to two — ünïcode welcome"
    scripted_llm.enqueue(Reply(BUILD))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "-", stdin_text=task + "\n")
    assert result.returncode == 0, result
    (request,) = scripted_llm.requests
    assert f"Task: {task}" in request["messages"][1]["content"]


def test_approve_never_shows_plans_and_changes_nothing(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    before = tree(ws)
    result = run(scripted_llm, ws, "--json", "--topology", "single", "--approve", "never", "set VALUE to 2")
    assert result.returncode == 0, result
    found = events(result.stdout)
    (shown,) = of_type(found, "plan")
    assert shown["plan"]["steps"][0]["content"] == "VALUE = 2\n"
    assert [event["status"] for event in of_type(found, "reviewed")] == ["shown"]
    assert of_type(found, "applied") == []
    assert found[-1]["undo"] is None
    assert tree(ws) == before
    assert journals(ws) == []


def _paused_run(llm: ScriptedLLM, ws: Path) -> str:
    """Start a loop run under --approve auto that stops at the tester's plan; return its thread."""
    llm.enqueue(Reply(BUILD), Reply(TEST_PASSES))
    result = run(llm, ws, "--json", "--topology", "loop", "--approve", "auto", "set VALUE to 2")
    assert result.returncode == 1, result
    assert len(journals(ws)) == 1
    return str(events(result.stdout)[0]["thread"])


def test_resume_with_reject_applies_nothing_from_that_plan(scripted_llm: ScriptedLLM, ws: Path) -> None:
    thread = _paused_run(scripted_llm, ws)
    args = ("--json", "--thread", thread, "--resume", "--answer", "reject", "--approve", "auto")
    result = run(scripted_llm, ws, *args)
    assert result.returncode == 1, result
    found = events(result.stdout)
    assert [(event["role"], event["status"]) for event in of_type(found, "reviewed")] == [("tester", "rejected")]
    assert found[-1]["type"] == "final"
    assert found[-1]["ok"] is False
    assert "rejected" in found[-1]["summary"]
    assert not (ws / "test_app.py").exists()
    assert len(journals(ws)) == 1
    assert roles_asked(scripted_llm) == ["builder", "tester"]
    # A finished thread cannot be resumed again.
    assert_one_line_error(run(scripted_llm, ws, "--thread", thread, "--resume"), 2, "already finished")


@pytest.mark.parametrize("approve", [(), ("--approve", "all")], ids=["profile-approval", "approve-all"])
def test_an_explicit_reject_is_never_overridden_by_the_approval_mode(
    scripted_llm: ScriptedLLM, ws: Path, approve: tuple[str, ...]
) -> None:
    thread = _paused_run(scripted_llm, ws)
    result = run(scripted_llm, ws, "--json", "--thread", thread, "--resume", "--answer", "reject", *approve)
    assert not (ws / "test_app.py").exists()
    assert result.returncode == 1, result


def test_resume_with_approve_all_applies_the_waiting_plan(scripted_llm: ScriptedLLM, ws: Path) -> None:
    thread = _paused_run(scripted_llm, ws)
    result = run(scripted_llm, ws, "--json", "--thread", thread, "--resume", "--approve", "all")
    assert result.returncode == 0, result
    found = events(result.stdout)
    assert [(event["role"], event["status"]) for event in of_type(found, "reviewed")] == [("tester", "applied")]
    assert [event["passed"] for event in of_type(found, "test")] == [True]
    final = found[-1]
    assert final["ok"] is True
    assert final["thread"] == thread
    assert (ws / "test_app.py").exists()
    assert len(journals(ws)) == 2
    assert final["journals"] == journals(ws)
    assert roles_asked(scripted_llm) == ["builder", "tester"]


# -- a run killed half-way, then resumed ----------------------------------------------------------


def _start_and_kill(
    llm: ScriptedLLM,
    ws: Path,
    topology: str,
    requests_before_kill: int,
    sig: int = signal.SIGKILL,
    until: Callable[[], bool] | None = None,
) -> str:
    """Start a --json --approve all run, send it ``sig`` once the model got that many requests; return its thread."""
    command = [ROUTESHELL, "run", "--profile", "ci", "--base-url", llm.base_url, "--workspace", str(ws),
               "--json", "--approve", "all", "--topology", topology, "set VALUE to 2 in app.py"]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        wait_until(until or (lambda: len(llm.requests) >= requests_before_kill), proc, "the moment to kill")
        proc.send_signal(sig)
        # The held reply is still held: a Ctrl-C must not wait for the model to answer.
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert err.count("\n") == 1
        assert "interrupted; continue with: " in err
        final = events(out)[-1]
        assert (final["type"], final["interrupted"], final["exit_code"]) == ("final", True, 130)
        return str(final["thread"])
    assert proc.returncode == -signal.SIGKILL
    # Every line the killed run finished writing is an event; the first says the thread.
    complete = [line for line in out.splitlines(keepends=True) if line.endswith("\n")]
    return str(events("".join(complete))[0]["thread"])


def test_resume_after_kill_during_the_tester_does_not_apply_the_builder_plan_again(
    scripted_llm: ScriptedLLM, ws: Path
) -> None:
    release = threading.Event()
    scripted_llm.enqueue(Reply(BUILD), Hold(release, then=Reply(TEST_PASSES)))
    try:
        thread = _start_and_kill(scripted_llm, ws, "loop", requests_before_kill=2)
    finally:
        release.set()  # the held answer goes to a dead connection
    assert roles_asked(scripted_llm) == ["builder", "tester"]
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    assert len(journals(ws)) == 1
    assert not (ws / "test_app.py").exists()

    scripted_llm.enqueue(Reply(TEST_PASSES))
    result = run(scripted_llm, ws, "--thread", thread, "--resume", "--approve", "all", "--json")
    assert result.returncode == 0, result
    found = events(result.stdout)
    assert of_type(found, "route") == []
    assert [event["role"] for event in of_type(found, "role_start")] == ["tester"]
    final = found[-1]
    assert final["type"] == "final"
    assert final["ok"] is True
    assert final["thread"] == thread
    assert len(journals(ws)) == 2
    assert final["journals"] == journals(ws)
    assert roles_asked(scripted_llm) == ["builder", "tester", "tester"]
    assert (ws / "test_app.py").exists()
    assert scripted_llm.unexpected == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_resume_after_kill_during_the_builder_asks_it_again_and_applies_once(
    scripted_llm: ScriptedLLM, ws: Path, sig: int
) -> None:
    release = threading.Event()
    scripted_llm.enqueue(Hold(release, then=Reply(BUILD)))
    try:
        thread = _start_and_kill(scripted_llm, ws, "single", requests_before_kill=1, sig=sig)
    finally:
        release.set()
    assert (ws / "app.py").read_text() == "VALUE = 1\n"
    assert journals(ws) == []

    scripted_llm.enqueue(Reply(BUILD))
    result = run(scripted_llm, ws, "--thread", thread, "--resume", "--approve", "all", "--json")
    assert result.returncode == 0, result
    final = events(result.stdout)[-1]
    assert final["type"] == "final"
    assert final["ok"] is True
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    assert len(journals(ws)) == 1
    assert final["journals"] == journals(ws)
    assert roles_asked(scripted_llm) == ["builder", "builder"]


def test_a_kill_in_the_middle_of_an_apply_is_rolled_back_and_the_resume_applies_once(
    scripted_llm: ScriptedLLM, ws: Path, tmp_path: Path
) -> None:
    # The plan's run step waits while the marker exists: the kill lands after its write step.
    marker = tmp_path / "hold-the-run-step"
    marker.write_text("")
    wait = f"import os, time\nwhile os.path.exists({str(marker)!r}): time.sleep(0.05)\n"
    build = plan({"op": "write", "path": "app.py", "content": "VALUE = 2\n", "overwrite": True},
                 {"op": "run", "argv": [PYTHON, "-c", wait]}, goal="set VALUE to 2, then run")  # fmt: skip
    scripted_llm.enqueue(Reply(build))
    half_applied = lambda: (ws / "app.py").read_text() == "VALUE = 2\n"  # noqa: E731
    thread = _start_and_kill(scripted_llm, ws, "single", requests_before_kill=1, until=half_applied)
    assert len(journals(ws)) == 1
    marker.unlink()

    result = run(scripted_llm, ws, "--thread", thread, "--resume", "--approve", "all", "--json")
    assert result.returncode == 0, result
    final = events(result.stdout)[-1]
    assert (final["type"], final["ok"]) == ("final", True)
    # The builder was not asked again; its plan was rolled back from the journal and applied once.
    assert roles_asked(scripted_llm) == ["builder"]
    states = [(ws / ".routeshell" / "journal" / name / "state").read_text() for name in journals(ws)]
    assert states == ["rolled-back", "applied"]
    assert final["journals"] == journals(ws)[1:]
    assert (ws / "app.py").read_text() == "VALUE = 2\n"


# -- keys, budget, help ---------------------------------------------------------------------------


def test_missing_api_key_is_exit_2_and_names_the_variable(ws: Path) -> None:
    result = run_routeshell("run", "--profile", "openai", "--workspace", str(ws), "a task")
    assert_one_line_error(result, 2, "OPENAI_API_KEY", "is not set")


def test_token_budget_is_exit_1(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "--max-cost-tokens", "10", "a task")
    assert_one_line_error(result, 1, "15 tokens", "--max-cost-tokens budget of 10")
    assert (ws / "app.py").read_text() == "VALUE = 1\n"
    assert journals(ws) == []


def test_help_names_every_flag_and_exit_code() -> None:
    result = run_routeshell("run", "--help")
    assert result.returncode == 0
    flags = ("--workspace", "--profile", "--base-url", "--model", "--topology", "--approve", "--json", "--thread",
             "--resume", "--answer", "--max-cost-tokens", "--show-stream", "--show-diff", "--yes")  # fmt: skip
    for flag in flags:
        assert flag in result.stdout, flag
    for choice in ("auto", "never", "all", "single", "pipeline", "loop"):
        assert choice in result.stdout, choice
    codes = result.stdout.split("exit codes:", 1)[1]
    for code in ("0", "1", "2", "3"):
        assert f"\n  {code}  " in codes, code


def test_sessions_lists_each_thread_with_its_status(scripted_llm: ScriptedLLM, ws: Path) -> None:
    assert run_routeshell("--profile", "ci", "sessions", "--workspace", str(ws)).stdout.startswith("no sessions in ")
    paused = _paused_run(scripted_llm, ws)
    scripted_llm.enqueue(Reply(BUILD))
    finished = run(scripted_llm, ws, "--json", "--approve", "all", "--thread", "second", "[red]set[/red] VALUE")
    assert finished.returncode == 0, finished
    result = run_routeshell("--profile", "ci", "sessions", "--workspace", str(ws), "--json")
    assert result.returncode == 0, result
    rows = {row["thread"]: row for row in events(result.stdout)}
    assert rows[paused]["status"] == "waiting for approval"
    assert rows[paused]["ok"] is None
    assert (rows["second"]["status"], rows["second"]["ok"], rows["second"]["task"]) == (
        "done",
        True,
        "[red]set[/red] VALUE",
    )
    assert [row["thread"] for row in events(result.stdout)] == ["second", paused]  # newest first
    text = run_routeshell("--profile", "ci", "sessions", "--workspace", str(ws)).stdout
    assert "[red]set[/red] VALUE" in text
    assert "waiting for approval" in text


# -- input that is not UTF-8 ----------------------------------------------------------------------


def test_a_task_argument_that_is_not_utf8_is_one_line_and_exit_2(scripted_llm: ScriptedLLM, ws: Path) -> None:
    argv = [ROUTESHELL, "run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws)]
    result = subprocess.run([*argv, b"caf\xe9"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert_one_line_error(result, 2, "the task is not UTF-8 text", "0xe9")
    assert scripted_llm.requests == []


def test_a_task_on_stdin_that_is_not_utf8_is_one_line_and_exit_2(scripted_llm: ScriptedLLM, ws: Path) -> None:
    argv = [ROUTESHELL, "run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws), "-"]
    # Whatever the locale: under C/POSIX, Python would otherwise smuggle the byte through as a surrogate.
    for lang in ("C.UTF-8", "C"):
        env = {**os.environ, "LC_ALL": lang}
        raw = subprocess.run(argv, input=b"fix \xff it\n", capture_output=True, env=env, check=False)
        result = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
        assert_one_line_error(result, 2, "the task on standard input is not UTF-8 text", "0xff")
    assert scripted_llm.requests == []


# -- what a plan contains -------------------------------------------------------------------------

HOSTILE_PLAN = plan(
    {"op": "write", "path": "app.py", "content": "VALUE = 2\n", "overwrite": True},
    {"op": "write", "path": "notes\x1b[2J.txt", "content": f"{HOSTILE}\n"},
    goal="two writes",
)


def test_a_plan_shown_but_not_applied_lists_its_steps(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    scripted_llm.enqueue(Reply(HOSTILE_PLAN))
    # The ci profile only shows plans (approval "never").
    result = run(scripted_llm, ws, "--topology", "single", "set VALUE to 2")
    assert result.returncode == 0, result
    out = result.stdout
    assert "  - [1] write app.py\n" in out
    assert "  - [2] write notes\\x1b[2J.txt\n" in out
    assert "\x1b" not in out
    assert "+VALUE = 2" not in out  # diffs only with --show-diff


def test_show_diff_adds_the_diffs_of_an_applied_plan(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    scripted_llm.enqueue(Reply(HOSTILE_PLAN))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "--show-diff", "set VALUE to 2")
    assert result.returncode == 0, result
    out = result.stdout
    assert "  - [1] write app.py\n" in out
    assert "-VALUE = 1" in out
    assert "+VALUE = 2" in out
    assert "+[red]x[/red] \\x1b[31mEVIL" in out
    assert "\x1b" not in out


def test_json_plan_event_holds_the_steps_whatever_the_approval(scripted_llm: ScriptedLLM, ws: Path) -> None:
    for approve in ("never", "all"):
        scripted_llm.enqueue(Reply(HOSTILE_PLAN))
        result = run(scripted_llm, ws, "--json", "--topology", "single", "--approve", approve, "set VALUE to 2")
        assert result.returncode == 0, result
        (shown,) = of_type(events(result.stdout), "plan")
        assert [step["path"] for step in shown["plan"]["steps"]] == ["app.py", "notes\x1b[2J.txt"]


# -- hints work when pasted -----------------------------------------------------------------------


def paste(hint: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed ``routeshell ...`` line as a shell would, from ``cwd``."""
    words = shlex.split(hint)
    assert words[0] == "routeshell", hint
    return subprocess.run([ROUTESHELL, *words[1:]], cwd=cwd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip


@pytest.fixture
def spaced(tmp_path: Path) -> Path:
    """A workspace whose path needs quoting, and nothing in the directory the hints are pasted in."""
    root = tmp_path / "my 'work' space"
    root.mkdir()
    (root / "app.py").write_text("VALUE = 1\n")
    (tmp_path / "elsewhere").mkdir()
    return root


def test_the_undo_hint_works_when_pasted(scripted_llm: ScriptedLLM, spaced: Path, wide: None) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    result = run(scripted_llm, spaced, "--topology", "single", "--approve", "all", "set VALUE to 2")
    assert result.returncode == 0, result
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("undo the last plan with: ")]
    hint = line.removeprefix("undo the last plan with: ").rsplit("  (journal ", 1)[0]
    elsewhere = spaced.parent / "elsewhere"
    undone = paste(hint, elsewhere)
    assert undone.returncode == 0, undone
    assert (spaced / "app.py").read_text() == "VALUE = 1\n"
    assert list(elsewhere.iterdir()) == []


def test_the_resume_hint_works_when_pasted(scripted_llm: ScriptedLLM, spaced: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD), Reply(TEST_PASSES))
    result = run(scripted_llm, spaced, "--topology", "loop", "--approve", "auto", "set VALUE to 2")
    assert result.returncode == 1, result
    hint = result.stderr.strip().split("waits for approval; ", 1)[1]
    elsewhere = spaced.parent / "elsewhere"
    resumed = paste(hint, elsewhere)
    assert resumed.returncode == 0, resumed
    assert (spaced / "test_app.py").exists()
    assert list(elsewhere.iterdir()) == []


# -- Ctrl-C during a run step ---------------------------------------------------------------------


def test_ctrl_c_during_a_run_step_kills_what_it_started(
    scripted_llm: ScriptedLLM, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without bubblewrap on PATH: the step is a plain process tree, as where bwrap is missing.
    monkeypatch.setenv("PATH", str(Path(ROUTESHELL).parent))
    writer = "import os, time\nwhile True:\n    open('late.txt', 'a').write('x')\n    time.sleep(0.01)\n"
    step = (
        "import subprocess, sys, time\n"
        f"w = subprocess.Popen([sys.executable, '-c', {writer!r}], start_new_session=True)\n"
        "open('writer.pid', 'w').write(str(w.pid))\n"
        "time.sleep(600)\n"
    )
    build = plan({"op": "write", "path": "app.py", "content": "VALUE = 2\n", "overwrite": True},
                 {"op": "run", "argv": [PYTHON, "-c", step], "timeout_s": 600}, goal="leave a writer")  # fmt: skip
    scripted_llm.enqueue(Reply(build))
    started = lambda: (ws / "late.txt").exists() and (ws / "writer.pid").exists()  # noqa: E731
    _start_and_kill(scripted_llm, ws, "single", requests_before_kill=1, sig=signal.SIGINT, until=started)
    pid = int((ws / "writer.pid").read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"
    written = (ws / "late.txt").stat().st_size
    time.sleep(0.3)  # it wrote every 10 ms while it lived
    assert (ws / "late.txt").stat().st_size == written
