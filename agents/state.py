"""The agent graph's typed state (checkpointed) and run context (supplied anew on every invocation)."""

from __future__ import annotations

import operator
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from agents.ledger import UsageLedger
from engine.config.profiles import ContextPolicy
from engine.events import ApprovalAnswer, Review, RunOutcome, Verdict
from engine.kinds import APPROVAL_MODES as APPROVAL_MODES  # where the Agent pane and --plain look for them
from engine.kinds import ApprovalMode, Role, Topology
from engine.llm.client import ChatClient
from engine.plans.policy import Policy
from engine.plans.runner import Limits
from engine.router.decision import DecisionDocument, Router


class PendingPlan(TypedDict):
    """A role's validated plan waiting for review: ``id`` is ``p1``, ``p2``... within the run."""

    id: str
    role: Role
    plan: dict[str, Any]
    round: int
    #: What the plan's selections found, each entry once with a file's content mark
    #: (:func:`engine.plans.seen.found_record`), for its preview: as many as its selections chose.
    found: NotRequired[list[list[str | int]]]


class AgentState(TypedDict, total=False):
    """Everything a run knows, checkpointed after every node so that a killed run can resume.

    ``pending`` is the plan waiting for review; ``reviewed`` lists what became of every plan
    (``applied``, ``shown``, ``rejected`` or ``failed``); ``test`` is the latest test result.
    ``declined`` says why the run ends without a plan: the profile's model does file management
    only, and the task needs more (code, tests) or is not about files.
    """

    task: str
    decision: DecisionDocument
    steps: list[str]
    round: int
    plan_count: int
    pending: PendingPlan | None
    reviewed: Annotated[list[Review], operator.add]
    test: Verdict | None
    test_runs: list[dict[str, Any]]
    feedback: str
    declined: str
    outcome: RunOutcome


@dataclass
class AgentContext:
    """What nodes need that is not state: endpoints, the router, the approval mode, the sandbox.

    ``approval`` is ``ask`` (every plan waits for the user), ``auto`` (plans without run steps are
    applied, plans with run steps wait), ``never`` (plans are only shown) or ``all`` (every plan is
    applied, run steps included). ``budget`` caps the run's total tokens, counted in ``ledger``;
    ``run_timeout_s`` (the profile's ``sandbox.run_timeout_s``) caps every run step's timeout.
    ``context`` (the profile's ``[context]``) says which workspace files a role may send to a model;
    ``policy`` (its ``[policy]``) what plans may touch and which ops always wait for an answer.
    ``files_only``: the builder is routeshell's own planner model (the profile's ``prompt =
    "planner"``), which writes file plans only: it gets the compact workspace view, answers under
    the planner reply schema, and a task that needs code is declined in one line.
    ``stop``, once set, ends the run at the next piece of a streaming reply or the next step. ``answers`` holds the
    user's answer to the plan a resumed run stopped for, by plan id; it beats the approval mode.
    """

    root: Path
    clients: Mapping[str, ChatClient]
    router: Router
    thread_id: str
    approval: ApprovalMode = "ask"
    topology: Topology | Literal["auto"] = "auto"
    limits: Limits = field(default_factory=Limits)
    budget: int | None = None
    stream: bool = True
    router_note: str | None = None
    answers: Mapping[str, ApprovalAnswer] = field(default_factory=dict)
    ledger: UsageLedger = field(default_factory=UsageLedger)
    run_timeout_s: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    context: ContextPolicy = field(default_factory=ContextPolicy)
    policy: Policy = field(default_factory=Policy)
    files_only: bool = False
    #: With ``files_only``: a plan the planner gives a lower probability than this (the profile's
    #: ``planner.min_probability``) is declined instead of offered; 0 offers every plan.
    min_plan_probability: float = 0.0
    #: Where that bound comes from, as a decline names it.
    min_plan_probability_from: str = "the profile's planner.min_probability"
    #: The warnings this invocation has said: each is said once, however often a plan is expanded.
    warned: set[str] = field(default_factory=set)
