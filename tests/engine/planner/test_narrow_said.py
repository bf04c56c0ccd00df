"""The reply schema narrowed by what a request says in words: dates and ages, the starts of names,
folders taken as folders, what it dictates for a file, and requests that are not for files."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from engine.planner.spoken import calendar_days
from tests.engine.planner.test_narrow import TODAY, _allows


def test_files_said_to_be_of_a_year_or_an_age_are_selected_by_a_date() -> None:
    entries = [ViewEntry(path, False, 10, dt.date(2024, 5, 1)) for path in ("Camera/photos-a.jpg", "Camera/b.png")]
    entries.append(ViewEntry("logs/x.log", False, 10, TODAY))
    schema = narrowed_schema("tag the 2024 photos in Camera with old-phone", entries, TODAY)
    match = {
        "glob": "Camera/**",
        "ext": [".jpg", ".png"],
        "modified_after": "2024-01-01",
        "modified_before": "2025-01-01",
    }
    assert _allows(schema, {"op": "tag", "match": match, "tags": ["old-phone"]})
    assert not _allows(schema, {"op": "tag", "match": {"glob": "Camera/**"}, "tags": ["old-phone"]})
    assert not _allows(schema, {"op": "tag", "path": "Camera/b.png", "tags": ["old-phone"]})
    # "photos" is a kind of file here, not the start of a name.
    assert not _allows(schema, {"op": "tag", "match": {**match, "name_regex": "^photos"}, "tags": ["old-phone"]})
    week = narrowed_schema("copy this week's logs to incident-0709", entries, TODAY)
    assert _allows(week, {"op": "copy", "match": {"glob": "logs/**", "modified_after": "7d"}, "to": "incident-0709"})
    assert not _allows(week, {"op": "copy", "match": {"glob": "logs/**"}, "to": "incident-0709"})
    # A year given as a tag, a folder named by a year and "old" as a place say no time.
    for request in ("label the logs with 2025", "move the logs to old", "pics in the 2024 folder -> shared"):
        free = narrowed_schema(request, [*entries, ViewEntry("2024/c.jpg", False, 10, TODAY)], TODAY)
        assert "modified_after" not in free["$defs"]["match"].get("required", []), request


def test_names_prefixed_with_what_the_request_spells_start_with_it() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("data/db-dump-1.sql", "data/db-dump-2.sql")]
    schema = narrowed_schema("Please prefix the .sql dumps in data with prod- (db-dump-... -> prod-db-dump-...)",
                             entries, TODAY)  # fmt: skip
    rename = {"op": "rename", "match": {"glob": "data/**", "ext": [".sql"]}, "template": "prod-{name}"}
    assert _allows(schema, rename)
    assert not _allows(schema, {**rename, "template": "{mtime:%Y-%m-%d}_{name}"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "data/**", "ext": [".sql"]}, "to": "data"})


def test_a_request_for_code_or_mail_gets_no_steps() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("tests/test_api.py", "logs/api.log")]
    not_files = (
        "can u fix the flaky test in tests/test_api.py, it fails like every other run",
        "write a funcion that parses dates",
        "email the report to finance@acme.com",
        "compress the wedding video so it fits on a usb stick",
        "add a --verbose flag to the cli",
        "remind me to call mum at 5",
        "forward the api log to dave",
        "print the boarding passes",
        "push my changes to github",
        "post the lisbon photos on instagram",
    )
    for request in not_files:
        steps = narrowed_schema(request, entries, TODAY)["properties"]["steps"]
        assert steps["maxItems"] == 0, request
    for request in ("copy the logs to incident", "zip logs as logs.zip", "move the api log to to-print"):
        assert narrowed_schema(request, entries, TODAY)["properties"]["steps"]["maxItems"] == 20, request


def test_folders_said_as_what_is_taken_are_selected_as_folders_and_only_then() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("Downloads/a.pdf", "Downloads/hw3/main.py")]
    schema = narrowed_schema("move just the folders from Downloads into code/, not the loose files", entries, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "Downloads/*", "type": "dir"}, "to": "code"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "Downloads/*"}, "to": "code"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "Downloads/**", "type": "dir"}, "to": "code"})
    # Files are what other requests take, folders never.
    schema = narrowed_schema("move the pdfs from Downloads into code/", entries, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "Downloads/**", "ext": [".pdf"]}, "to": "code"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "Downloads/*", "type": "dir"}, "to": "code"})


def test_what_a_request_dictates_or_numbers_in_names_ask_for_nothing() -> None:
    entries = [ViewEntry("logs/server-2026-02-07.log", False, 10, TODAY), ViewEntry("docs/design.md", False, 10, TODAY),
               ViewEntry("releases/tilemap-1.2.0.tar.gz", False, 10, TODAY)]  # fmt: skip
    request = "make a docs/meetings folder and put a note in it, 2026-02-10.md, that says: decided to drop windows 7"
    ops = narrowed_schema(request, entries, TODAY)["$defs"]["step"]["properties"]["op"]["enum"]
    assert "delete" not in ops
    assert "move" not in ops or "drop" not in json.dumps(narrowed_schema(request, entries, TODAY)["$defs"]["target"])
    # A version is no file name and no count: the release is unpacked into the folder said.
    defs = narrowed_schema("unpack the 1.2.0 release tarball into vendor/tilemap", entries, TODAY)["$defs"]
    assert "releases/1.2.0" not in json.dumps(defs["extract"])
    assert "limit" not in defs["match"]["properties"]
    # An archive keeps what it packs when the request says not to delete it.
    defs = narrowed_schema("zip up the logs as logs.zip (dont delete them)", entries, TODAY)["$defs"]
    assert '"remove"' not in json.dumps(defs["archive"])
    defs = narrowed_schema("zip up the logs as logs.zip and delete them", entries, TODAY)["$defs"]
    assert '"remove": {"const": true}' in json.dumps(defs["archive"])


def test_ages_said_with_a_count_and_days_said_by_their_month() -> None:
    assert calendar_days("copy what changed since July 1st into review/", dt.date(2026, 7, 8)) == ["2026-07-01"]
    assert calendar_days("the 3rd of march 2025", dt.date(2026, 7, 8)) == ["2025-03-03"]
    assert calendar_days("since Dec 24", dt.date(2026, 7, 8)) == ["2025-12-24"]  # the last one, not one to come
    assert calendar_days("decided to drop windows 7", dt.date(2026, 7, 8)) == []
    entries = [ViewEntry("catalogs/a.zip", False, 10, TODAY), ViewEntry("site/b.html", False, 10, TODAY)]

    def values(request: str, key: str) -> Any:
        defs = narrowed_schema(request, entries, TODAY)["$defs"]
        found = defs["match"]["properties"][key]
        return defs[found["$ref"].rsplit("/", 1)[-1]] if "$ref" in found else found

    assert values("get rid of the catalog backups older than six months", "modified_before") == {"enum": ["180d"]}
    request = "copy everything in site/ that changed since July 1st into review/"
    assert values(request, "modified_after") == {"enum": ["2025-07-01"]}  # TODAY is in June
    assert "modified_after" in narrowed_schema(request, entries, TODAY)["$defs"]["match"]["required"]
