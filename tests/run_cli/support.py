"""What the ``routeshell run`` tests share: the plans a scripted model answers with, and running and reading it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.workspace.sandbox import STATE_DIR
from tests.helpers import run_routeshell
from tests.scripted_llm import Reply, ScriptedLLM

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


def paused_run(llm: ScriptedLLM, ws: Path) -> str:
    """Start a loop run under --approve auto that stops at the tester's plan; return its thread."""
    llm.enqueue(Reply(BUILD), Reply(TEST_PASSES))
    result = run(llm, ws, "--json", "--topology", "loop", "--approve", "auto", "set VALUE to 2")
    assert result.returncode == 1, result
    assert len(journals(ws)) == 1
    return str(events(result.stdout)[0]["thread"])
