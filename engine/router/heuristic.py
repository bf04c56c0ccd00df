"""The heuristic router: deterministic cues in the task text, no model needed (the fallback router)."""

from __future__ import annotations

import re

from engine.router.decision import DEFAULT_ROUNDS, RouterDecision

_TEST_WORDS = re.compile(
    r"\b(tests?|testing|pytest|unittest|failing|fails?|bug|broken|regression|verify|assert\w*|edge cases?|fix)\b", re.I
)
_REFACTOR_WORDS = re.compile(r"\b(refactor\w*|clean(?:\s*|-)up|tidy|simplif\w+|restructur\w+|reorgani[sz]\w*)\b", re.I)
# A request about files (move, rename, tag, archive, clean up a folder...) with no word about code is
# file management: one builder writes it as a plan of match steps, whatever "clean up" or "tidy" say.
_FILE_WORDS = re.compile(
    r"\b(move|mv|copy|put|relocate|gather|rename|number|lowercase|prefix|archive|zip|unzip|compress|bundle|pack|"
    r"unpack|extract|tarball|sort|classify|organi[sz]e|group|bucket|tag|label|untag|clean(?:\s*|-)up|tidy|"
    r"declutter|purge|clear out|get rid of|delete|remove|drop|folders?|files?|photos?|pdfs?|notes)\b",
    re.I,
)
_CODE_WORDS = re.compile(
    r"\b(functions?|class(?:es)?|methods?|modules?|helpers?|code(?:base)?|bugs?|features?|endpoints?|tests?|"
    r"pytest|unittest|refactor\w*|variables?|imports?|docstrings?|type hints?|symbols?)\b|\.py\b",
    re.I,
)
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
        files_only = _FILE_WORDS.search(task) is not None and _CODE_WORDS.search(task) is None
        wants_tests = None if files_only else _TEST_WORDS.search(task)
        wants_refactor = None if files_only else _REFACTOR_WORDS.search(task)
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
            if files_only:
                cues.append("file management with no word about code, so the builder alone")
            else:
                cues.append("a short task with no test or refactor cue, so the builder alone")
        return RouterDecision.from_json(
            {"topology": topology, "roles": roles, "max_rounds": self.max_rounds, "reason": "; ".join(cues)[:500]},
            router=self.name,
        )
