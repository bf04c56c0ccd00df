"""The agent graph end to end: real HTTP to a scripted model, a real workspace, real applies and test runs.

The graph is compiled inline with ``build_graph`` and every test runs over an in-memory and a SQLite
checkpointer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from agents.graph import build_graph
from agents.state import AgentContext
from engine.plans.apply import undo_last
from engine.plans.journal import journals
from engine.plans.runner import bubblewrap
from engine.router.decision import Router
from engine.router.heuristic import HeuristicRouter
from tests.agents.calc_task import (
    CALC,
    FIX,
    FIXED,
    TEST_CODE,
    TESTS,
    Event,
    chat_clients,
    journal_count,
    of,
    patch,
    role_requests,
)
from tests.helpers import ROUTESHELL, tree
from tests.scripted_llm import Reply, ScriptedLLM

# -- graph level, over both checkpointers -------------------------------------------------------


class GraphRun:
    """The compiled graph on one thread, driven the way a session drives it; events are collected."""

    def __init__(self, checkpointer: Any, root: Path, llm: ScriptedLLM, router: Router | None = None,
                 **context: Any) -> None:  # fmt: skip
        self.graph = build_graph(checkpointer)
        self.clients = chat_clients(llm)
        self.context = AgentContext(root=root, clients=self.clients, router=router or HeuristicRouter(),
                                    thread_id="t1", **context)  # fmt: skip
        self.events: list[Event] = []
        #: Called with each node's name once its update is checkpointed, before the next node runs.
        self.after_node: Callable[[str], None] | None = None

    def start(self, task: str) -> dict[str, Any] | None:
        """Run until done or paused; return the approval payload when paused."""
        return self._drive({"task": task})

    def resume(self, answer: dict[str, Any]) -> dict[str, Any] | None:
        return self._drive(Command(resume=answer))

    def _drive(self, graph_input: Any) -> dict[str, Any] | None:
        approval = None
        config = {"configurable": {"thread_id": self.context.thread_id}}
        for mode, chunk in self.graph.stream(graph_input, config, context=self.context,
                                             stream_mode=["custom", "updates"], durability="sync"):  # fmt: skip
            if mode == "custom":
                self.events.append(chunk)
            elif "__interrupt__" in chunk:
                approval = dict(chunk["__interrupt__"][0].value)
            elif self.after_node is not None:
                for node in chunk:
                    self.after_node(node)
        return approval

    @property
    def final(self) -> dict[str, Any]:
        [final] = of(self.events, "final")
        return final


@pytest.fixture(params=["memory", "sqlite"])
def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemorySaver()
        return
    conn = sqlite3.connect(tmp_path / "checkpoints.sqlite", check_same_thread=False)
    yield SqliteSaver(conn)
    conn.close()


@pytest.fixture
def graph_run(checkpointer: Any, root: Path, scripted_llm: ScriptedLLM) -> Iterator[Callable[..., GraphRun]]:
    made: list[GraphRun] = []

    def make(**context: Any) -> GraphRun:
        made.append(GraphRun(checkpointer, context.pop("root", root), scripted_llm, **context))
        return made[-1]

    yield make
    for run in made:
        next(iter(run.clients.values())).close()
    assert scripted_llm.unexpected == 0


@pytest.mark.parametrize("approval", ["all", "auto"])
def test_single_builder_plan_is_applied_and_undoable(
    graph_run: Callable[..., GraphRun], workspace: Path, scripted_llm: ScriptedLLM, approval: str
) -> None:
    before = tree(workspace)  # the sample workspace, hostile names and all
    plan = patch('f"hello {name}"', 'f"hi {name}"', "src/pkg/hello.py")
    scripted_llm.enqueue(Reply(plan))
    run = graph_run(root=workspace, approval=approval)
    assert run.start("say hi instead of hello") is None
    kinds = [event["type"] for event in run.events if event["type"] != "delta"]
    assert kinds == ["route", "role_start", "usage", "role_end", "plan", "step", "applied", "reviewed", "final"]
    assert of(run.events, "route")[0]["topology"] == "single"
    assert "".join(event["text"] for event in of(run.events, "delta")) == json.dumps(plan)
    final = run.final
    [journal] = journals(workspace)
    assert final["ok"] is True
    assert final["undo"] == journal.id == of(run.events, "applied")[0]["journal"]
    assert final["journals"] == [journal.id]
    assert final["usage"]["total_tokens"] == 15
    assert final["per_role"]["builder"]["total_tokens"] == 15
    assert journal.meta["origin"] == "t1/p1"
    assert 'f"hi {name}"' in (workspace / "src/pkg/hello.py").read_text()
    assert undo_last(workspace).id == journal.id
    assert tree(workspace) == before


def test_pipeline_passes_the_planners_steps_to_the_builder(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    steps = ["Change the minus in add to a plus.", "Check add(2, 3) is 5."]
    scripted_llm.enqueue(Reply({"steps": steps}), Reply(FIX), Reply(TESTS))
    run = graph_run(approval="all", topology="pipeline")
    task = "1. fix add in calc.py.\n2. then write tests for it.\n3. finally run them."
    assert run.start(task) is None
    [route] = of(run.events, "route")
    assert (route["topology"], route["roles"], route["router"]) == ("pipeline", ["planner", "builder", "tester"],
                                                                    "override")  # fmt: skip
    assert "the heuristic suggested loop" in route["reason"]
    assert [e["role"] for e in of(run.events, "role_start")] == ["planner", "builder", "tester"]
    builder_prompt = role_requests(scripted_llm, "builder")[0]["messages"][1]["content"]
    assert "The planner's steps:\n1. Change the minus in add to a plus.\n2. Check add(2, 3) is 5." in builder_prompt
    assert "def add(a, b):" in builder_prompt  # the workspace context comes with it
    assert run.final["ok"] is True
    assert run.final["summary"].endswith("tests pass (round 1)")
    assert (root / "calc.py").read_text() == FIXED


def test_loop_feeds_the_failing_tail_back_to_the_builder(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(patch("a - b", "a * b")), Reply(TESTS), Reply(patch("a * b", "a + b")), Reply(TESTS))
    run = graph_run(approval="all")
    assert run.start("fix the failing test for add in calc.py") is None
    assert of(run.events, "route")[0]["topology"] == "loop"
    assert [(e["role"], e["round"]) for e in of(run.events, "role_start")] == [
        ("builder", 1), ("tester", 1), ("builder", 2), ("tester", 2)]  # fmt: skip
    tests = of(run.events, "test")
    assert [t["passed"] for t in tests] == [False, True]
    assert "add(2, 3) returned 6" in tests[0]["tail"]
    reviewed = of(run.events, "reviewed")
    assert all(set(event) == {"type", "id", "role", "round", "journal", "status", "summary"} for event in reviewed)
    assert [(e["id"], e["role"], e["round"]) for e in reviewed] == [
        ("p1", "builder", 1), ("p2", "tester", 1), ("p3", "builder", 2), ("p4", "tester", 2)]  # fmt: skip
    first, second = (r["messages"][1]["content"] for r in role_requests(scripted_llm, "builder"))
    assert "The tests failed" not in first
    assert "Round 2. The tests failed after your last plan:" in second
    assert "AssertionError: add(2, 3) returned 6" in second
    assert run.final["ok"] is True
    assert run.final["summary"].endswith("tests pass (round 2)")
    assert (root / "calc.py").read_text() == FIXED
    assert run.final["journals"] == [j.id for j in journals(root)]


def test_loop_that_runs_out_of_rounds_fails(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(patch("a - b", "a * b")), Reply(TESTS), Reply(patch("a * b", "a ** b")), Reply(TESTS))
    run = graph_run(approval="all", router=HeuristicRouter(max_rounds=2))
    assert run.start("fix the failing test for add") is None
    assert [t["passed"] for t in of(run.events, "test")] == [False, False]
    final = run.final
    assert final["ok"] is False
    assert final["summary"] == "the tests still fail after 2 rounds"
    assert len(final["journals"]) == 4
    assert scripted_llm.pending() == 0


def test_loop_refactor_is_applied_and_retested(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    tidy = patch("    return a + b", '    """Return the sum of a and b."""\n    return a + b')
    scripted_llm.enqueue(Reply(FIX), Reply(TESTS), Reply(tidy))
    run = graph_run(approval="all")
    assert run.start("fix add in calc.py and refactor it") is None
    assert of(run.events, "route")[0]["roles"] == ["builder", "tester", "refactor"]
    assert [(e["role"], e["status"]) for e in of(run.events, "reviewed")] == [
        ("builder", "applied"), ("tester", "applied"), ("refactor", "applied")]  # fmt: skip
    assert [t["passed"] for t in of(run.events, "test")] == [True, True]
    assert run.final["ok"] is True
    assert '"""Return the sum of a and b."""' in (root / "calc.py").read_text()
    assert run.final["undo"] == journals(root)[-1].id
    assert len(run.final["journals"]) == 3


def test_a_refactor_that_breaks_the_tests_is_undone(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX), Reply(TESTS), Reply(patch("a + b", "b - a")))
    run = graph_run(approval="all")
    assert run.start("fix add in calc.py and refactor it") is None
    refactor = of(run.events, "reviewed")[-1]
    assert (refactor["role"], refactor["status"]) == ("refactor", "reverted")
    assert f"so journal {refactor['journal']} was undone" in refactor["summary"]
    assert [t["passed"] for t in of(run.events, "test")] == [True, False, True]
    assert (root / "calc.py").read_text() == FIXED
    assert [j.state for j in journals(root)] == ["applied", "applied", "undone"]
    assert run.final["ok"] is True
    assert run.final["journals"] == [j.id for j in journals(root)[:2]]


def test_the_undo_after_a_failed_retest_leaves_a_plan_applied_meanwhile_alone(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:  # fmt: skip
    # Another routeshell applies a plan while the refactor's tests run (without bubblewrap, so the
    # test command can reach the state directory): the undo must take back the refactor, not that.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setenv("PATH", str(bin_dir))
    # The bubblewrap probe is cached per process: probe again on this PATH, and after the test.
    bubblewrap.cache_clear()
    request.addfinalizer(bubblewrap.cache_clear)
    other = {"version": 1, "goal": "the user's own plan", "steps": [
        {"op": "write", "path": "user.txt", "content": "mine\n"}]}  # fmt: skip
    apply_other = [ROUTESHELL, "plan", "apply", "-", "--yes", "--workspace", str(root)]
    env = {"PYTHONPATH": str(Path(__file__).parents[2]), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = TEST_CODE.replace(
        "result = add(2, 3)\n",
        f"""result = add(2, 3)
import os, subprocess
if result != 5 and not os.path.exists("user.txt"):
    subprocess.run({apply_other!r}, input={json.dumps(other)!r}, text=True, env={env!r}, check=True)
""",
    )
    tests = {**TESTS, "steps": [{**TESTS["steps"][0], "content": code}, TESTS["steps"][1]]}
    scripted_llm.enqueue(Reply(FIX), Reply(tests), Reply(patch("a + b", "b - a")))
    run = graph_run(approval="all")
    assert run.start("fix add in calc.py and refactor it") is None
    refactor = of(run.events, "reviewed")[-1]
    assert (refactor["role"], refactor["status"]) == ("refactor", "reverted")
    assert (root / "calc.py").read_text() == FIXED
    assert (root / "user.txt").read_text() == "mine\n"
    states = [(j.state, j.meta["via"]) for j in journals(root)]
    assert states == [("applied", "agent"), ("applied", "agent"), ("undone", "agent"), ("applied", "cli")]


def test_ask_pauses_with_a_preview_then_approve_applies(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    run = graph_run(approval="ask")
    approval = run.start("use a plus in add")
    assert approval is not None
    assert (approval["id"], approval["role"], approval["runs"], approval["thread"]) == ("p1", "builder", False, "t1")
    assert approval["plan"]["steps"] == [{**FIX["steps"][0], "count": 1}]
    [preview] = approval["preview"]
    assert (preview["index"], preview["op"], preview["summary"], preview["problem"]) == (0, "patch", "patch calc.py",
                                                                                          None)  # fmt: skip
    assert "-    return a - b\n+    return a + b\n" in preview["diff"]
    assert (root / "calc.py").read_text() == CALC
    assert journal_count(root) == 0
    assert not of(run.events, "applied")
    assert not of(run.events, "final")
    assert run.resume({"action": "approve"}) is None
    assert run.final["ok"] is True
    assert (root / "calc.py").read_text() == FIXED


def test_the_preview_comes_after_crash_recovery(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    from engine.plans.apply import apply_plan
    from engine.plans.journal import Journal
    from engine.plans.model import normalise

    done = apply_plan(root, normalise({"version": 1, "steps": [{"op": "write", "path": "calc.py", "content": "x\n",
                                                                "overwrite": True}]}))  # fmt: skip
    Journal(root, done.journal_id).set_state("applying")  # what a kill before the state write leaves
    scripted_llm.enqueue(Reply(FIX))
    approval = graph_run(approval="ask").start("use a plus in add")
    assert approval is not None
    [preview] = approval["preview"]
    assert preview["problem"] is None
    assert "-    return a - b\n+    return a + b\n" in preview["diff"]
    assert [j.state for j in journals(root)] == ["rolled-back"]


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        ({"action": "reject"}, "rejected by the user; nothing from this plan was applied"),
        ({"action": "reject", "reason": "not like that"}, "not like that; nothing from this plan was applied"),
        (
            {"action": "edit", "plan": patch("a - b", "a + b", "../calc.py")},
            "the edited plan is invalid: /steps/0/path",
        ),
        ({"action": "edit", "plan": patch("no such text", "x")}, "the edited plan is invalid: /steps/0: "),
    ],
)
def test_a_rejected_plan_applies_nothing(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, answer: dict[str, Any], needle: str
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    run = graph_run(approval="ask")
    assert run.start("use a plus in add") is not None
    assert run.resume(answer) is None
    assert of(run.events, "reviewed")[0]["status"] == "rejected"
    final = run.final
    assert final["ok"] is False
    assert final["summary"].startswith("the builder's plan was rejected: ")
    assert needle in final["summary"]
    assert (final["undo"], final["journals"]) == (None, [])
    assert (root / "calc.py").read_text() == CALC
    assert journal_count(root) == 0


def test_an_edited_plan_is_applied_instead(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    run = graph_run(approval="ask")
    assert run.start("use a plus in add") is not None
    assert run.resume({"action": "edit", "plan": patch("a - b", "b + a")}) is None
    assert run.final["ok"] is True
    assert (root / "calc.py").read_text() == "def add(a, b):\n    return b + a\n"
    [journal] = journals(root)
    assert journal.meta["plan"]["steps"][0]["replace"] == "b + a"


def test_an_edited_tester_plan_keeps_its_failing_tests(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX), Reply(TESTS))
    run = graph_run(approval="auto", router=HeuristicRouter(max_rounds=1))
    assert run.start("fix the failing test for add") is not None
    strict = {
        **TESTS,
        "steps": [{**TESTS["steps"][0], "content": TEST_CODE.replace("== 5", "== 6")}, TESTS["steps"][1]],
    }
    assert run.resume({"action": "edit", "plan": strict}) is None
    # A failing test is a result, as for the tester's own plan: the test file stays and the run says why.
    assert of(run.events, "reviewed")[-1]["status"] == "applied"
    assert of(run.events, "test")[0]["passed"] is False
    assert run.final["summary"] == "the tests still fail after 1 round"
    assert "== 6" in (root / "test_calc.py").read_text()


def test_auto_applies_file_changes_and_waits_before_run_steps(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX), Reply(TESTS))
    run = graph_run(approval="auto")
    approval = run.start("fix the failing test for add")
    assert approval is not None
    assert (approval["id"], approval["role"], approval["runs"]) == ("p2", "tester", True)
    assert (root / "calc.py").read_text() == FIXED
    assert not (root / "test_calc.py").exists()
    assert journal_count(root) == 1
    assert run.resume({"action": "approve"}) is None
    assert run.final["ok"] is True
    assert of(run.events, "test")[0]["passed"] is True


def test_never_shows_and_applies_nothing(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    run = graph_run(approval="never")
    assert run.start("use a plus in add") is None
    final = run.final
    assert final["ok"] is True
    assert "shown, not applied (approval: never)" in final["summary"]
    assert final["undo"] is None
    assert of(run.events, "reviewed")[0]["status"] == "shown"
    assert (root / "calc.py").read_text() == CALC
    assert journal_count(root) == 0


def test_the_profile_caps_a_run_steps_timeout(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    slow = {"version": 1, "steps": [{"op": "run", "argv": ["python3", "-c", "import time; time.sleep(30)"],
                                     "timeout_s": 600}]}  # fmt: skip
    scripted_llm.enqueue(Reply(FIX), Reply(slow))
    run = graph_run(approval="all", run_timeout_s=1, router=HeuristicRouter(max_rounds=1))
    assert run.start("fix the failing test for add") is None
    [test] = of(run.events, "test")
    assert test["timed_out"] is True
    assert test["passed"] is False


def test_the_timeout_cap_also_holds_when_the_tests_are_rerun_after_a_refactor(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    # Passes the first time; the re-run after the refactor hangs, past the profile's cap.
    second_run_hangs = "import os, time\nif os.path.exists('ran'):\n    time.sleep(30)\nopen('ran', 'w').close()\n"
    tests = {"version": 1, "steps": [{"op": "run", "argv": ["python3", "-c", second_run_hangs], "timeout_s": 600}]}
    tidy = patch("    return a + b", "    return b + a")
    scripted_llm.enqueue(Reply(FIX), Reply(tests), Reply(tidy))
    # The cap leaves the first run time to start Python on a loaded machine: at 1 s it sometimes
    # timed out too, and the graph went on to ask for a fix nobody had scripted.
    run = graph_run(approval="all", run_timeout_s=3)
    assert run.start("fix add in calc.py and refactor it") is None
    assert [(t["passed"], t["timed_out"]) for t in of(run.events, "test")] == [(True, False), (False, True),
                                                                               (False, True)]  # fmt: skip
    assert of(run.events, "reviewed")[-1]["status"] == "reverted"
