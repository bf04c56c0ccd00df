"""The closed set of decisions a learned router chooses among, and how any decision maps onto it.

A decision is (topology, roles, max_rounds). Not every combination means something different to
the agent loop: ``max_rounds`` only bounds the builder/tester rounds of a ``loop``, and a
``single`` run is the builder alone. The *canonical* form keeps exactly what changes a run:

- ``single``: roles ``[builder]``, ``max_rounds`` = :data:`DEFAULT_ROUNDS` (unused);
- ``pipeline``: the builder with any non-empty subset of planner, tester and refactor (7 sets),
  ``max_rounds`` = :data:`DEFAULT_ROUNDS` (unused);
- ``loop``: the builder and the tester, with or without planner and refactor (4 sets), and
  1 to :data:`MAX_LOOP_ROUNDS` rounds.

That is 1 + 7 + 4 x 5 = 28 candidates. Learned routers score these and nothing else, so every
answer they give validates against ``decision.schema.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import combinations

from engine.kinds import ROLES, Role, Topology
from engine.router.decision import DEFAULT_ROUNDS, RouterDecision

#: The most rounds a canonical loop has: a decision asking for more is read as this many.
MAX_LOOP_ROUNDS = 5


@dataclass(frozen=True, order=True)
class Candidate:
    """One canonical decision, without a reason; ``key`` names it in tables and files."""

    topology: Topology
    roles: tuple[Role, ...]
    max_rounds: int

    @property
    def key(self) -> str:
        """``topology:role+role[:rounds]``, e.g. ``loop:builder+tester:3`` (rounds only for a loop)."""
        base = f"{self.topology}:{'+'.join(self.roles)}"
        return f"{base}:{self.max_rounds}" if self.topology == "loop" else base

    @property
    def roles_key(self) -> str:
        """The roles alone, ``builder+tester``: what the roles exact-match metric compares."""
        return "+".join(self.roles)

    def decision(self, reason: str, *, router: str) -> RouterDecision:
        """Return this candidate as a validated :class:`RouterDecision` with ``reason`` (cut to 500 characters)."""
        document = {"topology": self.topology, "roles": list(self.roles), "max_rounds": self.max_rounds,
                    "reason": reason[:500]}  # fmt: skip
        return RouterDecision.from_json(document, router=router)

    def document(self) -> dict[str, object]:
        """The decision JSON of this candidate, with an empty reason."""
        return {"topology": self.topology, "roles": list(self.roles), "max_rounds": self.max_rounds}


def _ordered(roles: set[str]) -> tuple[Role, ...]:
    return tuple(role for role in ROLES if role in roles)


@cache
def candidates() -> tuple[Candidate, ...]:
    """Return every canonical decision, in a fixed order (single, pipelines, loops by rounds)."""
    found = [Candidate("single", ("builder",), DEFAULT_ROUNDS)]
    extras = ("planner", "tester", "refactor")
    for size in range(1, len(extras) + 1):
        for chosen in combinations(extras, size):
            found.append(Candidate("pipeline", _ordered({"builder", *chosen}), DEFAULT_ROUNDS))
    for with_planner in (False, True):
        for with_refactor in (False, True):
            roles = {"builder", "tester"} | ({"planner"} if with_planner else set())
            roles |= {"refactor"} if with_refactor else set()
            for rounds in range(1, MAX_LOOP_ROUNDS + 1):
                found.append(Candidate("loop", _ordered(roles), rounds))
    return tuple(found)


@cache
def candidate_index() -> dict[str, int]:
    """Return each candidate's position in :func:`candidates`, by key."""
    return {candidate.key: index for index, candidate in enumerate(candidates())}


def canonical(decision: RouterDecision) -> Candidate:
    """Return the candidate that runs the same way as ``decision``.

    A ``single`` decision is the builder alone whatever roles it lists; a ``pipeline`` of the
    builder alone is ``single``; a ``loop`` gets the tester it cannot run without, and its rounds
    are held to 1..:data:`MAX_LOOP_ROUNDS`; ``max_rounds`` of anything but a loop is unused.
    """
    roles = set(decision.roles)
    if decision.topology == "single" or (decision.topology == "pipeline" and roles == {"builder"}):
        return candidates()[0]
    if decision.topology == "pipeline":
        return Candidate("pipeline", _ordered(roles | {"builder"}), DEFAULT_ROUNDS)
    rounds = min(max(decision.max_rounds, 1), MAX_LOOP_ROUNDS)
    return Candidate("loop", _ordered(roles | {"builder", "tester"}), rounds)


def candidate_by_key(key: str) -> Candidate:
    """Return the candidate named ``key``; raise ``KeyError`` when there is none."""
    return candidates()[candidate_index()[key]]
