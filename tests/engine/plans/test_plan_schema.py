"""A plan's schema errors, each step checked against its own op's shape, and too many steps
refused for their number alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.plans.model import InvalidPlan, PlanProblem, load_plan, plan_problems
from engine.plans.op_table import OPS
from engine.plans.plan_schema import max_steps, plan_schema_errors
from engine.schemas import describe_error, load_schema, pointer, validator

#: Values of every kind a step's keys may be given, right or wrong.
ODD_VALUES: list[Any] = [None, 5, "", "/abs", "a", [], [1], {"glob": 1}, [{}], {"glob": "*", "no": 1}]


def odd_steps() -> list[Any]:
    """Steps of every op with keys missing, unknown, or of the wrong kind, and steps with no known op."""
    keys = sorted({key for shape in load_schema("plan")["$defs"].values() for key in shape.get("properties", {})})
    steps: list[Any] = [3, "mkdir", None, [], {}, {"op": "nope"}, {"op": 1}, {"path": "a"}]
    for op in OPS:
        steps.append({"op": op})
        steps.append({"op": op, "bogus": True})
        steps += [{"op": op, key: ODD_VALUES[(at + n) % len(ODD_VALUES)]} for n, key in enumerate(keys)
                  for at in range(0, len(ODD_VALUES), 3)]  # fmt: skip
    return steps


def described(errors: list[Any]) -> list[tuple[str, str]]:
    return [(pointer(where), reason) for where, reason in map(describe_error, errors)]


def test_each_step_is_refused_as_the_whole_schema_refuses_it() -> None:
    document = {"version": 2, "goal": 7, "steps": odd_steps(), "extra": 1}
    whole = sorted(validator("plan").iter_errors(document), key=lambda error: list(error.absolute_path))
    assert len(whole) > 1000
    assert described(plan_schema_errors(document)) == described(whole)


@pytest.mark.parametrize("document", [[], "plan", {"steps": "x"}, {"version": 1, "steps": {}}, {"version": 1}])
def test_what_is_no_list_of_steps_is_refused_as_the_whole_schema_refuses_it(document: Any) -> None:
    whole = sorted(validator("plan").iter_errors(document), key=lambda error: list(error.absolute_path))
    assert described(plan_schema_errors(document)) == described(whole)


def test_a_plan_with_more_steps_than_the_schema_allows_is_refused_for_their_number_alone(tmp_path: Path) -> None:
    # Every step is wrong too: checking them would take as long as the plan is long, to refuse it anyway.
    steps = [{"op": "mkdir", "path": "/abs", "bogus": 1}] * (max_steps() + 1)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "goal": 5, "steps": steps}))
    with pytest.raises(InvalidPlan) as raised:
        load_plan(plan)
    assert raised.value.problems == [
        PlanProblem("/goal", "must be of type string (got integer 5)"),
        PlanProblem("/steps", f"must have at most {max_steps()} items"),
    ]


def test_a_plan_of_as_many_steps_as_the_schema_allows_has_each_step_checked() -> None:
    steps: list[Any] = [{"op": "mkdir", "path": f"d{n}"} for n in range(max_steps())]
    steps[-1] = {"op": "mkdir", "path": "/abs"}
    assert [str(problem) for problem in plan_problems({"version": 1, "steps": steps})] == [
        f"/steps/{max_steps() - 1}/path: must be a relative path inside the workspace (no leading '/', no NUL byte, "
        "not the root itself, never in a .git at any depth or in .routeshell when the step changes it; a name "
        'that is not UTF-8 spells its bytes as \\udc80-\\udcff escapes) (got "/abs")'
    ]


@pytest.mark.parametrize("op", [["mkdir"], {"name": "mkdir"}])
def test_a_step_whose_op_is_a_list_or_an_object_is_a_problem_of_its_op(tmp_path: Path, op: Any) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "steps": [{"op": op, "path": "a"}]}))
    with pytest.raises(InvalidPlan) as raised:
        load_plan(plan)
    assert [problem.pointer for problem in raised.value.problems] == ["/steps/0/op"]
    assert raised.value.problems[0].reason.startswith('must be one of "mkdir", "write"')
