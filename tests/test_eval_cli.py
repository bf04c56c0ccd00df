"""``routeshell eval judge`` as a user meets it: a real subprocess against scripted model and judge servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.events import event_problem
from tests.engine.evaluation.support import (
    ROWS,
    answering,
    candidate,
    chat_requests,
    judging,
    question,
    scores,
    write_rows,
)
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell, small_disk
from tests.scripted_llm import Hold, Reply, Respond, ScriptedLLM, Status, Trickle

HOSTILE = "\x1b[31mRED\x1b]0;owned\x07 [bold]markup[/bold]"


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedLLM, ScriptedLLM]]:
    with ScriptedLLM() as model, ScriptedLLM() as judge:
        yield model, judge


def judge_args(data: Path, model: ScriptedLLM, judge: ScriptedLLM, out: Path, *extra: str) -> list[str]:
    return ["eval", "judge", "--data", str(data), "--model-endpoint", model.base_url,
            "--judge-endpoint", judge.base_url, "--out", str(out), *extra]  # fmt: skip


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_help_says_what_eval_judge_does() -> None:
    result = run_routeshell("eval", "--help")
    assert result.returncode == 0
    assert "judge" in result.stdout
    result = run_routeshell("eval", "judge", "--help")
    assert result.returncode == 0
    for needle in ("--model-endpoint", "--judge-endpoint", "--concurrency", "--limit", "--json", "accuracy",
                   "cache.jsonl", "summary.json", "details.jsonl", "exit codes:", "130"):  # fmt: skip
        assert needle in result.stdout


def test_a_table_of_averages_with_model_text_escaped(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no cell is folded
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:2])
    model.enqueue(*[Respond(lambda b: Reply(f"{HOSTILE} {question(b)}")) for _ in range(2)])
    judge.enqueue(*judging(2, {f"{HOSTILE} Q1": scores(4, f"why {HOSTILE}"), f"{HOSTILE} Q2": scores(2)}))
    result = run_routeshell(*judge_args(data, model, judge, tmp_path / "out", "--model", "tiny"))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\x07" not in result.stdout
    assert "\\x1b[31mRED" in result.stdout
    assert "[bold]markup" in result.stdout
    assert "overall" in result.stdout
    assert "3.00" in result.stdout
    assert "2 samples: 2 scored, 0 unscored, 0 failed" in result.stdout
    assert str(tmp_path / "out" / "summary.json") in result.stdout
    assert result.stderr == ""
    # Without --judge-model the judge's name is the first its endpoint lists.
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["judge_model"] == "scripted"
    assert chat_requests(model)[0]["model"] == "tiny"


def test_json_prints_valid_events(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS)
    model.enqueue(*answering(4))
    judge.enqueue(*judging(4, {f"answer to Q{n}": scores(n) for n in range(1, 5)}))
    result = run_routeshell(*judge_args(data, model, judge, tmp_path / "out", "--json", "--concurrency", "2"))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [event["type"] for event in events] == ["eval_start", *["eval_sample"] * 4, "eval_done"]
    assert all(event_problem(event) is None for event in events)
    assert events[0]["concurrency"] == 2
    assert events[-1]["averages"]["overall"] == 2.5
    assert events[-1]["counts"] == {"scored": 4, "unscored": 0, "failed": 0}


@pytest.mark.parametrize("give_model", [True, False])
def test_an_endpoint_that_is_down_is_one_line_and_exit_3(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM], give_model: bool
) -> None:
    _, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS)
    down = closed_port_url()
    args = ["eval", "judge", "--data", str(data), "--model-endpoint", down, "--judge-endpoint", judge.base_url,
            "--out", str(tmp_path / "out"), "--timeout", "5"]  # fmt: skip
    if give_model:
        args += ["--model", "tiny"]
    assert_one_line_error(run_routeshell(*args), 3, down)
    assert chat_requests(judge) == []


def test_every_sample_failing_is_exit_3(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:2])
    model.enqueue(*[Status(400, {"error": {"message": "prompt too long"}}) for _ in range(2)])
    result = run_routeshell(*judge_args(data, model, judge, tmp_path / "out", "--model", "m", "--judge-model", "j"))
    assert result.returncode == 3
    assert result.stderr.startswith("routeshell: error: every sample failed; the first: the model under test:")
    assert "prompt too long" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "0 scored, 0 unscored, 2 failed" in result.stdout


def test_a_full_disk_is_one_line_and_exit_1(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:1])
    model.enqueue(Reply("x" * 200_000))
    with small_disk(tmp_path / "disk", "64k") as disk:
        result = run_routeshell(*judge_args(data, model, judge, disk / "out", "--model", "m", "--judge-model", "j"))
        assert_one_line_error(result, 1, "cannot write", "cache.jsonl", "No space left on device")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "data file not found"),
        (b"", "no SFT rows in"),
        (b'{"instruction": "Q", "output": "A"}\n{"question": "Q"}\n', "test.jsonl:2: not an SFT row"),
        (b'{"instruction": "Q", "output": "A"}\nnot json\n', "test.jsonl:2: not JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM], content: bytes | None, needle: str
) -> None:
    model, judge = servers
    data = tmp_path / "test.jsonl"
    if content is not None:
        data.write_bytes(content)
    result = run_routeshell(*judge_args(data, model, judge, tmp_path / "out", "--model", "m", "--judge-model", "j"))
    assert_one_line_error(result, 2, needle)
    assert chat_requests(model) == chat_requests(judge) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model-endpoint", "localhost:8765"], "is not an http(s) URL"),
        (["--judge-endpoint", "http://:8765/v1"], "argument --judge-endpoint: 'http://:8765/v1' is not an http(s) URL"),
        (["--concurrency", "0"], "--concurrency"),
        (["--limit", "x"], "--limit"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    data = write_rows(tmp_path / "test.jsonl", ROWS)
    base = ["eval", "judge", "--data", str(data), "--model-endpoint", "http://127.0.0.1:9/v1",
            "--judge-endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--judge-model", "j"]  # fmt: skip
    assert_one_line_error(run_routeshell(*base, *args), 2, needle)


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ROUTESHELL, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ),
    )  # fmt: skip


def wait_for(condition: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_resumes_asking_only_the_missing_samples(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM], how: signal.Signals
) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS)
    out = tmp_path / "out"
    # Q1 and Q2 are answered and judged; the run is stopped while the model thinks about Q3.
    release = threading.Event()
    model.enqueue(*answering(2), Hold(release, Reply("never read")))
    judge.enqueue(*judging(2, {"answer to Q1": scores(5), "answer to Q2": scores(3)}))
    args = judge_args(data, model, judge, out, "--model", "tiny", "--judge-model", "judge", "--concurrency", "1")
    process = start(args)
    try:
        wait_for(lambda: len(chat_requests(model)) == 3)
        # The answers and verdicts of Q1 and Q2 are on disk before the stop.
        cache = out / "cache.jsonl"
        wait_for(lambda: cache.exists() and len(cache.read_bytes().splitlines()) == 4)
        os.kill(process.pid, how)
        _, stderr = process.communicate(timeout=60)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
    if how != signal.SIGKILL:
        # SIGTERM stops it as Ctrl-C does, with the code and the word of the other commands.
        code, what = (130, "interrupted") if how == signal.SIGINT else (143, "terminated")
        assert process.returncode == code
        assert stderr.strip().splitlines() == [
            f"routeshell: error: {what}: what was judged is kept in {out}; the same command resumes"
        ]
    else:
        assert process.returncode == -signal.SIGKILL
        # A write torn by the kill: half a record at the end of the cache.
        with (out / "cache.jsonl").open("a") as cache:
            cache.write('{"kind": "answer", "key": "')
    assert not (out / "summary.json").exists()

    with ScriptedLLM() as model2, ScriptedLLM() as judge2:
        model2.enqueue(*answering(2))
        judge2.enqueue(*judging(2, {"answer to Q3": scores(4), "answer to Q4": scores(4)}))
        args = judge_args(data, model2, judge2, out, "--model", "tiny", "--judge-model", "judge", "--json")
        result = run_routeshell(*args)
        assert result.returncode == 0, result.stderr
        assert sorted(question(r) for r in chat_requests(model2)) == ["Q3", "Q4"]
        assert sorted(candidate(r) for r in chat_requests(judge2)) == ["answer to Q3", "answer to Q4"]
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["counts"] == {"scored": 4, "unscored": 0, "failed": 0}
    assert done["averages"]["overall"] == 4.0


def test_eval_planner_refuses_a_base_url_that_is_not_one_before_any_work() -> None:
    result = run_routeshell("eval", "planner", "--data", "held-out", "--count", "2", "--predictor", "rules",
                            "--base-url", "http://:8765/v1")  # fmt: skip
    assert_one_line_error(result, 2, "argument --base-url: 'http://:8765/v1' is not an http(s) URL")
    assert result.stdout == ""


def test_a_model_that_trickles_its_reply_times_out(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    # One space every 0.2 s of a reply that announced 100,000 bytes: each read gets a byte, so only
    # a deadline on the whole reply ends it (the trickle gives up after 20 s, the test's bound).
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:1])
    model.enqueue(*[Trickle(interval_s=0.2, seconds=20) for _ in range(3)])
    args = judge_args(data, model, judge, tmp_path / "out", "--model", "m", "--judge-model", "j",
                      "--timeout", "1", "--limit", "1")  # fmt: skip
    result = run_routeshell(*args)
    assert_one_line_error(result, 3, f"LLM endpoint {model.base_url} timed out after 1 s (3 attempts)")


def test_a_model_list_that_trickles_times_out(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:1])
    model.models = Trickle(interval_s=0.2, seconds=20)
    result = run_routeshell(*judge_args(data, model, judge, tmp_path / "out", "--timeout", "1", "--limit", "1"))
    assert_one_line_error(result, 3, "did not list its models within 1 s", "give the model with --model")
