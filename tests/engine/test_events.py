"""The event contract: the TypedDicts of engine/events.py, the schema made from them, and the check."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.event_schema import events_schema
from engine.events import CHECK_ENV, EVENT_TYPES, check_event, event_name, event_problem, json_line
from engine.kinds import APPROVAL_MODES, ENDPOINT_ROLES, JOURNAL_STATES, ROLES, TOPOLOGIES
from engine.schemas import load_schema, validator
from tests.helpers import run_routeshell

PLAN = {"version": 1, "goal": "g", "steps": [{"op": "write", "path": "a", "content": "", "overwrite": False}]}
PREVIEW = {"type": "preview", "index": 0, "op": "write", "summary": "write a", "diff": None, "problem": None}
USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "estimated": False}
EXAMPLES: list[dict[str, Any]] = [
    {"type": "route", "thread": "t", "router": "heuristic", "note": None, "topology": "loop",
     "roles": ["builder", "tester"], "max_rounds": 3, "reason": "mentions tests"},
    {"type": "role_start", "role": "builder", "round": 1},
    {"type": "delta", "role": "builder", "text": "{"},
    {"type": "repair", "role": "tester", "attempt": 1, "problems": ["/: not valid JSON"]},
    {"type": "usage", "role": "planner", **USAGE, "role_total": 3, "run_total": 3},
    {"type": "role_end", "role": "refactor", "attempts": 1, "seconds": 0.25, "tokens": 3},
    {"type": "plan", "id": "p1", "role": "builder", "plan": PLAN},
    PREVIEW,
    {"type": "approval", "id": "p1", "role": "builder", "plan": PLAN, "preview": [PREVIEW], "runs": False,
     "thread": "t"},
    {"type": "step", "index": 0, "op": "write"},
    {"type": "step", "index": 1, "op": "run", "exit_code": None, "timed_out": True, "tail": ""},
    {"type": "applied", "journal": "j", "steps": 1},
    {"type": "applied", "journal": "j", "steps": 1, "replayed": True},
    {"type": "test", "passed": False, "exit_code": 1, "timed_out": False, "tail": "E", "runs": 1},
    {"type": "reviewed", "id": "p1", "role": "builder", "round": 1, "journal": None, "status": "shown",
     "summary": "s"},
    {"type": "error", "message": "m", "exit_code": 3},
    {"type": "final", "ok": True, "summary": "s", "undo": "j", "journals": ["j"], "thread": "t", "usage": USAGE,
     "per_role": {"builder": USAGE}},
    {"type": "final", "ok": False, "paused": True, "summary": "s", "undo": None, "journals": [], "thread": "t"},
    {"type": "session", "thread": "t", "task": "x", "updated": "2026", "status": "stopped", "ok": None,
     "summary": ""},
    {"type": "undone", "journal": "j"},
    {"type": "recovered", "journal": "j", "was": "applying"},
    {"type": "history", "id": "j", "state": "rolled-back", "started": "2026-11-30 10:00:00", "steps": 2, "goal": "",
     "via": "cli"},
    {"type": "history", "id": "j", "state": "damaged", "started": "?", "steps": None, "goal": "", "via": "unknown",
     "problem": "no plan.json"},
    {"type": "journal", "id": "j", "state": "applied", "started": "2026-11-30 10:00:00", "steps": 1, "goal": "",
     "via": "agent", "origin": "t/p1", "plan_steps": PLAN["steps"], "files": ["a"]},
    {"type": "undo_preview", "journal": "j", "actions": ["delete a"], "blocked": []},
    {"type": "trash", "id": "j/0", "origin": "a", "why": "deleted", "size": 1, "kind": "file"},
    {"type": "restored", "id": "j/0", "origin": "a", "why": "deleted", "size": 1, "kind": "file"},
    {"type": "trash_emptied", "items": 1, "bytes": 1},
    {"type": "audit", "time": "2026-11-30T10:00:00.000Z", "user": "ann", "origin": "agent", "thread": "t",
     "plan_id": "00001-20261130T100000", "action": "applied", "goal": "g", "ops": ["write"], "paths": ["a"],
     "paths_total": 1, "result": "ok", "reason": None},
    {"type": "warning", "message": "audit.jsonl line 2: damaged (not JSON), skipped"},
    {"type": "found", "path": "docs/a.md", "kind": "file", "size": 12, "mtime": 1700000000.0, "tags": ["a"]},
    {"type": "duplicates", "size": 12, "sha256": "0" * 64, "files": [{"path": "b", "mtime": 2.0},
     {"path": "a", "mtime": 1.0}], "wasted": 12},
    {"type": "disk_usage", "path": "src", "depth": 1, "size": 4096, "files": 3},
    {"type": "data_filter", "stage": "pretrain", "filter": "near duplicates", "removed": 3, "kept": 97},
    {"type": "data_ready", "stage": "sft", "documents": {"train": 8, "validation": 1, "test": 1},
     "tokens": {"train": 800, "validation": 100, "test": 100}, "cached": False, "seconds": 0.5},
    {"type": "train_start", "stage": "pretrain", "preset": "nano", "out": "/tmp/m", "parameters": 1000000,
     "max_steps": 30, "device": "cpu", "dtype": "bfloat16", "world_size": 1, "resumed_from": None},
    {"type": "train_step", "stage": "pretrain", "step": 1, "max_steps": 30, "loss": 7.5, "lr": 0.0003,
     "tokens_per_s": 2000.0, "elapsed_s": 1.0, "eta_s": None},
    {"type": "train_eval", "stage": "pretrain", "step": 10, "eval_loss": 6.0, "perplexity": 403.4},
    {"type": "checkpoint", "stage": "pretrain", "step": 10, "path": "/tmp/m/checkpoint-10", "final": False},
    {"type": "train_done", "stage": "tokenizer", "path": "/tmp/m", "steps": 0, "train_loss": None,
     "eval_loss": None, "perplexity": None, "elapsed_s": 2.0, "interrupted": False},
    {"type": "serve_ready", "url": "http://127.0.0.1:8765/v1", "models": ["tiny", "tiny:router"], "dtype": "bf16",
     "device": "cuda", "pid": 4242, "engine_pid": 4243},
    {"type": "serve_request", "method": "POST", "path": "/v1/chat/completions", "status": 200, "model": "tiny",
     "prompt_tokens": 12, "completion_tokens": 30, "elapsed_s": 0.4},
    {"type": "serve_stopped", "reason": "signal", "requests": 3},
    {"type": "eval_start", "samples": 10, "cached": 4, "concurrency": 4, "out": "/tmp/e"},
    {"type": "eval_sample", "index": 3, "status": "scored", "overall": 4, "reason": "close to the reference",
     "done": 1, "total": 6},
    {"type": "eval_sample", "index": 5, "status": "unscored", "overall": None, "reason": "/overall: must be at most 5",
     "done": 2, "total": 6},
    {"type": "eval_done", "data": ["/tmp/test.jsonl"], "model": "tiny", "judge_model": "judge", "prompt_version": 1,
     "samples": 10, "counts": {"scored": 8, "unscored": 1, "failed": 1},
     "averages": {"accuracy": 3.5, "completeness": 3.0, "fluency": 4.25, "professionalism": 4.0, "overall": 3.625},
     "details": "/tmp/e/details.jsonl", "summary": "/tmp/e/summary.json"},
    {"type": "eval_done", "data": ["/tmp/test.jsonl"], "model": "tiny", "judge_model": "judge", "prompt_version": 1,
     "samples": 1, "counts": {"scored": 0, "unscored": 0, "failed": 1},
     "averages": {"accuracy": None, "completeness": None, "fluency": None, "professionalism": None, "overall": None},
     "details": "/tmp/e/details.jsonl", "summary": "/tmp/e/summary.json"},
    {"type": "label_start", "source": "files", "labeler": "teacher", "tasks": 12, "cached": 4, "concurrency": 2,
     "out": "labels.jsonl"},
    {"type": "label_task", "task_id": "files_s0_00003", "status": "dropped", "attempts": 3,
     "problem": "no JSON object in the answer", "done": 5, "total": 12},
    {"type": "label_done", "out": "labels.jsonl", "samples": 11, "dropped": 1, "invalid_answers": 4, "asked": 8,
     "seconds": 2.5},
]  # fmt: skip


def test_the_schema_file_is_generated_from_the_classes() -> None:
    assert load_schema("events") == events_schema(), (
        "regenerate: python -m engine.events > engine/schemas/events.schema.json"
    )
    Draft202012Validator.check_schema(load_schema("events"))


def test_every_event_type_has_an_example_that_validates() -> None:
    names = [event_name(cls) for cls in EVENT_TYPES]
    assert len(names) == len(set(names))
    assert {example["type"] for example in EXAMPLES} == set(names)
    for example in EXAMPLES:
        assert event_problem(example) is None, example
        validator("events").validate(example)


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"type": "nope"}, "unknown event type 'nope'"),
        ({"text": "x"}, "unknown event type None"),
        ({"type": "delta", "role": "builder"}, "delta event at /text: missing required key"),
        ({"type": "delta", "role": "builder", "text": "x", "extra": 1}, "delta event at /extra: unknown key"),
        ({"type": "delta", "role": "router", "text": "x"}, "delta event at /role: must be one of"),
        ({"type": "recovered", "journal": "j", "was": "lost"}, "recovered event at /was: must be one of"),
    ],
)
def test_an_event_that_breaks_the_contract_says_where(event: dict[str, Any], problem: str) -> None:
    found = event_problem(event)
    assert found is not None
    assert found.startswith(problem)
    assert not validator("events").is_valid(event)


def test_the_check_writes_invalid_events_where_the_switch_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv(CHECK_ENV, str(log))
    check_event(EXAMPLES[0])
    assert not log.exists()
    check_event({"type": "delta"})
    assert log.read_text().startswith("delta event at /role: missing required key")
    monkeypatch.delenv(CHECK_ENV)
    check_event({"type": "delta"})
    assert log.read_text().count("\n") == 1


def test_the_switch_reaches_the_cli(tmp_path: Path) -> None:
    # The suite-wide fixture set it: events of a subprocess are checked too.
    assert os.environ[CHECK_ENV]
    workspace = tmp_path / "ws"
    workspace.mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    result = run_routeshell("plan", "apply", str(plan), "--workspace", str(workspace), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["type"] for line in result.stdout.splitlines()] == ["preview", "step", "applied"]


def test_a_json_line_with_an_undecodable_name_is_printable() -> None:
    event = {**PREVIEW, "summary": "write caf\udce9.txt"}
    line = json_line(event)
    line.encode("utf-8")
    assert json.loads(line) == event
    assert json_line(PREVIEW) == json.dumps(PREVIEW, ensure_ascii=False)


def test_a_json_line_escapes_what_a_terminal_would_act_on() -> None:
    hostile = "write \x7f\x9b31mred\x9b0m \u202egnp.exe\u2066 x\u2028y caf\u00e9 \u6587"
    event = {**PREVIEW, "summary": hostile}
    line = json_line(event)
    assert json.loads(line) == event
    assert not any(0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066\u2028" for c in line)
    assert "\\u009b31m" in line
    assert "\\u202e" in line
    assert "caf\u00e9 \u6587" in line  # other text stays as it is


def test_the_literal_types_match_the_schemas() -> None:
    decision = load_schema("decision")["properties"]
    assert tuple(decision["topology"]["enum"]) == TOPOLOGIES
    assert tuple(decision["roles"]["items"]["enum"]) == ROLES
    profile = load_schema("profile")["properties"]
    assert set(profile["llm"]["properties"]) == {"default", *ENDPOINT_ROLES}
    # A profile may not say "all": applying run steps unasked is a per-run choice (--approve all).
    assert set(profile["approval"]["enum"]) == set(APPROVAL_MODES) - {"all"}
    events = load_schema("events")["$defs"]
    assert tuple(events["delta"]["properties"]["role"]["enum"]) == ROLES
    assert tuple(events["recovered"]["properties"]["was"]["enum"]) == JOURNAL_STATES


def test_every_plan_engine_event_keeps_the_contract(tmp_path: Path) -> None:
    from engine.events import emit
    from engine.plans.apply import apply_plan, recover, undo_last
    from engine.plans.dry_run import preview_plan
    from engine.plans.journal import Journal, journals

    root = tmp_path / "ws"
    root.mkdir()
    seen: list[dict[str, Any]] = []

    def sink(event: dict[str, Any]) -> None:
        emit(seen.append, event)

    plan = {"version": 1, "steps": [{"op": "write", "path": "a.txt", "content": "a", "overwrite": False},
                                    {"op": "run", "argv": ["true"], "timeout_s": 10, "check": True}]}  # fmt: skip
    for preview in preview_plan(root, plan):
        sink(preview.as_event())
    apply_plan(root, plan, on_event=sink)
    undo_last(root, on_event=sink)
    # A journal left "applying", as by a kill -9 during an apply.
    Journal.create(root, {"version": 1, "steps": []})
    assert journals(root)[-1].state == "applying"
    recover(root, on_event=sink)
    assert [event["type"] for event in seen] == ["preview", "preview", "step", "step", "applied", "undone", "recovered"]
    assert [event_problem(event) for event in seen] == [None] * len(seen)
