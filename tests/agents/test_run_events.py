"""Every kind of event an agent run emits appears in one run, and keeps the event contract."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agents.session import AgentSession, SessionOptions
from engine.config.profiles import load_profile
from engine.events import event_problem
from engine.llm.client import EndpointError
from tests.agents.calc_task import FIX, TESTS
from tests.scripted_llm import Reply, ScriptedLLM, Status

AGENT_EVENTS = {"route", "role_start", "delta", "repair", "usage", "role_end", "plan", "approval", "step",
                "applied", "test", "reviewed", "final"}  # fmt: skip


def test_one_run_emits_every_agent_event_and_each_keeps_the_contract(scripted_llm: ScriptedLLM, root: Path) -> None:
    env = {**os.environ, "LLM_API_BASE": scripted_llm.base_url}
    scripted_llm.enqueue(Reply("Let me look first."), Reply(FIX), Reply(TESTS))
    seen: list[dict[str, Any]] = []
    with AgentSession(root, load_profile("ci", env), SessionOptions(approval="ask", env=env), seen.append) as session:
        paused = session.start("fix add in calc.py and test it", thread="t")
        while paused.status == "paused":
            paused = session.resume("t", {"action": "approve"})
    assert paused.final is not None
    assert paused.final["ok"] is True
    assert {event["type"] for event in seen} == AGENT_EVENTS
    assert [event_problem(event) for event in seen] == [None] * len(seen)


def test_an_error_ends_the_events_with_an_error_event(scripted_llm: ScriptedLLM, root: Path) -> None:
    env = {**os.environ, "LLM_API_BASE": scripted_llm.base_url}
    scripted_llm.enqueue(Status(400), Status(400))
    seen: list[dict[str, Any]] = []
    options = SessionOptions(approval="all", topology="single", env=env)
    with AgentSession(root, load_profile("ci", env), options, seen.append) as session, pytest.raises(EndpointError):
        session.start("fix add", thread="t")
    assert seen[-1]["type"] == "error"
    assert [event_problem(event) for event in seen] == [None] * len(seen)
