"""Agent sessions end to end: durable threads in the workspace, endpoint failures, budgets, stops.

Each test drives :class:`AgentSession` over real HTTP to a scripted model on a real workspace.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.errors import RunStopped
from agents.nodes import BudgetExceeded
from agents.session import AgentSession, Outcome, SessionOptions, approval_for
from engine.config.profiles import load_profile
from engine.errors import ExitCode, UsageError
from engine.llm.client import ChatClient, EndpointError
from engine.plans.apply import apply_plan
from engine.router.registry import SHIPPED_ROUTER
from tests.agents.calc_task import (
    CALC,
    FIX,
    FIXED,
    TESTS,
    Event,
    chat_clients,
    finished_ok,
    journal_count,
    of,
)
from tests.scripted_llm import Hold, Reply, ScriptedLLM, Stall, Status

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


def test_the_local_profile_routes_with_the_shipped_router(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path
) -> None:
    scripted_llm.enqueue(Reply(FIX))
    session = sessions.open("local", approval="all", base_url=scripted_llm.base_url)
    finished_ok(session.start("use a plus in add"))
    [route] = of(sessions.events, "route")
    shipped = json.loads((SHIPPED_ROUTER / "router.json").read_text())["kind"]
    assert route["router"] == f"model:{shipped}"
    assert route["note"] is None
    assert (route["topology"], route["roles"]) == ("single", ["builder"])


def test_route_event_notes_a_missing_learned_router(
    sessions: Sessions, scripted_llm: ScriptedLLM, root: Path, isolated_home: Path
) -> None:
    profiles = isolated_home / ".config" / "routeshell" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "mine.toml").write_text('extends = "local"\ndescription = "mine"\n\n[router]\nkind = "model"\n'
                                        f'model_dir = "{root}/no-router"\n')  # fmt: skip
    scripted_llm.enqueue(Reply(FIX))
    session = sessions.open("mine", approval="all", base_url=scripted_llm.base_url)
    finished_ok(session.start("use a plus in add"))
    [route] = of(sessions.events, "route")
    assert route["router"] == "heuristic"
    assert "no-router is not a router directory" in route["note"]
    assert route["note"].endswith("; using the heuristic router")
    assert (route["topology"], route["roles"], route["max_rounds"]) == ("single", ["builder"], 3)


def test_route_event_with_a_topology_override(sessions: Sessions, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply(FIX))
    sessions.open(approval="all", topology="single").start("fix the failing test for add and refactor it")
    [route] = of(sessions.events, "route")
    assert (route["router"], route["topology"], route["roles"], route["note"]) == ("override", "single",
                                                                                   ["builder"], None)  # fmt: skip
    assert route["reason"].startswith("--topology single (the heuristic suggested loop: mentions 'fix'")


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


@pytest.mark.parametrize(
    ("mode", "attended", "expected"),
    [("ask", True, "ask"), ("ask", False, "auto"), ("auto", True, "auto"), ("never", False, "never")],
)
def test_ask_counts_as_auto_only_when_unattended(mode: str, attended: bool, expected: str) -> None:
    assert approval_for(mode, attended=attended) == expected
