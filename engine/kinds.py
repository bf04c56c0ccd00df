"""The closed sets of names that cross modules, declared once as ``Literal`` types.

Each ``Literal`` comes with a tuple of its values in their canonical order, for checks, help
texts and schemas; a test keeps the JSON Schemas' enums in step with them.
"""

from __future__ import annotations

from typing import Literal, get_args

#: The agent roles, in the order a run asks them.
Role = Literal["planner", "builder", "tester", "refactor"]
ROLES: tuple[Role, ...] = get_args(Role)

#: Everything that may have an LLM endpoint of its own in a profile: the roles and the router.
EndpointRole = Literal[Role, "router"]
ENDPOINT_ROLES: tuple[EndpointRole, ...] = get_args(EndpointRole)

#: How the roles of a run are arranged (see ``decision.schema.json``).
Topology = Literal["single", "pipeline", "loop"]
TOPOLOGIES: tuple[Topology, ...] = get_args(Topology)

#: What may be applied without asking: ``ask`` every plan waits, ``auto`` plans without run steps
#: are applied, ``never`` plans are only shown, ``all`` everything is applied.
ApprovalMode = Literal["ask", "auto", "never", "all"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = get_args(ApprovalMode)

#: Where an applied plan's journal stands.
JournalState = Literal["applying", "applied", "rolled-back", "undoing", "undone"]
JOURNAL_STATES: tuple[JournalState, ...] = get_args(JournalState)
