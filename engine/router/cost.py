"""Quality against cost, from the oracle's records: what a router's choices would have passed, and
what they would have spent.

The oracle ran a few candidate decisions on each task (``routeshell train labels --labeler
oracle``), recording pass or fail and the tokens spent. A router is scored on the tasks that have
records by its most probable *tried* candidate. Following RouteLLM, ``single`` is the cheap choice
and the full loop (every role) the expensive one, and a threshold on the router's probability
that more than one agent is needed trades the two: at threshold t a task gets ``single`` unless
that probability is at least t, and then the router's best tried candidate other than ``single``.
Sweeping t gives the curve of pass rate against tokens; the *performance gap recovered* at a point
is (pass rate - single's) / (full loop's - single's); APGR is its mean over the share of tasks
routed past ``single`` (the area under the curve), and CPT(x%) the smallest such share whose gap
recovered reaches x%.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TypedDict

from engine.errors import UsageError
from engine.jsonl import read_jsonl
from engine.names import display_name
from engine.router.candidates import Candidate, candidate_index, candidates

CHEAP = "single:builder"
EXPENSIVE = "loop:planner+builder+tester+refactor:3"


@dataclass(frozen=True)
class Attempt:
    """One oracle record: did the candidate pass the task, and what did it spend."""

    passed: bool
    tokens: int


#: task id -> candidate key -> attempt
OracleTable = dict[str, dict[str, Attempt]]


class CurvePoint(TypedDict):
    threshold: float
    past_single: float
    pass_rate: float
    mean_tokens: float
    gap_recovered: float | None


class CostReport(TypedDict):
    """One router's quality and cost on the tasks with oracle records."""

    tasks: int
    pass_rate: float
    mean_tokens: float
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    curve: list[CurvePoint]


def read_oracle(path: Path) -> OracleTable:
    """Read the oracle's records file (``OUT.oracle.jsonl``)."""
    table: OracleTable = {}
    for number, row in read_jsonl(path):
        if not isinstance(row, dict) or not {"task_id", "candidate", "passed", "tokens"} <= set(row):
            raise UsageError(f"{display_name(str(path))}:{number}: not an oracle record")
        if row["candidate"] not in candidate_index():
            raise UsageError(f"{display_name(str(path))}:{number}: unknown candidate {json.dumps(row['candidate'])}")
        table.setdefault(str(row["task_id"]), {})[row["candidate"]] = Attempt(bool(row["passed"]), int(row["tokens"]))
    return table


def _closeness(a: Candidate, b: Candidate) -> int:
    """How alike two decisions run: shared roles count, differing roles and topology count against."""
    shared, differ = len(set(a.roles) & set(b.roles)), len(set(a.roles) ^ set(b.roles))
    return 2 * (a.topology == b.topology) + shared - differ - abs(a.max_rounds - b.max_rounds) * (a.topology == "loop")


def _choice(probabilities: Sequence[float], tried: Mapping[str, Attempt], *, skip: str | None = None) -> str:
    """The router's most probable tried candidate; among equals (a router sure of an untried one),
    the one that runs most like the router's own first choice."""
    every = candidates()
    top = max(range(len(every)), key=lambda i: (probabilities[i], -i))
    options = [k for k in tried if k != skip] or list(tried)
    index = candidate_index()
    return max(options, key=lambda k: (probabilities[index[k]], _closeness(every[index[k]], every[top])))


def cost_report(routed: Mapping[str, Sequence[float]], table: OracleTable) -> CostReport | None:
    """Score a router's probabilities per task id (``routed``) against the oracle ``table``.

    Returns None when no task has records of both ``single`` and the full loop.
    """
    keys = [c.key for c in candidates()]
    tasks = [t for t in routed if t in table and CHEAP in table[t] and EXPENSIVE in table[t]]
    if not tasks:
        return None
    cheap = sum(table[t][CHEAP].passed for t in tasks) / len(tasks)
    dear = sum(table[t][EXPENSIVE].passed for t in tasks) / len(tasks)
    need = {t: 1 - routed[t][keys.index(CHEAP)] for t in tasks}
    chosen = {t: table[t][_choice(routed[t], table[t])] for t in tasks}
    upgrade = {t: table[t][_choice(routed[t], table[t], skip=CHEAP)] for t in tasks}
    curve: list[CurvePoint] = []
    for threshold in sorted({0.0, 1.01, *need.values()}):
        picks = [upgrade[t] if need[t] >= threshold else table[t][CHEAP] for t in tasks]
        rate = sum(a.passed for a in picks) / len(tasks)
        recovered = round((rate - cheap) / (dear - cheap), 4) if dear != cheap else None
        curve.append({"threshold": round(threshold, 6),
                      "past_single": round(sum(need[t] >= threshold for t in tasks) / len(tasks), 4),
                      "pass_rate": round(rate, 4), "mean_tokens": round(sum(a.tokens for a in picks) / len(tasks), 1),
                      "gap_recovered": recovered})  # fmt: skip
    curve.sort(key=lambda p: p["past_single"])
    apgr = cpt50 = cpt80 = None
    if dear != cheap:
        points = [(p["past_single"], p["gap_recovered"] or 0.0) for p in curve]
        apgr = round(sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points)), 4)
        cpt50 = next((x for x, y in points if y >= 0.5), None)
        cpt80 = next((x for x, y in points if y >= 0.8), None)
    return {"tasks": len(tasks), "pass_rate": round(sum(a.passed for a in chosen.values()) / len(tasks), 4),
            "mean_tokens": round(sum(a.tokens for a in chosen.values()) / len(tasks), 1), "apgr": apgr,
            "cpt50": cpt50, "cpt80": cpt80, "curve": curve}  # fmt: skip
