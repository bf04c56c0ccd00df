"""The agent graph: route, then the roles the decision names, each plan reviewed before it applies.

::

    START -> route -> [planner] -> builder -> review -> [tester -> review] -> [refactor -> review] -> finish
                                     ^                        |
                                     +---- loop: tests fail --+

The edges read the decision from the state, so one compiled graph runs every topology.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from agents import nodes
from agents.state import AgentContext, AgentState

Next = Literal["planner", "builder", "tester", "refactor", "finish"]


def after_route(state: AgentState) -> Literal["planner", "builder", "finish"]:
    """The first role: the planner when the decision has one, else the builder; none when declined."""
    if state.get("declined"):
        return "finish"
    return "planner" if "planner" in state["decision"]["roles"] else "builder"


def after_builder(state: AgentState) -> Literal["review", "finish"]:
    """Review the builder's plan, unless the builder declined the task."""
    return "finish" if state.get("declined") else "review"


def after_review(state: AgentState) -> Next:
    """Pick the next node from the decision and what became of the plan just reviewed."""
    decision = state["decision"]
    roles = decision["roles"]
    last = state["reviewed"][-1]
    if last["status"] in ("rejected", "failed"):
        return "finish"
    test = state.get("test")
    if last["role"] == "builder":
        if "tester" in roles:
            return "tester"
        return "refactor" if "refactor" in roles else "finish"
    if last["role"] == "tester":
        passed = test["passed"] if test is not None and last["status"] == "applied" else None
        if passed is False and state.get("round", 1) > last["round"]:
            return "builder"  # review started a new round: the loop has rounds left
        # Refactoring code whose tests fail would only hide the failure.
        return "refactor" if "refactor" in roles and passed is not False else "finish"
    return "finish"


def build_graph(checkpointer: Any) -> Any:
    """Compile the agent graph with ``checkpointer`` (``None`` for no persistence).

    Invoke it with ``context=AgentContext(...)`` and ``{"task": ...}`` as input; it streams events
    in ``stream_mode="custom"`` and pauses with ``interrupt()`` when a plan needs approval.
    """
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("route", nodes.route)
    graph.add_node("planner", nodes.planner)
    graph.add_node("builder", nodes.builder)
    graph.add_node("tester", nodes.tester)
    graph.add_node("refactor", nodes.refactor)
    graph.add_node("review", nodes.review)
    graph.add_node("finish", nodes.finish)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", after_route)
    graph.add_edge("planner", "builder")
    graph.add_conditional_edges("builder", after_builder)
    for role in ("tester", "refactor"):
        graph.add_edge(role, "review")
    graph.add_conditional_edges("review", after_review)
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)
