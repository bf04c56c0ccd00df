"""The parts of a request that asks for several things in turn ("zip up X; also tag Y", "mirror A
into B. Then compress C"): each is planned on its own, under a schema narrowed to it
(:mod:`engine.planner.narrow`), and the plans are joined in the request's order.

A later part is narrowed to the workspace as the earlier parts leave it: the folders their plans
make are there ("make Documents/house and Documents/car. Then put the lease in house and ...").

A small planner loses track of a long request: it plans the first thing asked and stops. One part
at a time, it sees one thing asked, and each part's schema offers only the names, places, ops and
filters that part speaks of. A part that begins by going on with what the one before it chose
("..., then move them to sorted", ". Then remove the files") stays with it.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from engine.planner.prompt import MAX_GOAL, ViewEntry

#: The most parts a request is planned in; what comes after the last is part of the last.
MAX_PARTS = 4
#: Where one thing asked ends and the next begins: "then", "after that" or "also" after a comma, a
#: semicolon or a sentence end; "and then"; a semicolon.
_JOIN = re.compile(r"(?:,|;|[.!?])\s+(?:and\s+)?(?:then|after\s+that|also)\b,?\s*|\s+and\s+then\s+|;\s+", re.IGNORECASE)
#: A part that begins by doing something to what an earlier part chose: "move them to sorted",
#: "remove the files" (or "the fiels"), "delete the originals", "tag it done".
_GOES_ON = re.compile(
    r"^(?:(?:please|pls|plz|kindly|also|and|then|now|go\s+ahead\s+and|just)\s+)*[\w-]+\s+(?:up\s+|all\s+)?"
    r"(?:(?:them|it|they)\b|(?P<these>those|these)\b"
    r"|the\s+(?:ori\w*|fi(?!rst)\w{1,4}|fl\w{2,3}|f\w?les?|rest|same)\b"
    r"(?!\s*(?:in|under|from|of|inside|within|bi\w*er|larg\w*|old\w*|new\w*|small\w*|over|that|which)\b|\s*:(?![()DP])))",
    re.IGNORECASE,
)


def goes_on(piece: str) -> bool:
    """Whether ``piece`` begins by doing something to what an earlier part chose; "move these to
    old: a.txt and b.txt" names its own files after the colon."""
    found = _GOES_ON.match(piece)
    return found is not None and not (found["these"] and re.search(r":(?![()DP])", piece[found.end() :]))


def request_parts(request: str) -> list[str]:
    """The parts of ``request`` planned one at a time, in order: one part when it asks for one thing.
    A piece that goes on with what the piece before it chose stays with it, in the request's words."""
    spans: list[tuple[int, int]] = []
    at = 0
    for join in _JOIN.finditer(request):
        spans.append((at, join.start()))
        at = join.end()
    spans.append((at, len(request)))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        piece = request[start:end].strip()
        if not piece:
            continue
        if merged and (len(merged) >= MAX_PARTS or goes_on(piece)):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [request[start:end].strip() for start, end in merged] or [request]


def joined_plan(plans: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The plan doing ``plans`` in turn: their steps in order, their goals in one."""
    steps = [step for plan in plans for step in plan.get("steps", [])]
    goals = [str(plan.get("goal") or "") for plan in plans if plan.get("steps")] or [str(plans[0].get("goal") or "")]
    goal = "; ".join(g[:1].lower() + g[1:] if n else g for n, g in enumerate(goals) if g)
    return {"version": 1, "goal": goal[:MAX_GOAL], "steps": steps}


def made_entries(plan: Any, entries: Sequence[ViewEntry], today: dt.date) -> list[ViewEntry]:
    """The folders ``plan`` makes that ``entries`` lacks, as view entries (with their parents): what
    a ``mkdir`` makes and where a move, a copy or an extraction puts files. Anything that is not a
    plain relative name is left out; the plan is validated elsewhere."""
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return []
    places: list[str] = []
    for step in steps:
        if not isinstance(step, dict):
            continue
        op, place = step.get("op"), None
        if op == "mkdir":
            place = step.get("path")
        elif op == "extract" or (op in ("move", "copy") and ("paths" in step or "match" in step)):
            place = step.get("to")
        if isinstance(place, str):
            places.append(place.strip("/"))
    known = {entry.path for entry in entries}
    made: list[ViewEntry] = []
    for place in places:
        parts = place.split("/")
        if not place or any(part in ("", ".", "..") for part in parts):
            continue
        for depth in range(1, len(parts) + 1):
            folder = posixpath.join(*parts[:depth])
            if folder not in known:
                known.add(folder)
                made.append(ViewEntry(folder, True, 0, today))
    return made
