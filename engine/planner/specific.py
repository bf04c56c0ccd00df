"""A match takes files from the place a request names most closely: where the request says the words
of a folder and of a folder under it too ("the phd2 guide logs" over ``logs/`` and ``logs/phd2 guide
logs/``, "the 2025 invoices" over ``invoices/`` and ``invoices/2025/``), a match offers the inner
folder and not the outer one, which holds more.

The outer folder stays where the best-named folders under it are several, none inside another ("the
match reports" of two teams, each in a folder of its own): it is the one place that holds them all.
A glob over the whole workspace ("**") always stays: "every .tmp file" names no place at all.
A folder counts as named by its own words, each said (forgiving a plural or a typo,
:class:`engine.planner.words.Request`); glue words never count, nor words that say an op, a time or
a kind of file ("archive the logs older than 30 days" names neither ``logs/archive/`` nor
``logs/old/``; "the .tmp junk" is no ``build/tmp/``). The outer folder stays too where the request
says files are in it ("every scan under records").
"""

from __future__ import annotations

import re
from typing import Any

from engine.planner.kind_words import KIND_STEMS
from engine.planner.refer import OP_WORDS
from engine.planner.schema_edit import resolved
from engine.planner.spoken import TIME_WORDS
from engine.planner.words import Request, name_words, stem

#: Words that say what is done, when, or to what kind of file: they name no folder here.
_NOT_NAMING = frozenset(
    stem(word) for word in [*(word for words in OP_WORDS.values() for word in words), *TIME_WORDS, *KIND_STEMS]
)
#: Where a request says files are: "in", "under", "of" or "from" a folder.
_WHERE = r"\b(?:in|from|of|inside|within|under)\s+(?:the\s+|my\s+|our\s+)?"


def _place(glob: str) -> str:
    """The folder ``glob`` selects under: its path up to the first part with a wildcard."""
    parts = []
    for part in glob.split("/"):
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return "/".join(parts)


def _inside(inner: str, outer: str) -> bool:
    return inner.startswith(outer + "/")


def _said(place: str, said: Request) -> frozenset[str]:
    """The words of ``place``'s folders that ``said`` holds."""
    return frozenset(word for word in name_words(place) if stem(word) not in _NOT_NAMING and said.says(word))


def _said_as_where(place: str, request: str) -> bool:
    """Whether ``request`` says files are in ``place`` (spelled as its path or its own name)."""
    names = {place, place.rpartition("/")[2]}
    return any(re.search(_WHERE + re.escape(name) + r"(?![\w-])", request, re.IGNORECASE) for name in names)


def specific_globs(globs: list[str], said: Request) -> list[str]:
    """``globs`` less those whose place a folder under it is named more closely by ``said`` than (see
    the module); all of them where none is."""
    places = {glob: _place(glob) for glob in globs}
    words = {place: _said(place, said) for place in set(places.values())}
    dropped: set[str] = set()
    for outer in words:
        if not outer or _said_as_where(outer, said.text):
            continue
        closer = [place for place in words if _inside(place, outer) and words[place] > words[outer]]
        if not closer:
            continue
        most = max(len(words[place]) for place in closer)
        best = [place for place in closer if len(words[place]) == most]
        if all(_inside(one, other) or _inside(other, one) or one == other for one in best for other in best):
            dropped.add(outer)
    kept = [glob for glob in globs if places[glob] not in dropped]
    return kept or globs


def specific_matches(schema: dict[str, Any], request: str) -> dict[str, Any]:
    """``schema`` with the globs of each match definition kept to the places ``request`` names most
    closely (:func:`specific_globs`), in place."""
    defs = schema["$defs"]
    said = Request(request)
    for name in [key for key in defs if key == "match" or key.endswith("-match")]:
        match = defs[name]
        if not isinstance(match, dict) or not isinstance(match.get("properties"), dict):
            continue
        globs_of = resolved(defs, match["properties"].get("glob"))
        globs = globs_of.get("enum") if isinstance(globs_of, dict) else None
        if not isinstance(globs, list) or not all(isinstance(glob, str) for glob in globs):
            continue
        kept = specific_globs(globs, said)
        if kept != globs:
            match["properties"]["glob"] = {**globs_of, "enum": kept}
    return schema
