"""``routeshell run`` across interruptions: approval modes and resume, a run killed half-way, Ctrl-C during a run step.

Each test starts the installed ``routeshell`` script against a :class:`ScriptedLLM` on loopback, on a
small workspace, and checks what a user (or a script reading ``--json``) sees.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config.profiles import user_dir
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell, tree
from tests.run_cli.support import (
    BUILD,
    PYTHON,
    TEST_PASSES,
    WAIT_S,
    events,
    journals,
    of_type,
    paused_run,
    plan,
    roles_asked,
    run,
    wait_until,
)
from tests.scripted_llm import Hold, Reply, ScriptedLLM

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


def test_resume_with_reject_applies_nothing_from_that_plan(scripted_llm: ScriptedLLM, ws: Path) -> None:
    thread = paused_run(scripted_llm, ws)
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
    thread = paused_run(scripted_llm, ws)
    result = run(scripted_llm, ws, "--json", "--thread", thread, "--resume", "--answer", "reject", *approve)
    assert not (ws / "test_app.py").exists()
    assert result.returncode == 1, result


def test_resume_with_approve_all_applies_the_waiting_plan(scripted_llm: ScriptedLLM, ws: Path) -> None:
    thread = paused_run(scripted_llm, ws)
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


def test_a_plan_the_policy_has_confirmed_stops_with_a_hint_that_applies_it(scripted_llm: ScriptedLLM, ws: Path) -> None:
    profiles = user_dir()
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "ci-confirm.toml").write_text('extends = "ci"\n\n[policy]\nconfirm = ["delete"]\n')
    scripted_llm.enqueue(Reply(plan({"op": "delete", "path": "app.py"})))
    base = ("run", "--profile", "ci-confirm", "--base-url", scripted_llm.base_url, "--workspace", str(ws))
    result = run_routeshell(*base, "--topology", "single", "--approve", "all", "delete app.py")
    assert result.returncode == 1, result
    # --approve all would stop again: the plan takes an answer, and the hint gives it.
    hint = result.stderr.strip().split("waits for approval; ", 1)[1]
    assert hint.endswith("--resume --answer approve"), hint
    words = shlex.split(hint)
    assert words[0] == "routeshell"
    assert (ws / "app.py").exists()
    resumed = run_routeshell(*words[1:])
    assert resumed.returncode == 0, resumed
    assert not (ws / "app.py").exists()


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
    if sig in (signal.SIGINT, signal.SIGTERM):
        code, what = (130, "interrupted") if sig == signal.SIGINT else (143, "terminated")
        assert proc.returncode == code
        assert err.count("\n") == 1
        assert f"{what}; continue with: " in err
        final = events(out)[-1]
        assert (final["type"], final["interrupted"], final["exit_code"]) == ("final", True, code)
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


def test_the_hint_of_an_interrupted_run_keeps_what_it_may_apply(scripted_llm: ScriptedLLM, ws: Path) -> None:
    release = threading.Event()
    scripted_llm.enqueue(Hold(release, then=Reply(BUILD)))
    command = [ROUTESHELL, "run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws),
               "--approve", "never", "--min-probability", "0.25", "--topology", "single",
               "set VALUE to 2 in app.py"]  # fmt: skip
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: len(scripted_llm.requests) >= 1, proc, "the model to be asked")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    hint = shlex.split(err.strip().split("continue with: ", 1)[1])
    assert hint[hint.index("--approve") + 1] == "never"
    assert hint[hint.index("--min-probability") + 1] == "0.25"
    # Pasted, it finishes the run as it was asked to: the plan is shown, nothing applied.
    before = tree(ws)
    scripted_llm.enqueue(Reply(BUILD))
    resumed = run_routeshell(*hint[1:])
    assert resumed.returncode == 0, resumed
    assert tree(ws) == before
    assert journals(ws) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["kill", "ctrl-c", "term"])
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
