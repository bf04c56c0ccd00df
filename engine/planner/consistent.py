"""A match made one choice per place: each glob a step may select from, with only the filters that
select something there.

The narrowed schema offers a match's glob and each of its filters as lists of their own, and a
small model that picks a folder and then a kind the workspace has elsewhere selects nothing: the
dry run refuses the plan, and the Agent pane asks again. :func:`consistent_matches` makes every
match definition an ``anyOf`` with one branch per group of globs, in which each filter the workspace
can be checked against (the kinds, name patterns, tags, sizes and dates) keeps only values that
select at least one entry under those globs on their own. A filter the request requires that keeps
no value there, or a kind it names that no file there is (:func:`consistent_matches`), rules the
glob out; where that rules out every glob, the match stays as it was. Globs that select nothing yet
(a folder a step before fills) keep every filter, as do filters on what files say, which the
listing does not hold. Filters are checked one by one, not together: a kind and a size may each
select something there and still nothing both. The globs kept out stay as offered: an answer that
keeps out all a place holds is refused by the dry run, and where it could not keep it out, the
model took every file there more often than the right ones.
"""

from __future__ import annotations

import bisect
import calendar
import copy
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.files.match import MatchError, check_glob, compile_regex, parse_size, parse_when
from engine.planner.prompt import ViewEntry
from engine.planner.schema_edit import resolved
from engine.serve.schema_rewrite import MAX_ENUMERATED
from engine.workspace.globs import glob_regex
from engine.workspace.sandbox import SandboxError

#: The filters whose values are checked against the entries under a glob.
_CHECKED = ("ext", "name_regex", "tag", "larger_than", "smaller_than", "modified_after", "modified_before")
#: A listed day is a date, not an instant: a file of that day may be as early as the start of the day
#: before (time zones) and as late as the end of the day after.
_DAY = 86400.0

_Test = Callable[[ViewEntry], bool]


def _start(day: dt.date) -> float:
    return time.mktime(dt.datetime.combine(day, dt.time()).timetuple())


def _value_test(key: str, value: Any, now: float) -> _Test | None:
    """Whether an entry is selected by ``key`` = ``value`` alone (None: a value that cannot be checked)."""
    try:
        if key == "ext":
            ext = ("" if value.startswith(".") else ".") + value.lower()
            return lambda entry: entry.path.rpartition("/")[2].lower().endswith(ext)
        if key == "name_regex":
            pattern = compile_regex(value, key)
            return lambda entry: pattern.search(entry.path.rpartition("/")[2])
        if key == "tag":
            return lambda entry: value in entry.tags
        if key == "larger_than":
            least = parse_size(value, key)
            return lambda entry: entry.size > least
        if key == "smaller_than":
            most = parse_size(value, key)
            return lambda entry: entry.size < most
        if key == "modified_after":
            after = parse_when(value, key, now)
            return lambda entry: _start(entry.day) + 2 * _DAY > after
        if key == "modified_before":
            before = parse_when(value, key, now)
            return lambda entry: _start(entry.day) - _DAY < before
    except (MatchError, ValueError, TypeError, AttributeError, OverflowError):
        return None
    return None


def _kept(values: Sequence[Any], key: str, under: Sequence[ViewEntry], now: float) -> list[Any]:
    """The ``values`` of ``key`` that select at least one of the entries ``under`` a glob."""
    kept = []
    for value in values:
        test = _value_test(key, value, now)
        try:
            if test is None or any(test(entry) for entry in under):
                kept.append(value)
        except SandboxError:  # (a pattern too slow to try is offered as it was)
            kept.append(value)
    return kept


def _few_lists(prop: dict[str, Any], values: list[Any]) -> bool:
    """Whether the lists of ``values`` that ``prop`` allows, each value once, are few enough for the
    server to decode a ``contains`` exactly (:data:`~engine.serve.schema_rewrite.MAX_ENUMERATED`)."""
    most = min(prop.get("maxItems", len(values)), len(values))
    count = sum(math.perm(len(values), k) for k in range(prop.get("minItems", 0), most + 1))
    return count <= MAX_ENUMERATED


def _branch(
    defs: dict[str, Any], match: dict[str, Any], under: Sequence[ViewEntry], now: float, *, by_kind: bool
) -> dict[str, Any] | None:
    """``match`` with each checked filter kept to the values that select something among ``under``;
    None when a filter it requires keeps none (``by_kind``: a kind it offers is required so)."""
    branch = copy.deepcopy(match)
    properties = branch["properties"]
    required = {*branch.get("required", ()), *(["ext"] if by_kind else [])}
    for key in _CHECKED:
        prop = properties.get(key)
        if not isinstance(prop, dict):
            continue
        is_list = key == "ext"
        holder = resolved(defs, prop.get("items")) if is_list else resolved(defs, prop)
        values = holder.get("enum") if isinstance(holder, dict) else None
        if not isinstance(values, list):
            continue
        kept = _kept(values, key, under, now)
        if not kept:
            if key in required:
                return None
            del properties[key]
            continue
        if len(kept) == len(values):
            continue
        if key == "ext" and _few_lists(prop, values):
            # (a list of kinds selects files of any of them: one that names a kind a place lacks
            # beside one it has, "the pics" as .jpg, .png and .heic, selects as well)
            properties[key] = {**prop, "items": {"enum": values}, "uniqueItems": True, "contains": {"enum": kept}}
        elif is_list:
            # (as many kinds as are there, where more were asked of every place: "the pics" of a
            # folder that holds only .jpg files)
            most = min(prop.get("maxItems", len(kept)), len(kept))
            properties[key] = {**prop, "items": {"enum": kept}, "minItems": min(prop.get("minItems", 0), most),
                               "maxItems": most}  # fmt: skip
        else:
            properties[key] = {"enum": kept}
    return branch


class _Listing:
    """The entries of a workspace sorted by path, to find those a glob selects without trying every
    one: a folder's ``/**`` and ``/*`` are a range of paths."""

    def __init__(self, entries: Sequence[ViewEntry]) -> None:
        self.entries = sorted(entries, key=lambda entry: entry.path)
        self.paths = [entry.path for entry in self.entries]

    def under(self, glob: str, kinds: set[str]) -> list[ViewEntry]:
        """The entries of ``kinds`` that ``glob`` selects (none where it cannot be tried)."""
        folder, _, last = glob.rpartition("/")
        if glob == "**":
            found = self.entries
        elif folder and last in ("*", "**") and not any(ch in folder for ch in "*?["):
            start = bisect.bisect_left(self.paths, f"{folder}/")
            end = bisect.bisect_left(self.paths, f"{folder}/\U0010ffff")
            found = self.entries[start:end]
            if last == "*":
                found = [entry for entry in found if "/" not in entry.path[len(folder) + 1 :]]
        else:
            try:
                pattern = glob_regex(check_glob(glob))
                found = [entry for entry in self.entries if pattern.match(entry.path)]
            except (MatchError, SandboxError):
                return []
        return [entry for entry in found if ("dir" if entry.is_dir else "file") in kinds]


def _kinds(defs: dict[str, Any], match: dict[str, Any]) -> set[str]:
    prop = resolved(defs, match["properties"].get("type"))
    if isinstance(prop, dict) and "const" in prop:
        return {prop["const"]}
    if isinstance(prop, dict) and isinstance(prop.get("enum"), list):
        return {"file", "dir"} if "any" in prop["enum"] else set(prop["enum"])
    return {"file"}


def consistent_match(
    defs: dict[str, Any], name: str, entries: Sequence[ViewEntry] | _Listing, now: float, *, by_kind: bool = True
) -> None:
    """Make ``defs[name]``, a match definition, one ``anyOf`` branch per group of globs (see the module;
    ``by_kind``: the step it is of asks for the kinds it offers)."""
    match = defs[name]
    if not isinstance(match, dict) or "properties" not in match or "anyOf" in match:
        return
    globs_of = resolved(defs, match["properties"].get("glob"))
    globs = globs_of.get("enum") if isinstance(globs_of, dict) else None
    if not isinstance(globs, list) or not globs:
        return
    kinds = _kinds(defs, match)
    listing = entries if isinstance(entries, _Listing) else _Listing(entries)
    branches: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for glob in globs:
        under = listing.under(glob, kinds) if isinstance(glob, str) else []
        branch = _branch(defs, match, under, now, by_kind=by_kind) if under else copy.deepcopy(match)
        if branch is None:
            continue
        branch["properties"].pop("glob", None)
        key = json.dumps(branch, sort_keys=True)
        branches.setdefault(key, ([], branch))[0].append(glob)
    if not branches:
        return  # no glob fits what the request requires: the match stays as it was
    ways = []
    for group, branch in branches.values():
        branch["properties"] = {"glob": {"enum": group}, **branch["properties"]}
        ways.append(branch)
    defs[name] = ways[0] if len(ways) == 1 else {"anyOf": ways}


def consistent_matches(
    schema: dict[str, Any], entries: Sequence[ViewEntry], today: dt.date, *, one_thing: bool
) -> dict[str, Any]:
    """``schema`` with every match definition made consistent with ``entries`` as of ``today`` (in
    place). A kind a match offers rules out the places that hold none of it in the match of a piece
    of a request, which asks one thing, and in the whole request's where it asks ``one_thing``: "the
    .bak files in old" are not in a folder that holds no .bak file, and without the kind that folder's
    match would take every file there. (Asked several things, a kind may be said of one of them
    only: "move the database notes into notes/database and then back up Paperwork".)"""
    defs = schema["$defs"]
    now = float(calendar.timegm(dt.datetime.combine(today, dt.time(12)).timetuple()))
    listing = _Listing(entries)
    for name in [key for key in defs if key == "match" or key.endswith("-match")]:
        consistent_match(defs, name, listing, now, by_kind=one_thing or name != "match")
    return schema
