"""Routers: the heuristic router's decisions, the decision schema, overrides and the registry's fallback."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ExitCode, UsageError
from engine.router.decision import DEFAULT_ROUNDS, ROLE_ORDER, TOPOLOGIES, InvalidDecision, RouterDecision
from engine.router.heuristic import HeuristicRouter
from engine.router.registry import load_router
from engine.schemas import load_schema, validator

LONG_TASK = (
    "Add a command line to the calculator.\n"
    "1. Parse the arguments with argparse.\n"
    "2. Then call the right function for the operator.\n"
    "3. Finally print the result and exit with status 0."
)

ROUTED = [
    ("add a docstring to hello.py", "single", ("builder",)),
    ("rename the variable x to count in calc.py", "single", ("builder",)),
    ("add tests for calc.add", "loop", ("builder", "tester")),
    ("fix the failing test in test_calc.py", "loop", ("builder", "tester")),
    ("refactor calc.py", "pipeline", ("builder", "refactor")),
    ("fix the bug in parse() and clean up the module", "loop", ("builder", "tester", "refactor")),
    (LONG_TASK, "pipeline", ("planner", "builder")),
    (LONG_TASK + " Write tests for it.", "loop", ("planner", "builder", "tester")),
]


@pytest.mark.parametrize(("task", "topology", "roles"), ROUTED)
def test_heuristic_routes_by_cues(task: str, topology: str, roles: tuple[str, ...]) -> None:
    decision = HeuristicRouter().route(task)
    assert (decision.topology, decision.roles) == (topology, roles)
    assert decision.router == "heuristic"
    assert decision.max_rounds == DEFAULT_ROUNDS
    assert decision.reason
    validator("decision").validate(decision.as_json())


def test_reasons_name_the_cues() -> None:
    assert "so the builder alone" in HeuristicRouter().route("add a docstring").reason
    assert "'tests'" in HeuristicRouter().route("add tests for calc.add").reason
    assert "'refactor'" in HeuristicRouter().route("refactor calc.py").reason
    assert "planner first" in HeuristicRouter().route(LONG_TASK).reason


def test_a_very_long_task_gets_a_planner_and_its_reason_fits_the_schema() -> None:
    task = "make the output of the report nicer " * 20 + "and fix the bug, then refactor and clean up"
    decision = HeuristicRouter(max_rounds=5).route(task)
    assert decision.roles == ("planner", "builder", "tester", "refactor")
    assert decision.max_rounds == 5
    assert len(decision.reason) <= 500
    validator("decision").validate(decision.as_json())


def test_from_json_puts_roles_in_canonical_order_and_fills_defaults() -> None:
    decision = RouterDecision.from_json({"topology": "pipeline", "roles": ["refactor", "builder", "planner"]})
    assert decision.roles == ("planner", "builder", "refactor")
    assert (decision.max_rounds, decision.reason, decision.router) == (DEFAULT_ROUNDS, "", "")
    assert RouterDecision.from_json(decision.as_json()) == decision


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"topology": "single", "roles": ["tester"]}, '"builder"'),
        ({"topology": "single", "roles": ["builder", "reviewer"]}, "/roles/1"),
        ({"topology": "star", "roles": ["builder"]}, "/topology"),
        ({"topology": "loop", "roles": ["builder", "builder"]}, "repeat"),
        ({"topology": "loop", "roles": []}, "/roles"),
        ({"topology": "loop", "roles": ["builder"], "max_rounds": 0}, "/max_rounds"),
        ({"topology": "loop", "roles": ["builder"], "extra": 1}, "/extra"),
        ({"roles": ["builder"]}, "/topology"),
        ("loop", "must be of type object"),
    ],
)
def test_from_json_rejects_invalid_documents_in_one_line(document: Any, needle: str) -> None:
    with pytest.raises(InvalidDecision) as caught:
        RouterDecision.from_json(document)
    message = str(caught.value)
    assert message.startswith("invalid router decision at ")
    assert needle in message
    assert "\n" not in message
    assert caught.value.exit_code == ExitCode.USAGE


def test_with_topology_single_keeps_only_the_builder() -> None:
    decision = HeuristicRouter().route(LONG_TASK + " Write tests for it.")
    forced = decision.with_topology("single")
    assert (forced.topology, forced.roles, forced.router) == ("single", ("builder",), "override")
    assert forced.reason.startswith("--topology single (the heuristic suggested loop: ")
    assert forced.max_rounds == decision.max_rounds


def test_with_topology_loop_adds_the_tester_and_drops_the_planner() -> None:
    forced = HeuristicRouter().route(LONG_TASK + " Then refactor it.").with_topology("loop")
    assert forced.roles == ("builder", "tester", "refactor")
    assert "suggested pipeline" in forced.reason


def test_with_topology_pipeline_keeps_the_roles() -> None:
    decision = HeuristicRouter().route("add tests for calc.add")
    forced = decision.with_topology("pipeline")
    assert (forced.topology, forced.roles) == ("pipeline", decision.roles)
    assert "the heuristic suggested loop: mentions 'tests'" in forced.reason


def test_with_topology_keeps_the_reason_within_the_schema() -> None:
    decision = RouterDecision("single", ("builder",), reason="x" * 500, router="heuristic")
    forced = decision.with_topology("pipeline")
    assert len(forced.reason) == 500
    validator("decision").validate(forced.as_json())


def test_with_topology_rejects_an_unknown_topology() -> None:
    with pytest.raises(UsageError, match="unknown topology 'star'"):
        HeuristicRouter().route("add a file").with_topology("star")


def test_load_router_heuristic() -> None:
    router, note = load_router({"kind": "heuristic"})
    assert isinstance(router, HeuristicRouter)
    assert note is None
    assert isinstance(load_router({})[0], HeuristicRouter)


def test_load_router_falls_back_with_a_note() -> None:
    router, note = load_router({"kind": "model", "model_dir": "x"})
    assert router.name == "heuristic"
    assert note is not None
    assert "not a router directory" in note
    assert "heuristic" in note
    router, note = load_router({"kind": "learned-by-magic"})
    assert router.name == "heuristic"
    assert note is not None
    assert "'learned-by-magic'" in note


def test_code_and_schema_are_in_step() -> None:
    schema = load_schema("decision")
    properties = schema["properties"]
    assert set(RouterDecision("single", ("builder",)).as_json()) == set(properties)
    assert tuple(properties["topology"]["enum"]) == TOPOLOGIES
    assert tuple(properties["roles"]["items"]["enum"]) == ROLE_ORDER
    assert properties["max_rounds"]["default"] == DEFAULT_ROUNDS
    assert properties["reason"]["maxLength"] == 500


@pytest.mark.parametrize(
    "task",
    [
        "tidy up the downloads folder",
        "clean up logs: delete the .tmp files",
        "move every PDF from 2025 into finance/2025",
        "tag the architecture notes and fix the tag on the old ones",
    ],
)
def test_file_management_goes_to_the_builder_alone(task: str) -> None:
    decision = HeuristicRouter().route(task)
    assert (decision.topology, decision.roles) == ("single", ("builder",))
    assert "file management" in decision.reason


def test_a_cleanup_of_code_is_still_a_refactor() -> None:
    assert HeuristicRouter().route("clean up utils.py").roles == ("builder", "refactor")
