"""run_judge against scripted OpenAI-compatible servers as the model under test and as the judge."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.evaluation.judge import run_judge
from engine.evaluation.scoring import CRITERIA
from engine.llm.client import EndpointError
from tests.engine.evaluation.support import (
    ROWS,
    answering,
    candidate,
    chat_requests,
    judging,
    options,
    question,
    scores,
    write_rows,
)
from tests.scripted_llm import Reply, Respond, ScriptedLLM, Status


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedLLM, ScriptedLLM]]:
    with ScriptedLLM() as model, ScriptedLLM() as judge:
        yield model, judge


def test_every_sample_is_answered_judged_and_averaged(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS)
    model.enqueue(*answering(4))
    verdicts = {"answer to Q1": scores(5), "answer to Q2": scores(4), "answer to Q3": scores(2),
                "answer to Q4": {**scores(1), "accuracy": 4, "reason": "off topic"}}  # fmt: skip
    judge.enqueue(*judging(4, verdicts))
    events: list[dict[str, Any]] = []
    outcome = run_judge(options(data, model, judge, tmp_path / "out"), events.append)

    summary = outcome.summary
    assert summary["counts"] == {"scored": 4, "unscored": 0, "failed": 0}
    assert summary["averages"] == {"accuracy": 3.75, "completeness": 3.0, "fluency": 3.0, "professionalism": 3.0,
                                   "overall": 3.0}  # fmt: skip
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert summary["details"] == str(tmp_path / "out" / "details.jsonl")
    details = [json.loads(line) for line in Path(summary["details"]).read_text().splitlines()]
    assert [d["index"] for d in details] == [1, 2, 3, 4]
    assert details[3] == {"index": 4, "status": "scored", "question": "Q4", "reference": "A4", "answer": "answer to Q4",
                          "scores": {**dict.fromkeys(CRITERIA, 1), "accuracy": 4}, "reason": "off topic",
                          "cached": False}  # fmt: skip
    assert [e["type"] for e in events] == ["eval_start", *["eval_sample"] * 4, "eval_done"]

    # The model is asked everything before the reference answer, and never sees the reference.
    asked = {question(r): r["messages"] for r in chat_requests(model)}
    assert asked["Q1"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"}]
    assert asked["Q4"] == ROWS[3]["messages"][:3]
    assert [r["model"] for r in chat_requests(model)] == ["tiny"] * 4
    # The judge sees the reference and the answer, and is asked for JSON by the schema.
    first = chat_requests(judge)[0]
    assert first["model"] == "judge"
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["required"] == [*CRITERIA, "reason"]
    assert "<reference_answer>\nA" in first["messages"][1]["content"]
    assert model.unexpected == judge.unexpected == 0


def test_an_invalid_judge_reply_is_asked_again_once_then_the_sample_is_unscored(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]
) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:2])
    model.enqueue(*answering(2))
    judge.enqueue(
        Reply({**scores(3), "overall": 7}),  # Q1: out of range
        Reply("```json\n" + json.dumps(scores(3)) + "\n```"),  # Q1 again: valid inside a fence
        Reply("I would say 4 out of 5"),  # Q2: not JSON
        Reply({**scores(4), "extra": True}),  # Q2 again: an unknown key
    )
    outcome = run_judge(options(data, model, judge, tmp_path / "out", concurrency=1), lambda event: None)

    first, second = outcome.results
    assert (first.status, first.scores is not None and first.scores["overall"]) == ("scored", 3)
    assert second.status == "unscored"
    assert second.scores is None
    assert second.reason == "the judge's reply was not valid twice: /extra: unknown key"
    assert outcome.summary["counts"] == {"scored": 1, "unscored": 1, "failed": 0}
    assert outcome.summary["averages"]["overall"] == 3.0
    # The second try carries the first reply and what was wrong with it.
    retry = chat_requests(judge)[1]["messages"]
    assert retry[2] == {"role": "assistant", "content": json.dumps({**scores(3), "overall": 7})}
    assert "/overall: must be at most 5" in retry[3]["content"]
    assert len(chat_requests(judge)) == 4


def test_a_sample_the_endpoint_rejects_fails_and_the_run_goes_on(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]
) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS[:2])
    too_long = Status(400, {"error": {"message": "prompt longer than the context"}})
    model.enqueue(*[Respond(lambda b: too_long if question(b) == "Q1" else Reply("answer to Q2")) for _ in range(2)])
    judge.enqueue(*judging(1, {"answer to Q2": scores(5)}))
    outcome = run_judge(options(data, model, judge, tmp_path / "out"), lambda event: None)
    assert [r.status for r in outcome.results] == ["failed", "scored"]
    assert "prompt longer than the context" in outcome.results[0].reason
    assert outcome.summary["averages"]["overall"] == 5.0
    assert outcome.failure() is None


def test_a_run_stopped_by_an_endpoint_resumes_asking_only_what_is_missing(
    tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]
) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", ROWS)
    out = tmp_path / "out"
    # Q1 and Q2 are judged; Q3 is answered but its judge is refused; Q4 is never reached.
    model.enqueue(*answering(3))
    refused = Status(401, {"error": {"message": "bad key"}})
    judge.enqueue(*judging(2, {"answer to Q1": scores(5), "answer to Q2": scores(4)}), refused)
    with pytest.raises(EndpointError, match="HTTP 401"):
        run_judge(options(data, model, judge, out, concurrency=1), lambda event: None)
    assert not (out / "summary.json").exists()

    with ScriptedLLM() as model2, ScriptedLLM() as judge2:
        model2.enqueue(*answering(1))
        judge2.enqueue(*judging(2, {"answer to Q3": scores(3), "answer to Q4": scores(2)}))
        events: list[dict[str, Any]] = []
        outcome = run_judge(options(data, model2, judge2, out), events.append)
        # Only Q4 is asked again of the model (Q3's answer was kept); the judge sees Q3 and Q4 only.
        assert [question(r) for r in chat_requests(model2)] == ["Q4"]
        assert sorted(candidate(r) for r in chat_requests(judge2)) == ["answer to Q3", "answer to Q4"]
        assert model2.unexpected == judge2.unexpected == 0
    assert events[0] == {"type": "eval_start", "samples": 4, "cached": 2, "concurrency": 2, "out": str(out)}
    assert [r.cached for r in outcome.results] == [True, True, False, False]
    assert outcome.summary["averages"]["overall"] == 3.5

    # A third run asks nothing at all.
    with ScriptedLLM() as model3, ScriptedLLM() as judge3:
        again = run_judge(options(data, model3, judge3, out), lambda event: None)
        assert model3.requests == judge3.requests == []
    assert again.summary == outcome.summary


def test_concurrency_is_bounded(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    rows = [{"instruction": f"Q{n}", "output": f"A{n}"} for n in range(9)]
    data = write_rows(tmp_path / "test.jsonl", rows)
    # The first three requests wait for each other: three samples must be in flight at once.
    together = threading.Barrier(3, timeout=30)
    arrivals = itertools.count()

    def answer(body: dict[str, Any]) -> Reply:
        if next(arrivals) < 3:
            together.wait()
        return Reply(f"answer to {question(body)}")

    model.enqueue(*[Respond(answer) for _ in range(9)])
    judge.enqueue(*judging(9, {f"answer to Q{n}": scores(4) for n in range(9)}))
    outcome = run_judge(options(data, model, judge, tmp_path / "out", concurrency=3), lambda event: None)
    assert outcome.summary["counts"]["scored"] == 9
    assert model.max_in_flight == 3
    assert judge.max_in_flight <= 3


def test_a_repeated_sample_is_asked_once(tmp_path: Path, servers: tuple[ScriptedLLM, ScriptedLLM]) -> None:
    model, judge = servers
    data = write_rows(tmp_path / "test.jsonl", [ROWS[1], ROWS[2], ROWS[1]])
    model.enqueue(*answering(2))
    judge.enqueue(*judging(2, {"answer to Q2": scores(5), "answer to Q3": scores(2)}))
    outcome = run_judge(options(data, model, judge, tmp_path / "out"), lambda event: None)
    assert [r.sample.index for r in outcome.results] == [1, 2, 3]
    assert [r.scores["overall"] if r.scores else None for r in outcome.results] == [5, 2, 5]
    assert outcome.summary["averages"]["overall"] == 4.0
    assert len(chat_requests(model)) == len(chat_requests(judge)) == 2
