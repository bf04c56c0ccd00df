"""The heuristic router: deterministic cues in the task text, no model needed (the fallback router)."""

from __future__ import annotations

import re

from engine.router.decision import DEFAULT_ROUNDS, RouterDecision

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
