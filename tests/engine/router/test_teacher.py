"""The teacher labeler against a scripted OpenAI-compatible server on loopback: a bounded pool,
an on-disk cache that a killed run resumes from, and invalid answers retried, then dropped and counted."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config.profiles import Endpoint
from engine.llm.client import EndpointError
from engine.router.generator import generate_requests
from engine.router.teacher import TeacherOptions, normalise_answer, teacher_labels
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell
from tests.scripted_llm import Reply, Respond, ScriptedLLM, Stall, Status, Trickle

LOOP = {"topology": "loop", "roles": ["builder", "tester"], "max_rounds": 3, "reason": "tests decide"}


def _task_of(body: dict[str, Any]) -> str:
    return str(body["messages"][1]["content"])


def _endpoint(llm: ScriptedLLM) -> Endpoint:
    return Endpoint(base_url=llm.base_url, model="teacher", api_key="k", timeout_s=10, max_retries=0)


def _answers(llm: ScriptedLLM, answer: Any, *, delay_s: float = 0.0, count: int = 200) -> None:
    def respond(body: dict[str, Any]) -> Reply:
        return Reply(answer(body) if callable(answer) else answer, delay_s=delay_s)

    llm.enqueue(*[Respond(respond) for _ in range(count)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"topology": "LOOP", "roles": "Tester, builder", "max_rounds": "4"}\n```',
         {"topology": "loop", "roles": ["tester", "builder"], "max_rounds": 4, "reason": ""}),
        ('Sure! {"topology": "single", "roles": [], "max_rounds": 40, "reason": "easy"} Hope this helps',
         {"topology": "single", "roles": ["builder"], "max_rounds": 10, "reason": "easy"}),
        ("no json here", "no JSON object in the answer"),
        ("{not json}", "the answer's JSON does not parse"),
    ],
)  # fmt: skip
def test_answers_are_normalised_before_they_are_validated(text: str, expected: object) -> None:
    assert normalise_answer(text) == expected


def test_the_teacher_labels_concurrently_and_a_second_run_asks_nothing(tmp_path: Path) -> None:
    tasks = generate_requests(8)
    events: list[dict[str, Any]] = []
    with ScriptedLLM() as llm:
        _answers(llm, LOOP, delay_s=0.1)
        options = TeacherOptions(_endpoint(llm), tmp_path / "cache.jsonl", concurrency=4)
        outcome = teacher_labels(tasks, options, events.append, source="files", out=tmp_path / "o.jsonl")
        assert llm.max_in_flight > 1
        assert len(llm.requests) == 8
        again = teacher_labels(tasks, options, events.append, source="files", out=tmp_path / "o.jsonl")
        assert len(llm.requests) == 8, "a cached task was asked again"
    assert [task.task_id for task, _ in outcome.labels] == [t.task_id for t in tasks]
    assert all(decision.topology == "loop" for _, decision in outcome.labels)
    assert (outcome.asked, outcome.cached, again.asked, again.cached) == (8, 0, 0, 8)
    assert [e["status"] for e in events if e["type"] == "label_task"][-8:] == ["cached"] * 8
    assert {t.task_id for t in tasks} == {json.loads(line)["task_id"] for line in (tmp_path / "cache.jsonl").open()}


def test_invalid_answers_are_retried_with_the_problem_then_dropped_and_counted(tmp_path: Path) -> None:
    tasks = generate_requests(3)
    stubborn = tasks[1].user_turn

    def answer(body: dict[str, Any]) -> Any:
        if _task_of(body) == stubborn:
            return {"topology": "star", "roles": ["builder"]}
        # The first ask of the others is not JSON; the retry names the problem and gets a good one.
        return LOOP if len(body["messages"]) > 2 else "I think a loop"

    with ScriptedLLM() as llm:
        _answers(llm, answer)
        options = TeacherOptions(_endpoint(llm), tmp_path / "cache.jsonl", concurrency=2, attempts=3)
        outcome = teacher_labels(tasks, options, lambda e: None, source="files", out=tmp_path / "o.jsonl")
        retries = [body for body in llm.requests if len(body.get("messages", [])) > 2]
    assert outcome.dropped == [tasks[1].task_id]
    assert [task.task_id for task, _ in outcome.labels] == [tasks[0].task_id, tasks[2].task_id]
    assert outcome.invalid_answers == 3 + 1 + 1
    assert any("not a valid decision" in body["messages"][-1]["content"] for body in retries)


def test_an_endpoint_that_fails_keeps_what_was_answered(tmp_path: Path) -> None:
    tasks = generate_requests(3)
    with ScriptedLLM() as llm:
        llm.enqueue(Reply(LOOP), Status(401), Status(401), Status(401))
        options = TeacherOptions(_endpoint(llm), tmp_path / "cache.jsonl", concurrency=1)
        with pytest.raises(EndpointError):
            teacher_labels(tasks, options, lambda e: None, source="files", out=tmp_path / "o.jsonl")
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == 1


def test_a_killed_run_resumes_and_never_asks_again_for_a_cached_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "labels.jsonl"
    cache = tmp_path / "labels.jsonl.cache.jsonl"
    args = ["train", "labels", "--source", "files", "--count", "12", "--labeler", "teacher", "--out", str(out),
            "--concurrency", "2", "--events"]  # fmt: skip
    with ScriptedLLM() as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("LLM_API_BASE", llm.base_url)
        _answers(llm, LOOP, delay_s=0.15, count=40)
        process = subprocess.Popen([ROUTESHELL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not cache.exists() or len(cache.read_bytes().splitlines()) < 4):
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        assert not out.exists()
        kept = {json.loads(line)["task_id"] for line in cache.read_bytes().splitlines() if line.strip()}
        assert 4 <= len(kept) < 12
        first_run = len(llm.requests)
        result = run_routeshell(*args)
        asked_again = [_task_of(body) for body in llm.requests[first_run:]]
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "label_start"
    assert events[0]["cached"] == len(kept)
    assert events[-1] == {**events[-1], "type": "label_done", "samples": 12, "asked": 12 - len(kept)}
    assert len(asked_again) == 12 - len(kept)
    cached_turns = {t.user_turn for t in generate_requests(12) if t.task_id in kept}
    assert cached_turns.isdisjoint(asked_again)
    assert len(out.read_text().splitlines()) == 12


def test_a_missing_key_is_the_original_clear_error(tmp_path: Path) -> None:
    result = run_routeshell(
        "train", "labels", "--source", "files", "--labeler", "teacher", "--out", str(tmp_path / "x")
    )
    assert_one_line_error(result, 2, "LLM_API_KEY/OPENAI_API_KEY is not set")


def test_a_teacher_that_trickles_its_answer_times_out(tmp_path: Path) -> None:
    tasks = generate_requests(1)
    with ScriptedLLM() as llm:
        llm.enqueue(Trickle(interval_s=0.1, seconds=20))
        endpoint = Endpoint(base_url=llm.base_url, model="teacher", api_key="k", timeout_s=0.5, max_retries=0)
        options = TeacherOptions(endpoint, tmp_path / "cache.jsonl", concurrency=1)
        with pytest.raises(EndpointError) as caught:
            teacher_labels(tasks, options, lambda e: None, source="files", out=tmp_path / "o.jsonl")
    assert "timed out after 0.5 s" in str(caught.value)
    assert not (tmp_path / "cache.jsonl").exists()  # nothing was answered: no empty cache is left behind


def test_train_labels_timeout_ends_a_stalled_teacher_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "labels.jsonl"
    with ScriptedLLM() as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("LLM_API_BASE", llm.base_url)
        llm.enqueue(*[Stall(60) for _ in range(3)])  # the first ask and its two retries
        result = run_routeshell("train", "labels", "--source", "files", "--count", "1", "--labeler", "teacher",
                                "--out", str(out), "--timeout", "1", "--events")  # fmt: skip
        asked = len(llm.requests)
    assert_one_line_error(result, 3, f"LLM endpoint {llm.base_url} timed out after 1 s (3 attempts)", "--timeout")
    assert json.loads(result.stdout.splitlines()[-1])["exit_code"] == 3
    assert asked == 3
    assert not out.exists()


def test_a_teacher_that_never_answers_validly_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "labels.jsonl"
    with ScriptedLLM() as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("LLM_API_BASE", llm.base_url)
        _answers(llm, {"topology": "star"}, count=9)
        result = run_routeshell("train", "labels", "--source", "files", "--count", "3", "--labeler", "teacher",
                                "--out", str(out))  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    # The progress lines come first; the error is the last line.
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("routeshell: error: LLM endpoint ")
    assert "gave no valid decision for any of the 3 tasks (9 invalid answers)" in last
    assert not out.exists()
