"""``routeshell --plain`` in a real pseudo-terminal (pexpect) and on a pipe, against the scripted LLM."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from engine.errors import UsageError
from tests.helpers import ROUTESHELL
from tests.scripted_llm import Hold, Reply, ScriptedLLM
from tui.sizes import MAX_TASK_BYTES

TASK = "write hi please"
HELLO = {"version": 1, "goal": "greet", "steps": [{"op": "write", "path": "hi.txt", "content": "hello\n"}]}
TIMEOUT_S = 10


def plain_env(base_url: str, term: str = "xterm", **extra: str) -> dict[str, str]:
    """The test's (isolated) environment for a --plain child talking to ``base_url``."""
    # Nothing in a pexpect terminal answers prompt_toolkit's cursor-position queries.
    return dict(os.environ, LLM_API_BASE=base_url, TERM=term, PROMPT_TOOLKIT_NO_CPR="1", **extra)


@pytest.fixture
def spawn(workspace: Path) -> Iterator[Callable[..., pexpect.spawn]]:
    """Start ``routeshell --plain --profile ci`` on the workspace in a pty; every child is ended at teardown."""
    children: list[pexpect.spawn] = []

    def start(base_url: str, term: str = "xterm", **extra: str) -> pexpect.spawn:
        child = pexpect.spawn(
            ROUTESHELL,
            ["--plain", "--profile", "ci", "--workspace", str(workspace)],
            env=plain_env(base_url, term, **extra),
            encoding="utf-8",
            timeout=TIMEOUT_S,
            dimensions=(40, 200),
        )
        children.append(child)
        child.expect_exact("type a task, or /help")
        return child

    yield start
    for child in children:
        child.close(force=True)


def quit_cleanly(child: pexpect.spawn) -> None:
    """Leave with /quit; the shell must end with exit code 0."""
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def ask_for_approval(child: pexpect.spawn) -> None:
    """Set /approve ask, give the task, and wait for the question under the plan's diff."""
    child.sendline("/approve ask")
    child.expect_exact("approval: ask")
    child.sendline(TASK)
    child.expect_exact("waits for approval")
    child.expect_exact("+hello")
    child.expect_exact("approve, edit, reject? [a/e/r]")


def test_approve_applies_the_plan_and_undo_restores(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    child = spawn(scripted_llm.base_url)
    ask_for_approval(child)
    assert not (workspace / "hi.txt").exists()
    child.sendline("a")
    child.expect_exact("done:")
    assert (workspace / "hi.txt").read_text() == "hello\n"
    child.sendline("/undo")
    child.expect(r"undid plan (\S+) \(1 step\(s\)\)")
    assert not (workspace / "hi.txt").exists()
    child.sendline("/history")
    child.expect_exact("undone")
    quit_cleanly(child)


def test_reject_with_a_reason_changes_nothing(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    child = spawn(scripted_llm.base_url)
    ask_for_approval(child)
    child.sendline("r")
    child.expect_exact("reason (optional):")
    child.sendline("not today")
    child.expect_exact("rejected: not today")
    child.expect_exact("failed:")
    assert not (workspace / "hi.txt").exists()
    quit_cleanly(child)


def test_an_edited_plan_that_python_cannot_read_is_one_line(editor) -> None:  # type: ignore[no-untyped-def]
    from tui.plain import edit_in_editor

    for code, why in (("path.write_text('{\"n\": 1' + '0' * 4300 + '}')", "a number of more than 4300 digits"),
                      ("path.write_text('[' * 100_000)", "nested too deeply")):  # fmt: skip
        editor(code)
        with pytest.raises(UsageError, match=rf"^the edited plan is not valid JSON \({why}\)$"):
            edit_in_editor({"version": 1, "steps": []})


def test_edit_applies_the_edited_plan(spawn, scripted_llm: ScriptedLLM, workspace: Path, tmp_path: Path) -> None:
    # The editor breaks the JSON the first time (the question must come back), then edits the content.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import json, pathlib, sys\n"
        "path, marker = pathlib.Path(sys.argv[1]), pathlib.Path(__file__).with_name('edited-once')\n"
        "if not marker.exists():\n"
        "    marker.write_text('')\n"
        "    path.write_text('{broken')\n"
        "    sys.exit(0)\n"
        "plan = json.loads(path.read_text())\n"
        "plan['steps'][0]['content'] = 'edited\\n'\n"
        "path.write_text(json.dumps(plan))\n"
    )
    scripted_llm.enqueue(Reply(HELLO))
    child = spawn(scripted_llm.base_url, EDITOR=f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}")
    ask_for_approval(child)
    child.sendline("e")
    child.expect_exact("not valid JSON")
    child.expect_exact("[a/e/r]")
    child.sendline("e")
    child.expect_exact("done:")
    assert (workspace / "hi.txt").read_text() == "edited\n"
    quit_cleanly(child)


def test_history_reaches_the_next_session(spawn, scripted_llm: ScriptedLLM, isolated_home: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    first = spawn(scripted_llm.base_url)
    first.sendline(TASK)
    first.expect_exact("done:")
    quit_cleanly(first)
    # The one task history, shared with the Agent pane: one JSON string a line.
    history = isolated_home / ".local" / "state" / "routeshell" / "history"
    assert json.dumps(TASK) in history.read_text().splitlines()

    scripted_llm.enqueue(Reply(HELLO))
    second = spawn(scripted_llm.base_url)
    second.expect_exact("routeshell>")  # the prompt is up: Ctrl-C is now a key, not a signal
    second.send("/nope")
    second.sendintr()  # Ctrl-C at the prompt only clears the line
    second.sendline("/stream")
    second.expect_exact("stream: off")
    second.send("\x1b[A" * 3)  # past /stream to the task (commands are not kept between sessions)
    second.sendline("")
    second.expect_exact("done:")
    quit_cleanly(second)
    tasks = [request["messages"][-1]["content"].splitlines()[0] for request in scripted_llm.requests]
    assert tasks == [f"Task: {TASK}", f"Task: {TASK}"]


def test_tab_completes_commands_arguments_and_paths(spawn, scripted_llm: ScriptedLLM) -> None:
    child = spawn(scripted_llm.base_url)
    child.send("/app\t")
    child.sendline("")
    child.expect_exact("approval: never")
    child.send("/topology pi\t")
    child.sendline("")
    child.expect_exact("topology: pipeline")
    child.sendline("/nope")
    child.expect_exact("unknown command /nope (type /help)")
    scripted_llm.enqueue(Reply(HELLO))
    child.send("look at READ\t")
    child.sendline("")
    child.expect_exact("done:")
    quit_cleanly(child)
    # The task the model got is the completed one.
    assert "Task: look at README.md" in scripted_llm.requests[0]["messages"][-1]["content"]


def test_endpoint_error_is_one_line_and_the_prompt_survives(spawn) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    child = spawn(closed)
    child.sendline(TASK)
    child.expect_exact("error: LLM endpoint")
    child.sendline("/approve")
    child.expect_exact("approval: never")
    assert "error:" not in child.before
    assert "Traceback" not in child.before
    quit_cleanly(child)


def interrupt_the_builder(child: pexpect.spawn, answer: threading.Event) -> str:
    """Start the task, press Ctrl-C while the builder waits for its reply, return the thread id."""
    child.sendline("/approve all")
    child.expect_exact("approval: all")
    child.sendline(TASK)
    child.expect_exact("> builder")
    child.sendintr()
    child.expect_exact("interrupting")  # seen: only now may the held reply go out
    answer.set()
    child.expect(r"interrupted; /resume (\S+) continues it")
    return str(child.match.group(1))


def test_ctrl_c_interrupts_a_run_and_the_prompt_comes_back(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    answer = threading.Event()
    scripted_llm.enqueue(Hold(answer, then=Reply(HELLO)))
    child = spawn(scripted_llm.base_url)
    interrupt_the_builder(child, answer)
    child.sendline("/approve")
    child.expect_exact("approval: all")
    assert "Traceback" not in child.before
    assert not (workspace / "hi.txt").exists()
    quit_cleanly(child)


def test_resume_finishes_an_interrupted_run(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    answer = threading.Event()
    # The builder may be asked again on resume, when its interrupted step was not saved.
    scripted_llm.enqueue(Hold(answer, then=Reply(HELLO)), Reply(HELLO))
    child = spawn(scripted_llm.base_url)
    thread = interrupt_the_builder(child, answer)
    child.sendline(f"/resume {thread}")
    child.expect_exact("done:")
    assert (workspace / "hi.txt").read_text() == "hello\n"
    quit_cleanly(child)


def test_resume_answers_an_approval_left_by_a_pipe(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    piped = run_piped(workspace, scripted_llm.base_url, f"/approve ask\n{TASK}\n")
    thread = re.search(r"with /resume (\S+)", piped.stdout)
    assert thread is not None, piped.stdout
    child = spawn(scripted_llm.base_url)
    child.sendline(f"/resume {thread.group(1)}")
    child.expect_exact("waits for approval")
    child.expect_exact("+hello")
    child.expect_exact("[a/e/r]")
    child.sendline("a")
    child.expect_exact("done:")
    assert (workspace / "hi.txt").read_text() == "hello\n"
    quit_cleanly(child)
    assert len(scripted_llm.requests) == 1


def test_dumb_terminal_runs_a_task_without_escapes(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    child = spawn(scripted_llm.base_url, term="dumb")
    # Everything after the banner: prompts, the approval with its diff, the transcript.
    child.logfile_read = seen = io.StringIO()
    child.sendline("/approve ask")
    child.expect_exact("approval: ask")
    child.sendline(TASK)
    child.expect_exact("+hello")
    child.expect_exact("[a/e/r]")
    child.sendline("a")
    child.expect_exact("done:")
    assert (workspace / "hi.txt").read_text() == "hello\n"
    quit_cleanly(child)
    assert "\x1b" not in seen.getvalue()


def test_model_and_file_text_is_shown_literally(spawn, scripted_llm: ScriptedLLM, workspace: Path) -> None:
    # Raw escapes in the streamed reply around the plan, and escapes and a tab in the file it writes.
    hostile = {"version": 1, "goal": "\x1b]0;pwned\x07 [b]greet", "steps": [
        {"op": "write", "path": "hi.txt", "content": "\x1b[2J[red]x[/red]\n\tindented\n"}]}  # fmt: skip
    reply = f"\x1b[2J\x1b]0;pwned\x07 [red]here[/red]:\n```json\n{json.dumps(hostile)}\n```\n"
    scripted_llm.enqueue(Reply(reply))
    child = spawn(scripted_llm.base_url, term="dumb")
    child.logfile_read = seen = io.StringIO()
    child.sendline("/stream on")
    child.expect_exact("stream: on")
    child.sendline("/approve ask")
    child.expect_exact("approval: ask")
    child.sendline(TASK)
    child.expect_exact("[a/e/r]")
    child.sendline("r")
    child.expect_exact("reason (optional):")
    child.sendline("")
    child.expect_exact("failed:")
    quit_cleanly(child)
    shown = seen.getvalue()
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\\x1b[2J\\x1b]0;pwned\\x07 [red]here[/red]:\r\n" in shown  # the streamed line, then a new line
    assert "plan p1 from the builder, 1 step: \\x1b]0;pwned\\x07 [b]greet" in shown
    assert "+\\x1b[2J[red]x[/red]" in shown
    assert "+       indented" in shown  # a tab to the next stop of 8, not "\\t"
    assert not (workspace / "hi.txt").exists()


def run_piped(workspace: Path, base_url: str, text: str | bytes, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``routeshell --plain`` with ``text`` on standard input (not a terminal)."""
    raw = subprocess.run(
        [ROUTESHELL, "--plain", "--profile", "ci", "--workspace", str(workspace)],
        input=text.encode() if isinstance(text, str) else text,
        capture_output=True,
        env=plain_env(base_url, **env),
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())


def test_piped_lines_run_and_exit_zero(scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    result = run_piped(workspace, scripted_llm.base_url, f"/approve all\n{TASK}\n")
    assert result.returncode == 0, result.stderr
    assert "done:" in result.stdout
    assert "Traceback" not in result.stderr
    assert (workspace / "hi.txt").read_text() == "hello\n"
    # Each step of the applied plan is shown, as `run` shows it.
    assert "[1] write hi.txt" in result.stdout


def test_piped_approval_stops_the_task_and_goes_on(scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    result = run_piped(workspace, scripted_llm.base_url, f"/approve ask\n{TASK}\n/history\n")
    assert result.returncode == 1, result.stderr  # a task waiting for approval is not done
    assert result.stdout.count("stop: approval needed for plan p1") == 1
    assert "no plans applied" in result.stdout
    assert not (workspace / "hi.txt").exists()


def test_plain_with_a_command_is_a_usage_error(workspace: Path) -> None:
    result = subprocess.run(
        [ROUTESHELL, "--plain", "--workspace", str(workspace), "plan", "history"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("routeshell: error: --plain")


def test_the_editor_gets_the_plan_as_indented_json(spawn, scripted_llm: ScriptedLLM, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    editor = tmp_path / "copy.py"
    editor.write_text(f"import shutil, sys\nshutil.copy(sys.argv[1], {str(seen)!r})\n")
    scripted_llm.enqueue(Reply(HELLO))
    child = spawn(scripted_llm.base_url, EDITOR=f"{shlex.quote(sys.executable)} {shlex.quote(str(editor))}")
    ask_for_approval(child)
    child.sendline("e")
    child.expect_exact("done:")
    text = seen.read_text()
    assert text.startswith('{\n  "version": 1')
    assert json.loads(text)["steps"][0]["content"] == "hello\n"
    quit_cleanly(child)


def test_output_to_a_pipe_still_asks_at_the_terminal(scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    command = f"{shlex.quote(ROUTESHELL)} --plain --profile ci --workspace {shlex.quote(str(workspace))} | cat"
    child = pexpect.spawn("/bin/sh", ["-c", command], env=plain_env(scripted_llm.base_url), encoding="utf-8",
                          timeout=TIMEOUT_S)  # fmt: skip
    try:
        ask_for_approval(child)
        child.sendline("a")
        child.expect_exact("done:")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert (workspace / "hi.txt").read_text() == "hello\n"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


FAILS = {"version": 1, "goal": "fail", "steps": [{"op": "run", "argv": [sys.executable, "-c", "raise SystemExit(1)"]}]}


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        pytest.param("/approve all\n/history\n", 0, id="all-well"),
        pytest.param("/approve all\nfail please\n/history\n", 1, id="failed-task"),
        pytest.param("/frobnicate\n/history\n", 2, id="unknown-command"),
        pytest.param("/approve sometimes\n", 2, id="bad-argument"),
        pytest.param("/frobnicate\n/approve all\nfail please\n", 2, id="worst-of-two"),
    ],
)
def test_piped_exit_code_is_the_worst_of_the_lines(
    scripted_llm: ScriptedLLM, workspace: Path, lines: str, code: int
) -> None:
    scripted_llm.enqueue(Reply(FAILS))
    result = run_piped(workspace, scripted_llm.base_url, lines)
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr


def test_piped_unreachable_endpoint_is_exit_3(workspace: Path) -> None:
    result = run_piped(workspace, closed_port_url(), f"{TASK}\n/history\n")
    assert result.returncode == 3, result
    assert "no plans applied" in result.stdout  # the next line still ran


@pytest.mark.parametrize("lang", ["C.UTF-8", "C"])
def test_a_piped_line_that_is_not_utf8_is_skipped_with_one_line(
    scripted_llm: ScriptedLLM, workspace: Path, lang: str
) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    result = run_piped(workspace, scripted_llm.base_url, b"write \xff\xfe\n/approve all\n" + TASK.encode() + b"\n",
                       LC_ALL=lang)  # fmt: skip
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "error: this line is not UTF-8 text (byte \\xff at offset 6); skipped" in result.stdout
    assert (workspace / "hi.txt").read_text() == "hello\n"  # the next lines ran
    assert len(scripted_llm.requests) == 1


def test_a_piped_line_past_the_limit_is_skipped_with_one_line(scripted_llm: ScriptedLLM, workspace: Path) -> None:
    scripted_llm.enqueue(Reply(HELLO))
    long_line = b"write " + b"y" * (3 * MAX_TASK_BYTES) + b"\n"  # read past in pieces, never whole
    result = run_piped(workspace, scripted_llm.base_url, long_line + b"/approve all\n" + TASK.encode() + b"\n")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "error: a line longer than 1 MiB; skipped" in result.stdout
    assert "yyyy" not in result.stdout
    assert (workspace / "hi.txt").read_text() == "hello\n"  # the next lines ran
    assert len(scripted_llm.requests) == 1


def test_endless_input_with_no_line_break_is_given_up_on_with_one_line(
    scripted_llm: ScriptedLLM, workspace: Path
) -> None:
    # /dev/zero never sends a line break: reading past it would never end.
    with open("/dev/zero", "rb") as zeros:
        raw = subprocess.run(
            [ROUTESHELL, "--plain", "--profile", "ci", "--workspace", str(workspace)],
            stdin=zeros,
            capture_output=True,
            env=plain_env(scripted_llm.base_url),
            timeout=120,
            check=False,
        )
    stdout = raw.stdout.decode()
    assert raw.returncode == 2, raw
    assert b"Traceback" not in raw.stderr
    assert "error: more than 64.0 MB on standard input with no line break; stopped reading it" in stdout
    assert scripted_llm.requests == []


FILES_PROFILE = """description = "files only, on a scripted server"
workspace = "./workspace"
approval = "ask"

[router]
kind = "heuristic"

[llm.default]
base_url = "${LLM_API_BASE}"
model = "m"
max_retries = 0

[llm.builder]
model = "planner"
prompt = "planner"

[planner]
min_probability = 0.2

[sandbox]
run_timeout_s = 30
"""
MOVE_PDFS = {"version": 1, "goal": "Move the PDFs into archive",
             "steps": [{"op": "move", "match": {"glob": "**", "ext": [".pdf"]}, "to": "archive"}]}  # fmt: skip


def test_anyway_shows_a_plan_declined_as_unsure_for_approval(
    scripted_llm: ScriptedLLM, workspace: Path, isolated_home: Path
) -> None:
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "routeshell" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "filesci.toml").write_text(FILES_PROFILE)
    (workspace / "a.pdf").write_text("a")
    scripted_llm.enqueue(Reply(MOVE_PDFS, logprobs=[-1.0, -1.0]), Reply(MOVE_PDFS, logprobs=[-1.0, -1.0]))  # 14%
    child = pexpect.spawn(ROUTESHELL, ["--plain", "--profile", "filesci", "--workspace", str(workspace)],
                          env=plain_env(scripted_llm.base_url), encoding="utf-8", timeout=TIMEOUT_S,
                          dimensions=(40, 200))  # fmt: skip
    try:
        child.expect_exact("type a task, or /help")
        child.sendline("/anyway")
        child.expect_exact("no plan was declined as unsure")
        child.sendline("move the pdfs into archive")
        # (as wide as the terminal says, which the tests' environment may set: only the start is unwrapped)
        child.expect_exact("failed: the local planner is unsure of its plan", timeout=60)
        child.expect_exact("/anyway asks again and shows that plan for your approval")
        child.expect_exact("routeshell>")  # (the prompt is back: a line typed before it may be lost)
        child.sendline("/anyway")
        child.expect_exact("approve, edit, reject? [a/e/r]", timeout=60)
        child.sendline("r")
        child.expect_exact("reason (optional):")
        child.sendline("not that")
        child.expect_exact("rejected: not that")
        child.expect_exact("failed:")
        quit_cleanly(child)
    finally:
        child.close(force=True)
    assert (workspace / "a.pdf").exists()
    assert not (workspace / "archive").exists()
    # The second answer was asked for with the profile's bound set aside, once.
    assert len(scripted_llm.requests) == 2


def test_anyway_piped_shows_the_plan_and_applies_nothing(
    scripted_llm: ScriptedLLM, workspace: Path, isolated_home: Path
) -> None:
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "routeshell" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "filesci.toml").write_text(FILES_PROFILE.replace('approval = "ask"', 'approval = "auto"'))
    (workspace / "a.pdf").write_text("a")
    scripted_llm.enqueue(Reply(MOVE_PDFS, logprobs=[-1.0, -1.0]), Reply(MOVE_PDFS, logprobs=[-1.0, -1.0]))
    raw = subprocess.run([ROUTESHELL, "--plain", "--profile", "filesci", "--workspace", str(workspace)],
                         input=b"move the pdfs into archive\n/anyway\n", capture_output=True,
                         env=plain_env(scripted_llm.base_url), timeout=60, check=False)  # fmt: skip
    out = raw.stdout.decode()
    assert "Traceback" not in raw.stderr.decode()
    assert "unsure of its plan" in out
    assert "shown, not" in out  # shown ...
    assert (workspace / "a.pdf").exists()  # ... and, piped, never applied: not even under 'auto'
    assert not (workspace / "archive").exists()
    assert raw.returncode == 1
