"""A match made one choice per place: a glob offers only the filters that select something under
it, a kind the request names rules out a place that holds none, and a place that holds nothing yet
keeps every filter."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from jsonschema import Draft202012Validator

from engine.planner.consistent import consistent_match, consistent_matches
from engine.planner.guided import guided_schema
from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from tests.engine.planner.test_narrow import TODAY, _allows


def _match(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["glob"],
            "properties": {"type": {"enum": ["file"]}, **properties}}  # fmt: skip


def _entry(path: str, *, size: int = 100, day: dt.date = TODAY, tags: tuple[str, ...] = (),
           is_dir: bool = False) -> ViewEntry:  # fmt: skip
    return ViewEntry(path, is_dir, size, day, tags)


ENTRIES = [
    _entry("photos", is_dir=True),
    _entry("photos/a.jpg", size=5_000_000, day=TODAY - dt.timedelta(days=400), tags=("holiday",)),
    _entry("photos/b.heic", size=2_000_000),
    _entry("docs", is_dir=True),
    _entry("docs/report-1.pdf", size=300),
    _entry("docs/notes.md", size=20, tags=("draft",)),
]


def _branches(match: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each glob of a consistent match with the branch it is offered in."""
    ways = match.get("anyOf", [match])
    return {glob: way for way in ways for glob in way["properties"]["glob"]["enum"]}


def _allows_match(branch: dict[str, Any], match: dict[str, Any]) -> bool:
    return Draft202012Validator(branch).is_valid(match)


def _values(branch: dict[str, Any], key: str, defs: dict[str, Any] | None = None) -> list[Any] | None:
    prop = branch["properties"].get(key)
    if prop is None:
        return None
    held = prop.get("items", prop)
    held = (defs or {}).get(held.get("$ref", "").removeprefix("#/$defs/"), held)
    return list(held["enum"])


def test_each_place_offers_only_the_filters_that_select_something_there() -> None:
    defs = {
        "glob": {"enum": ["photos/**", "docs/**", "**"]},
        "match": _match(
            glob={"$ref": "#/$defs/glob"},
            ext={"type": "array", "minItems": 1, "maxItems": 4, "items": {"enum": [".jpg", ".heic", ".pdf", ".md"]}},
            name_regex={"enum": ["^report"]},
            tag={"enum": ["holiday", "draft"]},
            larger_than={"enum": ["1MB", "1KB"]},
            modified_before={"enum": ["365d"]},
        ),
    }
    consistent_match(defs, "match", ENTRIES, 1_781_524_800.0)
    branches = _branches(defs["match"])
    photos, docs, everywhere = branches["photos/**"], branches["docs/**"], branches["**"]
    # (a list of kinds may name one a place lacks beside one it has: it selects the files of either)
    assert photos["properties"]["ext"]["contains"] == {"enum": [".jpg", ".heic"]}
    assert docs["properties"]["ext"]["contains"] == {"enum": [".pdf", ".md"]}
    assert "contains" not in everywhere["properties"]["ext"]
    assert _allows_match(photos, {"glob": "photos/**", "ext": [".jpg", ".pdf"]})
    assert not _allows_match(photos, {"glob": "photos/**", "ext": [".pdf", ".md"]})
    # (a filter no file there passes is not offered there at all)
    assert _values(photos, "name_regex") is None
    assert _values(docs, "name_regex") == ["^report"]
    assert _values(photos, "tag") == ["holiday"]
    assert _values(docs, "tag") == ["draft"]
    assert _values(photos, "larger_than") == ["1MB", "1KB"]
    assert _values(docs, "larger_than") is None
    assert _values(photos, "modified_before") == ["365d"]
    assert _values(docs, "modified_before") is None
    # (where the lists are too many for the server to decode a "contains" exactly, a list names
    # only kinds the place has, and no more of them than it has)
    many = [f".k{n}" for n in range(8)]
    ext = {"type": "array", "minItems": 1, "maxItems": 8, "items": {"enum": [".jpg", *many]}}
    wide = {"match": _match(glob={"enum": ["photos/**"]}, ext=ext)}
    consistent_match(wide, "match", ENTRIES, 1_781_524_800.0)
    assert wide["match"]["properties"]["ext"]["items"] == {"enum": [".jpg"]}
    assert wide["match"]["properties"]["ext"]["maxItems"] == 1


def test_a_filter_the_request_requires_rules_out_a_place_where_it_selects_nothing() -> None:
    defs = {"match": _match(glob={"enum": ["photos/**", "docs/**"]}, tag={"enum": ["draft"]})}
    defs["match"]["required"] = ["glob", "tag"]
    consistent_match(defs, "match", ENTRIES, 1_781_524_800.0)
    assert list(_branches(defs["match"])) == ["docs/**"]
    # (where no place is left, the match stays as it was: the plan's own checks say why)
    stays = {"match": _match(glob={"enum": ["photos/**"]}, tag={"enum": ["draft"]})}
    stays["match"]["required"] = ["glob", "tag"]
    before = copy.deepcopy(stays)
    consistent_match(stays, "match", ENTRIES, 1_781_524_800.0)
    assert stays == before


def test_a_place_that_holds_nothing_yet_keeps_every_filter() -> None:
    ext = {"type": "array", "minItems": 1, "maxItems": 2, "items": {"enum": [".jpg", ".pdf"]}}
    defs = {"match": _match(glob={"enum": ["photos/**", "sorted/**"]}, ext=ext)}
    consistent_match(defs, "match", ENTRIES, 1_781_524_800.0)
    branches = _branches(defs["match"])
    assert branches["sorted/**"]["properties"]["ext"] == ext
    assert branches["photos/**"]["properties"]["ext"]["contains"] == {"enum": [".jpg"]}


def test_a_kind_the_request_names_that_a_place_lacks_rules_the_place_out() -> None:
    ext = {"type": "array", "minItems": 1, "maxItems": 1, "items": {"enum": [".pdf"]}}
    defs = {"match": _match(glob={"enum": ["photos/**", "docs/**"]}, ext=ext)}
    consistent_match(defs, "match", ENTRIES, 1_781_524_800.0)
    assert list(_branches(defs["match"])) == ["docs/**"]
    # and where no place has it, the match stays as it was: its kind is not taken away from it
    # ("delete the .bak files in old" still offers .bak, which the dry run finds nowhere).
    entries = [ViewEntry("old/a.log", False, 10, TODAY), ViewEntry("old/b.txt", False, 10, TODAY)]
    schema = narrowed_schema("delete the .bak files in old", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "old/**", "ext": [".bak"]}})
    # Asked of several things, a kind said of one is no kind of the others: "move the database
    # notes to notes/database and then back up Paperwork" backs up all of Paperwork.
    mixed = [*ENTRIES, _entry("Paperwork/lease.pdf")]
    both = narrowed_schema("move the md notes in docs to archive and then back up photos into done", mixed, TODAY)
    assert _allows(both, {"op": "copy", "match": {"glob": "photos/**"}, "to": "done"})


def test_a_narrowed_schema_offers_no_kind_a_place_lacks_and_its_answers_stay_valid() -> None:
    entries = [_entry("Camera/IMG_1.jpg"), _entry("Camera/IMG_2.jpg"), _entry("scans/tax.pdf"),
               _entry("scans/receipt.png")]  # fmt: skip
    schema = narrowed_schema("move the pngs and pdfs from Camera and scans to archive", entries, TODAY)
    moved = {"op": "move", "match": {"glob": "scans/**", "ext": [".png"]}, "to": "archive"}
    assert _allows(schema, moved)
    assert not _allows(schema, {**moved, "match": {"glob": "Camera/**", "ext": [".png"]}})
    # (made again, a schema already consistent is left as it is)
    again = copy.deepcopy(schema)
    assert consistent_matches(again, entries, TODAY, one_thing=True) == schema


def test_asked_again_without_a_place_its_branch_goes() -> None:
    schema = narrowed_schema("tag the pdfs in docs and in photos as keep", ENTRIES, TODAY)
    step = {"op": "tag", "match": {"glob": "docs/**", "ext": [".pdf"]}, "tags": ["keep"]}
    assert _allows(schema, step)
    guided = guided_schema(schema, [("glob", "docs/**")])
    assert guided is not None
    assert not _allows(guided, step)
