"""The router's decision: which roles run, in which topology (:class:`RouterDecision`), and the
small :class:`Router` interface every router implements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from engine.errors import UsageError
from engine.kinds import ROLES, Role, Topology
from engine.kinds import TOPOLOGIES as TOPOLOGIES
from engine.schemas import describe_error, pointer, validator

ROLE_ORDER = ROLES  # the canonical order of roles, declared in engine.kinds
DEFAULT_ROUNDS = 3


class InvalidDecision(UsageError):
    """A decision document that does not validate against ``decision.schema.json``."""


class DecisionDocument(TypedDict):
    """A decision as :meth:`RouterDecision.as_json` writes it, every field set (``decision.schema.json``)."""

    topology: Topology
    roles: list[Role]
    max_rounds: int
    reason: str


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

    def as_json(self) -> DecisionDocument:
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
