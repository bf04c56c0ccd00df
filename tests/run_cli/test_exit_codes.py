"""``routeshell run``'s exit codes and one-line errors: failures, usage, endpoints, keys, budgets, bad bytes.

Each test starts the installed ``routeshell`` script against a :class:`ScriptedLLM` on loopback, on a
small workspace, and checks what a user (or a script reading ``--json``) sees.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell
from tests.run_cli.support import (
    BUILD,
    TEST_FAILS,
    TEST_PASSES,
    closed_port_url,
    events,
    journals,
    of_type,
    paused_run,
    roles_asked,
    run,
)
from tests.scripted_llm import Reply, ScriptedLLM, Status
from tui.sizes import MAX_TASK_BYTES

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
        pytest.param(("--thread", "../../etc", "a task"), "thread id '../../etc' is not valid", id="thread-path"),
        pytest.param(
            ("--thread", "x\x1b[31mred", "a task"), "thread id 'x\\x1b[31mred' is not valid", id="thread-escape"
        ),
        pytest.param(("   ",), "the task is empty", id="empty-task"),
        pytest.param(("--max-cost-tokens", "0", "a task"), "--max-cost-tokens", id="zero-budget"),
        pytest.param(
            ("--min-probability", "nan", "a task"),
            "--min-probability must be a number from 0 to 1",
            id="nan-probability",
        ),
        pytest.param(
            ("--min-probability", "1.5", "a task"),
            "--min-probability must be a number from 0 to 1",
            id="probability-over-1",
        ),
        pytest.param(("--min-probability", "half", "a task"), "invalid float value: 'half'", id="probability-words"),
        pytest.param(("--base-url", "not a url", "a task"), "'not a url' is not an http(s) URL", id="url-words"),
        pytest.param(("--base-url", "file:///etc/passwd", "a task"), "is not an http(s) URL", id="url-file"),
        pytest.param(("--base-url", "http://h:99999/v1", "a task"), "is not an http(s) URL", id="url-port"),
        pytest.param(("--base-url", "http://\x1b[31mh/v1", "a task"), "'http://\\x1b[31mh/v1' is not", id="url-escape"),
        pytest.param(
            ("--base-url", "http://me:secret@h:99999/v1", "a task"),
            "'http://me:****@h:99999/v1' is not",
            id="url-password",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    scripted_llm: ScriptedLLM, ws: Path, args: tuple[str, ...], needle: str
) -> None:
    assert_one_line_error(run(scripted_llm, ws, *args), 2, needle)
    assert scripted_llm.requests == []


def test_a_profile_endpoint_that_is_no_url_is_shown_escaped_once_and_without_its_password(
    scripted_llm: ScriptedLLM, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_API_BASE", "http://me:s\x1bcret@exa\x1b[31mmple/v1")
    result = run_routeshell("run", "--profile", "ci", "--workspace", str(ws), "a task")
    assert_one_line_error(result, 2, "key llm.default.base_url: 'http://me:****@exa\\x1b[31mmple/v1' is not")
    assert "cret" not in result.stderr
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
             "--resume", "--answer", "--max-cost-tokens", "--min-probability", "--show-stream", "--show-diff",
             "--yes")  # fmt: skip
    for flag in flags:
        assert flag in result.stdout, flag
    for choice in ("auto", "never", "all", "single", "pipeline", "loop"):
        assert choice in result.stdout, choice
    codes = result.stdout.split("exit codes:", 1)[1]
    for code in ("0", "1", "2", "3"):
        assert f"\n  {code}  " in codes, code


def test_sessions_lists_each_thread_with_its_status(scripted_llm: ScriptedLLM, ws: Path) -> None:
    assert run_routeshell("--profile", "ci", "sessions", "--workspace", str(ws)).stdout.startswith("no sessions in ")
    paused = paused_run(scripted_llm, ws)
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


def test_a_task_on_stdin_past_the_limit_is_refused_without_reading_it_all(scripted_llm: ScriptedLLM, ws: Path) -> None:
    argv = [ROUTESHELL, "run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws), "-"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdin is not None
        # Far more than the limit is offered; the command answers after reading one byte past it.
        with contextlib.suppress(BrokenPipeError):
            for _ in range(64):
                child.stdin.write(b"x" * (MAX_TASK_BYTES // 4))
            child.stdin.close()
        out, err = child.communicate(timeout=60)
    result = subprocess.CompletedProcess(argv, child.returncode, out.decode(), err.decode())
    assert_one_line_error(result, 2, "the task on standard input is longer than 1 MiB")
    assert scripted_llm.requests == []


def test_a_hint_for_a_workspace_named_with_an_escape_moves_no_cursor_and_works_pasted(
    scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    # The hint printed the folder's name raw: an escape sequence in it reached the terminal.
    ws = tmp_path / "ws \x1b[31mred\x1b[0m 'q'"
    ws.mkdir()
    (ws / "app.py").write_text("VALUE = 1\n")
    scripted_llm.enqueue(Reply(BUILD), Reply(TEST_PASSES))
    result = run(scripted_llm, ws, "--json", "--topology", "loop", "--approve", "auto", "set VALUE to 2")
    assert result.returncode == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert line.isprintable(), line
    how = line.split("waits for approval; ", 1)[1]
    # bash reads the line back as the words it names, the workspace's bytes among them.
    words = subprocess.run(["bash", "-c", f"printf '%s\\0' {how}"], capture_output=True, check=True).stdout
    assert words.split(b"\0")[:4] == [b"routeshell", b"--profile", b"ci", b"run"]
    assert str(ws).encode() in words.split(b"\0")
