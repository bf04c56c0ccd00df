"""Routers: given a task in plain words, decide which roles run and how (a :class:`RouterDecision`).

Every router sits behind the same small interface and is found through :data:`ROUTERS`, a registry
by profile ``router.kind``. The heuristic router ships here; the learned router registers itself
the same way when its package is installed and trained.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import UsageError
from engine.kinds import ROLES, Role, Topology
from engine.kinds import TOPOLOGIES as TOPOLOGIES
from engine.schemas import describe_error, pointer, validator

ROLE_ORDER = ROLES  # the canonical order of roles, declared in engine.kinds
DEFAULT_ROUNDS = 3


class InvalidDecision(UsageError):
    """A decision document that does not validate against ``decision.schema.json``."""


@dataclass(frozen=True)
class RouterDecision:
    """Which roles run, in which topology; ``roles`` are in canonical order and include the builder."""

    topology: Topology
    roles: tuple[Role, ...]
    max_rounds: int = DEFAULT_ROUNDS
    reason: str = ""
    router: str = field(default="", compare=False)

    @classmethod
    def from_json(cls, document: Any, *, router: str = "") -> RouterDecision:
        """Validate a decision document and return it normalised (roles in canonical order)."""
        errors = sorted(validator("decision").iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            path, reason = describe_error(errors[0])
            raise InvalidDecision(f"invalid router decision at {pointer(path)}: {reason}")
        roles = tuple(role for role in ROLE_ORDER if role in document["roles"])
        return cls(
            topology=document["topology"],
            roles=roles,
            max_rounds=int(document.get("max_rounds", DEFAULT_ROUNDS)),
            reason=str(document.get("reason", "")),
            router=router,
        )

    def as_json(self) -> dict[str, Any]:
        """Return the decision as a document that validates against ``decision.schema.json``."""
        return {"topology": self.topology, "roles": list(self.roles), "max_rounds": self.max_rounds,
                "reason": self.reason}  # fmt: skip

    def with_topology(self, topology: str) -> RouterDecision:
        """Return this decision forced to ``topology`` (``--topology``), keeping what still fits.

        ``single`` keeps only the builder; ``loop`` makes sure the tester is there; ``pipeline``
        keeps the roles as they are.
        """
        if topology not in TOPOLOGIES:
            raise UsageError(f"unknown topology {topology!r} (choose one of {', '.join(TOPOLOGIES)})")
        if topology == "single":
            roles: tuple[Role, ...] = ("builder",)
        elif topology == "loop":
            roles = tuple(role for role in ROLE_ORDER if role in {*self.roles, "tester"} and role != "planner")
        else:
            roles = self.roles
        reason = f"--topology {topology} (the {self.router or 'router'} suggested {self.topology}: {self.reason})"
        return RouterDecision(topology, roles, self.max_rounds, reason[:500], "override")


class Router(Protocol):
    """Anything that turns a task into a decision."""

    name: str

    def route(self, task: str) -> RouterDecision:
        """Return the decision for ``task``."""
        ...


_TEST_WORDS = re.compile(
    r"\b(tests?|testing|pytest|unittest|failing|fails?|bug|broken|regression|verify|assert\w*|edge cases?|fix)\b", re.I
)
_REFACTOR_WORDS = re.compile(r"\b(refactor\w*|clean(?:\s*|-)up|tidy|simplif\w+|restructur\w+|reorgani[sz]\w*)\b", re.I)
_STEP_MARKERS = re.compile(r"(^\s*(?:[-*]|\d+[.)])\s+|\b(?:then|after that|finally|and also)\b)", re.I | re.M)


class HeuristicRouter:
    """Routes by cues in the task text: tests ask for a loop, long multi-part tasks for a planner.

    It is deterministic and needs no model, so it is the fallback when no learned router is there.
    """

    name = "heuristic"

    def __init__(self, max_rounds: int = DEFAULT_ROUNDS) -> None:
        self.max_rounds = max_rounds

    def route(self, task: str) -> RouterDecision:
        """Return a decision for ``task`` and a reason naming the cues that chose it."""
        wants_tests = _TEST_WORDS.search(task)
        wants_refactor = _REFACTOR_WORDS.search(task)
        parts = len(_STEP_MARKERS.findall(task)) + len(re.findall(r"[.;!?](?:\s|$)", task.strip()))
        complex_task = len(task) > 400 or parts >= 3
        roles = ["builder"]
        cues = []
        if complex_task:
            roles.insert(0, "planner")
            cues.append(f"{parts} parts and {len(task)} characters, so a planner first")
        if wants_tests:
            roles.append("tester")
            cues.append(f"mentions {wants_tests.group(0)!r}, so tests decide when it is done")
        if wants_refactor:
            roles.append("refactor")
            cues.append(f"mentions {wants_refactor.group(0)!r}, so a behaviour-preserving refactor")
        if wants_tests:
            topology = "loop"
        elif len(roles) > 1:
            topology = "pipeline"
        else:
            topology = "single"
            cues.append("a short task with no test or refactor cue, so the builder alone")
        return RouterDecision.from_json(
            {"topology": topology, "roles": roles, "max_rounds": self.max_rounds, "reason": "; ".join(cues)[:500]},
            router=self.name,
        )


RouterFactory = Callable[[dict[str, Any]], Router]

#: Routers by profile ``router.kind``. A factory takes the profile's ``router`` table.
ROUTERS: dict[str, RouterFactory] = {"heuristic": lambda table: HeuristicRouter()}


def register_router(kind: str, factory: RouterFactory) -> None:
    """Register a router factory for profile ``router.kind`` = ``kind`` (replacing any earlier one)."""
    ROUTERS[kind] = factory


def load_router(table: dict[str, Any]) -> tuple[Router, str | None]:
    """Return the router a profile's ``router`` table asks for, and a note when it fell back.

    A kind with no registered router falls back to the heuristic router; the note says so, so
    that the fallback is shown to the user rather than hidden.
    """
    kind = table.get("kind", "heuristic")
    factory = ROUTERS.get(kind)
    if factory is None:
        note = f"no {kind!r} router is available in this installation; using the heuristic router"
        return HeuristicRouter(), note
    return factory(table), None
