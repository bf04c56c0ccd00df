"""Router data: the candidate set, the task sources, the fixed split, the generator and the samples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.router.candidates import MAX_LOOP_ROUNDS, candidate_by_key, candidates, canonical
from engine.router.decision import RouterDecision
from engine.router.generator import KINDS, REASONS, generate_request, generate_requests
from engine.router.heuristic import HeuristicRouter
from engine.router.labels import (
    SYSTEM_PROMPT,
    gold_label,
    heuristic_label,
    make_sample,
    read_samples,
    source_of,
    write_samples,
)
from engine.router.tasks import (
    TaskSourceError,
    fold_of,
    folds,
    humaneval_tasks,
    icalfa_tasks,
    is_held_out,
    load_tasks,
    partition,
    user_tasks,
)
from engine.schemas import validator


def test_the_candidates_are_every_distinct_run_and_each_validates() -> None:
    found = candidates()
    assert len(found) == 1 + 7 + 4 * MAX_LOOP_ROUNDS
    assert len({c.key for c in found}) == len(found)
    for candidate in found:
        decision = candidate.decision("why", router="test")
        assert validator("decision").is_valid(decision.as_json())
        assert canonical(decision) == candidate
        assert candidate_by_key(candidate.key) == candidate


@pytest.mark.parametrize(
    ("decision", "key"),
    [
        (RouterDecision("single", ("planner", "builder", "tester"), 7), "single:builder"),
        (RouterDecision("pipeline", ("builder",), 1), "single:builder"),
        (RouterDecision("pipeline", ("builder", "refactor"), 9), "pipeline:builder+refactor"),
        (RouterDecision("loop", ("builder",), 10), f"loop:builder+tester:{MAX_LOOP_ROUNDS}"),
        (RouterDecision("loop", ("planner", "builder", "tester"), 2), "loop:planner+builder+tester:2"),
    ],
)
def test_any_decision_maps_to_the_candidate_that_runs_the_same_way(decision: RouterDecision, key: str) -> None:
    assert canonical(decision).key == key


def test_humaneval_comes_from_the_package_with_its_checks() -> None:
    tasks = humaneval_tasks()
    assert len(tasks) == 164
    strlen = next(t for t in tasks if t.task_id == "HumanEval_23_strlen")
    assert strlen.user_turn.startswith("Task: Implement the following Python function:\n\ndef strlen(")
    assert strlen.tests is not None
    assert strlen.tests.rstrip().endswith("check(strlen)")
    assert strlen.gold is None


def test_icalfa_is_read_from_the_package_data_without_importing_it() -> None:
    import sys

    tasks = icalfa_tasks()
    assert len(tasks) == 300
    assert len({t.task_id for t in tasks}) == 300
    assert all(t.gold is not None and t.gold.key == "single:builder" for t in tasks)
    assert "icalfa" not in sys.modules


def test_the_split_is_fixed_by_task_id_and_folds_cover_the_pool() -> None:
    tasks = humaneval_tasks() + icalfa_tasks()
    pool, held = partition(tasks)
    assert 0.12 < len(held) / len(tasks) < 0.28
    assert all(is_held_out(t.task_id) for t in held)
    assert not any(is_held_out(t.task_id) for t in pool)
    # The same ids land in the same place every time: these are fixed, not drawn.
    assert [is_held_out(f"task-{n}") for n in range(8)] == [is_held_out(f"task-{n}") for n in range(8)]
    pairs = folds(pool)
    assert len(pairs) == 5
    for k, (train, validation) in enumerate(pairs):
        assert {t.task_id for t in train}.isdisjoint(t.task_id for t in validation)
        assert len(train) + len(validation) == len(pool)
        assert all(fold_of(t.task_id) == k for t in validation)


def test_the_generator_is_seeded_per_request_and_varied() -> None:
    first = generate_requests(400, seed=3)
    assert generate_requests(50, seed=3) == first[:50]
    assert generate_request(123, seed=3) == first[123]
    assert generate_requests(50, seed=4) != first[:50]
    assert len({t.text for t in first}) > 390
    labels = Counter(t.gold.key for t in first if t.gold is not None)
    assert set(labels) <= set(REASONS)
    assert len(labels) >= 7
    assert {name for name, _, _ in KINDS} >= {"move", "archive", "classify", "split_module", "rename_symbol", "fix"}
    # Phrasing, not keywords, decides: the heuristic router disagrees with a good share of them.
    agree = sum(canonical(HeuristicRouter().route(t.text)) == t.gold for t in first)
    assert 0.3 < agree / len(first) < 0.9


def test_a_user_file_gives_tasks_with_or_without_decisions(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"task": "move the logs"},
        {"task": "fix test_x", "task_id": "t2", "decision": {"topology": "loop", "roles": ["builder", "tester"]}},
        make_sample(load_tasks("files", count=1)[0], RouterDecision("single", ("builder",)), "gold"),
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "\n")
    tasks = user_tasks(path)
    assert [t.task_id for t in tasks] == ["mine_1", "t2", "files_s0_00000"]
    assert tasks[0].gold is None
    assert tasks[1].gold is not None
    assert tasks[1].gold.key == "loop:builder+tester:3"
    assert not tasks[2].text.startswith("Task: ")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"task": ""}\n', "mine.jsonl:1"),
        (b'{"task": "x", "decision": {"topology": "star", "roles": ["builder"]}}\n', "mine.jsonl:1"),
        (b'{"task": "x", "colour": 1}\n', "unknown key"),
        (b'{"task": "a", "task_id": "same"}\n{"task": "b", "task_id": "same"}\n', "appears twice"),
        (b"\xff\xfe\n", "not UTF-8"),
        (b"{nope\n", "not JSON"),
        (b"\n\n", "holds no task"),
    ],
)
def test_a_bad_user_file_is_one_error_naming_the_line(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes(content)
    with pytest.raises(TaskSourceError, match=needle) as caught:
        user_tasks(path)
    assert "\n" not in str(caught.value)


def test_an_unknown_source_is_named() -> None:
    with pytest.raises(TaskSourceError, match="neither humaneval, icalfa, files nor an existing JSONL file"):
        load_tasks("nowhere.jsonl")


def test_samples_are_the_original_chat_format_and_read_back(tmp_path: Path) -> None:
    tasks = humaneval_tasks()[:3] + generate_requests(3)
    samples = [make_sample(t, heuristic_label(t) if t.gold is None else gold_label(t), "gold") for t in tasks]
    first = samples[0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][0]["content"] == SYSTEM_PROMPT
    assert first["sample_type"] == "humaneval_gold"
    assert first["origin_task_id"] == "HumanEval_0_has_close_elements"
    assert validator("decision").is_valid(json.loads(first["messages"][2]["content"]))
    path = tmp_path / "labels.jsonl"
    write_samples(path, samples)
    back, dropped = read_samples([path])
    assert dropped == 0
    assert [b.task.task_id for b in back] == [t.task_id for t in tasks]
    assert back[3].label == tasks[3].gold
    assert back[0].task.source == "humaneval"
    assert source_of("humaneval_teacher_distilled") == "humaneval"
    assert source_of("mine") == "mine"


def test_a_sample_without_a_usable_answer_is_an_error_or_dropped(tmp_path: Path) -> None:
    good = make_sample(generate_request(0), gold_label(generate_request(0)), "gold")
    no_answer = {"messages": good["messages"][:2], "origin_task_id": "b"}
    bad_answer = {
        "messages": [*good["messages"][:2], {"role": "assistant", "content": "loop it"}],
        "origin_task_id": "c",
    }
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in (good, no_answer, bad_answer)))
    with pytest.raises(UsageError, match=r"labels\.jsonl:2"):
        read_samples([path])
    back, dropped = read_samples([path], drop_no_output=True)
    assert len(back) == 1
    assert dropped == 2


def test_gold_labels_need_a_source_that_knows_them() -> None:
    with pytest.raises(UsageError, match="carries no decision"):
        gold_label(humaneval_tasks()[0])
