"""The agent graph end to end: real HTTP to a scripted model, a real workspace, real applies and test runs.

Graph-level tests compile ``build_graph`` inline and run over an in-memory and a SQLite checkpointer;
session-level tests drive :class:`AgentSession`, which keeps its threads in the workspace.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from agents.errors import RunStopped
from agents.graph import build_graph
from agents.nodes import BudgetExceeded
from agents.roles import ROLE_SCHEMAS
from agents.session import AgentSession, Outcome, SessionOptions
from agents.state import AgentContext
from engine.apply import apply_plan, undo_last
from engine.errors import ExitCode, UsageError
from engine.journal import journals
from engine.llm import ChatClient, EndpointError
from engine.profiles import Endpoint, load_profile
from engine.router import HeuristicRouter, Router
from tests.helpers import tree
from tests.scripted_llm import Hold, Reply, ScriptedLLM, Stall, Status

Event = dict[str, Any]

CALC = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
# -B: no bytecode, so a file restored by undo (same size, same second) is never shadowed by a stale .pyc.
TEST_RUN = ["python3", "-B", "test_calc.py"]
TEST_CODE = 'from calc import add\n\nresult = add(2, 3)\nassert result == 5, f"add(2, 3) returned {result}"\n'


def patch(find: str, replace: str, path: str = "calc.py") -> dict[str, Any]:
    return {"version": 1, "goal": f"{find} -> {replace}", "steps": [{"op": "patch", "path": path, "find": find,
                                                                      "replace": replace}]}  # fmt: skip


FIX = patch("a - b", "a + b")
TESTS: dict[str, Any] = {"version": 1, "goal": "test add", "steps": [
    {"op": "write", "path": "test_calc.py", "content": TEST_CODE, "overwrite": True},
    {"op": "run", "argv": TEST_RUN, "timeout_s": 30},
]}  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    return workspace


def chat_clients(llm: ScriptedLLM, **endpoint: Any) -> dict[str, ChatClient]:
    """One client for every role; ``sleep`` (if given) replaces the backoff sleep."""
    sleep = endpoint.pop("sleep", time.sleep)
    settings = {"timeout_s": 10.0, "max_retries": 0, **endpoint}
    client = ChatClient(Endpoint(base_url=llm.base_url, model="scripted", api_key=None, **settings), sleep=sleep)
    return dict.fromkeys(ROLE_SCHEMAS, client)


def of(events: list[Event], kind: str) -> list[Event]:
    return [event for event in events if event["type"] == kind]


def role_requests(llm: ScriptedLLM, role: str) -> list[dict[str, Any]]:
    return [r for r in llm.requests if r["messages"][0]["content"].startswith(f"You are the {role}")]


def finished_ok(outcome: Outcome) -> dict[str, Any]:
    """The run finished and its final event says ok; return that final outcome."""
    assert outcome.status == "done"
    assert outcome.final is not None
    assert outcome.final["ok"] is True
    return outcome.final


def journal_count(root: Path) -> int:
    return len(journals(root))


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


# -- sessions: durable threads in the workspace, endpoints, budgets ----------------------------------


class Sessions:
    """Opens :class:`AgentSession` objects on one workspace (the ``ci`` profile pointed at the scripted
    model); every event from every session lands in ``events``."""

    def __init__(self, root: Path, llm: ScriptedLLM) -> None:
        self.root = root
        self.llm = llm
        self.events: list[Event] = []
        self.opened: list[AgentSession] = []
        self.own_clients: list[ChatClient] = []

    def open(self, profile: str = "ci", **options: Any) -> AgentSession:
        clients = options.pop("clients", None)
        env = {**os.environ, "LLM_API_BASE": self.llm.base_url}
        session = AgentSession(self.root, load_profile(profile, env), SessionOptions(env=env, **options),
                               self.events.append, clients=clients)  # fmt: skip
        self.opened.append(session)
        return session

    def clients(self, **endpoint: Any) -> dict[str, ChatClient]:
        """Clients to pass a session instead of the profile's (closed at teardown)."""
        made = chat_clients(self.llm, **endpoint)
        self.own_clients.append(next(iter(made.values())))
        return made

    def final(self) -> Event:
        [final] = of(self.events, "final")
        return final


@pytest.fixture
def sessions(root: Path, scripted_llm: ScriptedLLM) -> Iterator[Sessions]:
    made = Sessions(root, scripted_llm)
    yield made
    for session in made.opened:
        session.close()
    for client in made.own_clients:
        client.close()
    assert scripted_llm.unexpected == 0


def test_session_runs_a_task_and_keeps_the_thread(sessions: Sessions, scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply(FIX))
    session = sessions.open(approval="all")
    outcome = session.start("use a plus in add", thread="first")
    assert outcome == Outcome("done", "first", final={k: v for k, v in sessions.final().items() if k != "type"})
    final = finished_ok(outcome)
    assert final["thread"] == "first"
    assert (root / "calc.py").read_text() == FIXED
    assert (root / ".routeshell" / "sessions.sqlite").is_file()
    assert session.exists("first")
    assert not session.exists("second")
    assert scripted_llm.requests[0]["model"] == "tiny-llm-40m"
    assert scripted_llm.requests[0]["stream"] is True


def test_a_server_error_is_retried(sessions: Sessions, scripted_llm: ScriptedLLM, root: Path) -> None:
    waits: list[float] = []
    scripted_llm.enqueue(Status(500), Reply(FIX))
    session = sessions.open(approval="all", clients=sessions.clients(max_retries=1, sleep=waits.append))
    outcome = session.start("use a plus in add")
    finished_ok(outcome)
    assert len(scripted_llm.requests) == 2
    assert scripted_llm.requests[0]["messages"] == scripted_llm.requests[1]["messages"]
    assert len(waits) == 1
    assert of(sessions.events, "role_end")[0]["attempts"] == 1  # a retry is not a repair


def test_rate_limit_waits_for_retry_after(sessions: Sessions, scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Status(429, headers={"Retry-After": "1"}), Reply(FIX))
    session = sessions.open(approval="all")  # the ci profile's own endpoint: one retry
    started = time.monotonic()
    outcome = session.start("use a plus in add")
    assert time.monotonic() - started >= 1.0
    finished_ok(outcome)
    assert len(scripted_llm.requests) == 2


def test_a_timeout_is_an_endpoint_error_and_the_thread_resumes(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Stall(10))
    session = sessions.open(approval="all", clients=sessions.clients(timeout_s=0.3, max_retries=0))
    with pytest.raises(EndpointError) as caught:
        session.start("use a plus in add", thread="slow")
    assert caught.value.exit_code == ExitCode.ENDPOINT
    assert "timed out after 0.3 s" in str(caught.value)
    [error] = of(sessions.events, "error")
    assert (error["exit_code"], error["thread"], error["message"]) == (3, "slow", str(caught.value))
    assert journal_count(root) == 0
    # Nothing waits for an approval, so an answer has nothing to answer.
    with pytest.raises(UsageError, match="not waiting for an approval"):
        session.resume("slow", {"action": "reject"})
    # The thread kept its place: resuming asks the builder again.
    scripted_llm.enqueue(Reply(FIX))
    outcome = session.resume("slow")
    finished_ok(outcome)
    assert (root / "calc.py").read_text() == FIXED


def test_a_paused_session_resumes_from_a_new_session_object(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    first = sessions.open(approval="ask")
    paused = first.start("use a plus in add", thread="t")
    assert paused.status == "paused"
    assert paused.approval is not None
    assert of(sessions.events, "approval") == [{"type": "approval", **paused.approval}]
    first.close()
    sessions.opened.remove(first)
    assert (root / "calc.py").read_text() == CALC

    second = sessions.open(approval="ask")
    assert second.exists("t")
    assert second.pending("t") == paused.approval
    done = second.resume("t", {"action": "approve"})
    finished_ok(done)
    assert second.pending("t") is None
    assert (root / "calc.py").read_text() == FIXED
    with pytest.raises(UsageError, match="thread 't' already finished"):
        second.resume("t", {"action": "approve"})
    with pytest.raises(UsageError, match="thread 't' already exists in this workspace"):
        second.start("another task", thread="t")
    with pytest.raises(UsageError, match="no thread 'nope' in this workspace"):
        second.resume("nope")
    assert len(scripted_llm.requests) == 1


@pytest.mark.parametrize(
    ("mode", "action", "applied"), [("all", "reject", False), ("never", "approve", True), ("auto", "reject", False)]
)
def test_an_answer_on_resume_beats_the_approval_mode(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path, mode: str, action: str, applied: bool
) -> None:
    scripted_llm.enqueue(Reply(FIX), Reply(TESTS))
    paused = sessions.open(approval="auto").start("fix the failing test for add", thread="t")
    assert paused.approval is not None
    assert paused.approval["role"] == "tester"
    outcome = sessions.open(approval=mode).resume("t", {"action": action})
    assert outcome.final is not None
    assert outcome.final["ok"] is applied
    assert of(sessions.events, "reviewed")[-1]["status"] == ("applied" if applied else "rejected")
    assert (root / "test_calc.py").exists() is applied
    assert journal_count(root) == 1 + applied


def test_a_plan_applied_before_a_crash_is_never_applied_twice(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    session = sessions.open(approval="ask")
    paused = session.start("use a plus in add", thread="t")
    assert paused.approval is not None
    # What review does after approval; the checkpoint that would record it never got written.
    applied = apply_plan(root, paused.approval["plan"], origin=f"t/{paused.approval['id']}")
    assert journal_count(root) == 1
    outcome = sessions.open(approval="ask").resume("t", {"action": "approve"})
    final = finished_ok(outcome)
    assert journal_count(root) == 1
    [event] = of(sessions.events, "applied")
    assert event == {"type": "applied", "journal": applied.journal_id, "steps": 1, "replayed": True}
    assert final["undo"] == applied.journal_id
    assert (root / "calc.py").read_text() == FIXED


def test_the_token_budget_stops_the_run(sessions: Sessions, scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply(FIX), Reply(TESTS))
    with pytest.raises(BudgetExceeded) as caught:
        sessions.open(approval="all", budget=20).start("fix the failing test for add", thread="t")
    assert caught.value.exit_code == ExitCode.FAILED
    assert "the run used 30 tokens, over the --max-cost-tokens budget of 20" in str(caught.value)
    assert len(scripted_llm.requests) == 2
    assert of(sessions.events, "error")[0]["exit_code"] == 1
    assert journal_count(root) == 1  # the builder's plan, applied before the tester spent too much
    # As the message says: resume with a larger budget to go on.
    # The tokens of the failed node still count: the tester's discarded reply is not free.
    with pytest.raises(BudgetExceeded, match="already used 30 tokens"):
        sessions.open(approval="all", budget=25).resume("t")
    scripted_llm.enqueue(Reply(TESTS))
    finished_ok(sessions.open(approval="all", budget=100).resume("t"))
    assert of(sessions.events, "test")[0]["passed"] is True
    final = of(sessions.events, "final")[0]
    assert final["usage"]["total_tokens"] == 45
    assert {role: counts["total_tokens"] for role, counts in final["per_role"].items()} == {"builder": 15, "tester": 30}


def test_route_event_notes_a_missing_learned_router(sessions: Sessions, scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply(FIX))
    session = sessions.open("local", approval="all", base_url=scripted_llm.base_url)
    outcome = session.start("use a plus in add")
    finished_ok(outcome)
    [route] = of(sessions.events, "route")
    assert route["router"] == "heuristic"
    assert route["note"] == "no 'model' router is available in this installation; using the heuristic router"
    assert (route["topology"], route["roles"], route["max_rounds"]) == ("single", ["builder"], 3)


def test_route_event_with_a_topology_override(sessions: Sessions, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply(FIX))
    sessions.open(approval="all", topology="single").start("fix the failing test for add and refactor it")
    [route] = of(sessions.events, "route")
    assert (route["router"], route["topology"], route["roles"], route["note"]) == ("override", "single",
                                                                                   ["builder"], None)  # fmt: skip
    assert route["reason"].startswith("--topology single (the heuristic suggested loop: mentions 'fix'")


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


def test_ctrl_c_reaching_the_graphs_thread_still_interrupts_the_caller_at_once(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path
) -> None:
    # The kernel may hand SIGINT to any thread; here it goes to the graph's own thread on purpose.
    release = threading.Event()
    seen = threading.Event()
    scripted_llm.enqueue(Hold(release, then=Reply(FIX)))
    answered_in_time: list[bool] = []

    def on_sigint(signum: int, frame: Any) -> None:
        seen.set()
        raise KeyboardInterrupt

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 30
        while not scripted_llm.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        [agent] = [t for t in threading.enumerate() if t.name.startswith("routeshell-agent-")]
        signal.pthread_kill(agent.ident or 0, signal.SIGINT)
        # The model holds its reply until the caller has seen the Ctrl-C: a caller blocked on the
        # graph's thread would only see it once that thread ended, which waits for this reply.
        answered_in_time.append(seen.wait(timeout=20))
        release.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    presser = threading.Thread(target=press_ctrl_c)
    try:
        presser.start()
        with pytest.raises(KeyboardInterrupt):
            sessions.open(approval="all").start("use a plus in add", thread="ctrl-c")
    finally:
        release.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
    assert answered_in_time == [True]
    # The stop came before the review: nothing was applied, and the thread can go on.
    assert journal_count(root) == 0
    assert of(sessions.events, "final") == []


def test_stop_cuts_a_streaming_reply_off_and_resume_goes_on(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX, pieces=8), Reply(FIX))
    session = sessions.open(approval="all")

    def stop_at_the_first_piece(event: dict[str, Any]) -> None:
        sessions.events.append(event)
        if event["type"] == "delta":
            session.stop()

    session.on_event = stop_at_the_first_piece
    with pytest.raises(RunStopped) as caught:
        session.start("use a plus in add", thread="stopped")
    assert caught.value.exit_code == ExitCode.INTERRUPTED
    assert len(of(sessions.events, "delta")) == 1  # the other seven pieces were never taken
    assert of(sessions.events, "plan") == []
    assert of(sessions.events, "error") == []  # a stop is not an error
    assert journal_count(root) == 0
    session.on_event = sessions.events.append
    finished_ok(session.resume("stopped"))
    assert (root / "calc.py").read_text() == FIXED
