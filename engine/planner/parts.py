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


def _made_places(step: Any) -> list[str]:
    """The folders one step of a plan makes (with files in them): a ``mkdir``'s, and where a move, a
    copy or an extraction puts files; as written, plain or not."""
    if not isinstance(step, dict):
        return []
    op, place = step.get("op"), None
    if op == "mkdir":
        place = step.get("path")
    elif op == "extract" or (op in ("move", "copy") and ("paths" in step or "match" in step)):
        place = step.get("to")
    return [place.strip("/")] if isinstance(place, str) else []


def _plain(place: str) -> bool:
    return bool(place) and all(part not in ("", ".", "..") for part in place.split("/"))


def _with_parents(folder: str) -> list[str]:
    parts = folder.split("/")
    return [posixpath.join(*parts[:depth]) for depth in range(1, len(parts) + 1)]


def made_entries(plan: Any, entries: Sequence[ViewEntry], today: dt.date) -> list[ViewEntry]:
    """The folders ``plan`` makes that ``entries`` lacks, as view entries (with their parents): what
    a ``mkdir`` makes and where a move, a copy or an extraction puts files. Anything that is not a
    plain relative name is left out; the plan is validated elsewhere."""
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return []
    known = {entry.path for entry in entries}
    made: list[ViewEntry] = []
    for place in (place for step in steps for place in _made_places(step)):
        for folder in _with_parents(place) if _plain(place) else []:
            if folder not in known:
                known.add(folder)
                made.append(ViewEntry(folder, True, 0, today))
    return made


#: Where each op that needs the folder it writes into puts its file, by key ("from" moves and
#: copies of one file, and extractions, need the folder their "to" is in).
_PUT_AT = {"write": "path", "append": "path", "archive": "to", "extract": "to"}


def _put_in(step: dict[str, Any]) -> str | None:
    """The folder that must be there before ``step`` (None: it needs none)."""
    op = step.get("op")
    key = _PUT_AT.get(op) if isinstance(op, str) else None
    if key is None and op in ("move", "copy") and "from" in step:
        key = "to"
    path = step.get(key) if key else None
    return posixpath.dirname(path.rstrip("/")) if isinstance(path, str) else None


def existing_folders(entries: Sequence[ViewEntry]) -> set[str]:
    """The folders of a workspace listed as ``entries``: those listed, and those its files are in."""
    folders: set[str] = set()
    for entry in entries:
        folder = entry.path if entry.is_dir else posixpath.dirname(entry.path)
        if folder:
            folders.update(_with_parents(folder))
    return folders


def with_parents(plan: Any, folders: set[str]) -> Any:
    """``plan`` with a ``mkdir`` before each step that puts a file in a plain folder that neither is
    in ``folders`` (the workspace's, :func:`existing_folders`) nor is made by an earlier step; the
    plan itself when no such folder is missing.

    The engine refuses such a step ("add a mkdir step before"), and rightly: a plan says each folder
    it makes. A request that names where a file goes ("zip the 2025 invoices into
    backups/invoices-2025.zip", where there is no backups/ yet) asks for that folder too, so the
    planner's answer is completed with it, before the dry run and the approval dialog show the whole
    plan. Anything but a plain relative folder is left as it is, for the dry run to refuse."""
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return plan
    known = set(folders)
    out: list[Any] = []
    for step in steps:
        folder = _put_in(step) if isinstance(step, dict) else None
        if folder and _plain(folder) and folder not in known:
            out.append({"op": "mkdir", "path": folder})
            known.update(_with_parents(folder))
        out.append(step)
        known.update(folder for place in _made_places(step) if _plain(place) for folder in _with_parents(place))
    return plan if len(out) == len(steps) else {**plan, "steps": out}
