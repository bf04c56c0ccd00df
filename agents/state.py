"""The agent graph's typed state (checkpointed) and run context (supplied anew on every invocation)."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from engine.llm import ChatClient, Usage
from engine.router import Router
from engine.runner import Limits

APPROVAL_MODES = ("ask", "auto", "never", "all")


def add_usage(left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Reducer: add token counts per role."""
    merged = dict(left or {})
    for role, counts in (right or {}).items():
        merged[role] = (usage_of(merged.get(role)) + usage_of(counts)).as_dict()
    return merged


def usage_of(counts: Mapping[str, Any] | None) -> Usage:
    """Return a :class:`Usage` from its ``as_dict`` form (``None`` gives zero)."""
    if not counts:
        return Usage()
    return Usage(int(counts["prompt_tokens"]), int(counts["completion_tokens"]), bool(counts.get("estimated")))


class AgentState(TypedDict, total=False):
    """Everything a run knows, checkpointed after every node so that a killed run can resume.

    ``pending`` is the plan waiting for review; ``reviewed`` lists what became of every plan
    (``applied``, ``shown``, ``rejected`` or ``failed``); ``test`` is the latest test result.
    """

    task: str
    decision: dict[str, Any]
    steps: list[str]
    round: int
    plan_count: int
    pending: dict[str, Any] | None
    reviewed: Annotated[list[dict[str, Any]], operator.add]
    test: dict[str, Any] | None
    test_runs: list[dict[str, Any]]
    feedback: str
    usage: Annotated[dict[str, dict[str, Any]], add_usage]
    outcome: dict[str, Any]


@dataclass
class AgentContext:
    """What nodes need that is not state: endpoints, the router, the approval mode, the sandbox.

    ``approval`` is ``ask`` (every plan waits for the user), ``auto`` (plans without run steps are
    applied, plans with run steps wait), ``never`` (plans are only shown) or ``all`` (every plan is
    applied, run steps included). ``budget`` caps the run's total tokens. ``answers`` holds the
    user's answer to the plan a resumed run stopped for, by plan id; it beats the approval mode.
    """

    root: Path
    clients: Mapping[str, ChatClient]
    router: Router
    thread_id: str
    approval: str = "ask"
    topology: str = "auto"
    limits: Limits = field(default_factory=Limits)
    budget: int | None = None
    stream: bool = True
    router_note: str | None = None
    answers: Mapping[str, dict[str, Any]] = field(default_factory=dict)
