"""Quality against cost from oracle records: pass rate, tokens, APGR and CPT, computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.router.candidates import candidate_index, candidates
from engine.router.cost import CHEAP, EXPENSIVE, Attempt, cost_report, read_oracle

# Four tasks: single passes the first two (10 tokens), the full loop passes all four (100 tokens).
TABLE = {f"t{n}": {CHEAP: Attempt(n < 2, 10), EXPENSIVE: Attempt(True, 100)} for n in range(4)}


def _sure(key: str, p: float = 1.0) -> list[float]:
    row = [0.0] * len(candidates())
    row[candidate_index()[key]] = p
    row[candidate_index()[CHEAP if key != CHEAP else EXPENSIVE]] += 1 - p
    return row


def test_a_router_that_knows_which_tasks_need_more_recovers_the_gap_cheaply() -> None:
    # Sure of single where single passes, of the loop elsewhere.
    perfect = {f"t{n}": _sure(CHEAP if n < 2 else EXPENSIVE, 0.9) for n in range(4)}
    report = cost_report(perfect, TABLE)
    assert report is not None
    assert report["tasks"] == 4
    assert report["pass_rate"] == 1.0
    assert report["mean_tokens"] == 55.0
    assert report["cpt50"] == 0.5
    assert report["cpt80"] == 0.5
    assert report["apgr"] == pytest.approx(0.75)


def test_always_single_recovers_nothing_and_records_without_both_ends_are_skipped() -> None:
    single = {f"t{n}": _sure(CHEAP) for n in range(4)}
    report = cost_report(single, TABLE)
    assert report is not None
    assert (report["pass_rate"], report["mean_tokens"]) == (0.5, 10.0)
    assert cost_report({"other": _sure(CHEAP)}, TABLE) is None


def test_records_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"key": "k", "task_id": "t", "candidate": CHEAP, "passed": True, "tokens": 5}) + "\n")
    assert read_oracle(path) == {"t": {CHEAP: Attempt(True, 5)}}
    path.write_text(json.dumps({"task_id": "t", "candidate": "loop:nobody", "passed": True, "tokens": 5}) + "\n")
    with pytest.raises(UsageError, match="unknown candidate"):
        read_oracle(path)


def test_a_router_sure_of_an_untried_decision_gets_the_tried_one_that_runs_most_like_it() -> None:
    full_pipeline = [0.0] * len(candidates())
    full_pipeline[candidate_index()["pipeline:planner+builder+tester+refactor"]] = 1.0
    report = cost_report({f"t{n}": full_pipeline for n in range(4)}, TABLE)
    assert report is not None
    assert (report["pass_rate"], report["mean_tokens"]) == (1.0, 100.0)
