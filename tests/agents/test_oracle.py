"""The oracle labeler: every candidate runs the real agent loop against a scripted endpoint, the
task's check runs in the sandbox, and the label is the cheapest candidate that passes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agents.oracle import OracleOptions, oracle_labels
from agents.session import SessionOptions
from engine.config.profiles import load_profile
from engine.router.candidates import candidate_by_key
from engine.router.cost import read_oracle
from engine.router.tasks import humaneval_tasks
from tests.scripted_llm import Reply, ScriptedLLM

STRLEN = next(t for t in humaneval_tasks() if t.task_id == "HumanEval_23_strlen")
WRONG = (STRLEN.prompt or "") + "    return 0\n"


def _write(content: str) -> dict[str, Any]:
    return {"version": 1, "goal": "write strlen",
            "steps": [{"op": "write", "path": "solution.py", "content": content, "overwrite": True}]}  # fmt: skip


def _fix() -> dict[str, Any]:
    step = {"op": "patch", "path": "solution.py", "find": "return 0", "replace": "return len(string)"}
    return {"version": 1, "goal": "count the characters", "steps": [step]}


def test_the_cheapest_passing_candidate_is_the_label_and_records_are_kept(
    scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    env = {**os.environ, "LLM_API_BASE": scripted_llm.base_url}
    candidates = (candidate_by_key("single:builder"), candidate_by_key("pipeline:builder+refactor"))
    options = OracleOptions(load_profile("ci", env), tmp_path / "records.jsonl", candidates,
                            SessionOptions(approval="all", env=env))  # fmt: skip
    # single: the builder writes a wrong answer; the pipeline: the same, then the refactor fixes it.
    scripted_llm.enqueue(Reply(_write(WRONG)), Reply(_write(WRONG)), Reply(_fix()))
    events: list[dict[str, Any]] = []
    outcome = oracle_labels([STRLEN], options, events.append, source="humaneval", out=tmp_path / "o.jsonl")
    assert scripted_llm.pending() == 0
    [(task, decision)] = outcome.labels
    assert task.task_id == STRLEN.task_id
    assert (decision.topology, decision.roles) == ("pipeline", ("builder", "refactor"))
    records = {r["candidate"]: r for r in outcome.records}
    assert records["single:builder"]["passed"] is False
    assert "the check failed" in (records["single:builder"]["problem"] or "")
    assert records["pipeline:builder+refactor"]["passed"] is True
    assert records["pipeline:builder+refactor"]["tokens"] > records["single:builder"]["tokens"] > 0
    assert [e["status"] for e in events if e["type"] == "label_task"] == ["labelled"]

    again = oracle_labels([STRLEN], options, events.append, source="humaneval", out=tmp_path / "o.jsonl")
    assert again.attempted == 0, "an attempt with a record was run again"
    assert [d.topology for _, d in again.labels] == ["pipeline"]
    table = read_oracle(tmp_path / "records.jsonl")
    assert table[STRLEN.task_id]["single:builder"].passed is False
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "records.jsonl").read_text().splitlines()[1])["candidate"] == (
        "pipeline:builder+refactor"
    )
