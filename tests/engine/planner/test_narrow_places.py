"""Where the reply schema lets a step put files, and where it takes them from: a new folder is one the
request says as a place (never a stray word of it, nor the first words of a longer name it says),
and a request that only renames, deletes or tags takes files from the folder it says they are in."""

from __future__ import annotations

import datetime as dt

from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from engine.planner.refer import takes_from_folder
from engine.planner.said_names import spaced_names
from tests.engine.planner.test_narrow import TODAY, _allows

ENTRIES = [
    ViewEntry(path, False, size, TODAY - dt.timedelta(days=age))
    for path, size, age in (
        ("clients/Lumiere/roman-chapitre-01.docx", 120_000, 60),
        ("clients/Lumiere/roman-chapitre-02.docx", 130_000, 45),
        ("clients/Lumiere/style sheet.md", 900, 50),
        ("honey sales/receipts/receipt 2026-01.pdf", 40_000, 120),
        ("honey sales/receipts/receipt 2026-02.pdf", 40_000, 90),
        ("honey sales/price list.pdf", 40_000, 30),
        ("site/index page.html", 4_000, 10),
        ("site/about us.html", 4_000, 12),
        ("notes/meeting notes.md", 900, 3),
        ("scripts/tools/__pycache__/x.pyc", 900, 3),
        ("scripts/tools/x.py", 900, 3),
        ("logs/server.log", 300, 40),
        ("logs/app.log", 300, 4),
    )
]
FOLDERS = sorted({entry.path.rsplit("/", 1)[0] for entry in ENTRIES})


def _steps_to(schema: dict, op: dict, places: list[str]) -> list[str]:
    return [place for place in places if _allows(schema, {**op, "to": place})]


def test_a_new_folder_is_one_the_request_says_as_a_place() -> None:
    # "instead" is said as no place: renaming by a pattern sends nothing into a folder "instead".
    request = "rename the lumiere chapter files so they start with livre- instead of roman-"
    schema = narrowed_schema(request, ENTRIES, TODAY)
    chapters = {"glob": "clients/Lumiere/**", "name_regex": "^roman-"}
    assert not _allows(schema, {"op": "move", "match": chapters, "to": "instead"})
    assert not _allows(schema, {"op": "mkdir", "path": "instead"})
    assert _allows(schema, {"op": "rename", "match": chapters, "find": "roman-", "replace": "livre-"})
    # A folder made is one the request asks for, by its path or after "folders:".
    schema = narrowed_schema("I'd like a clients/Nordic and a clients/Keller folder", ENTRIES, TODAY)
    assert _allows(schema, {"op": "mkdir", "path": "clients/Nordic"}, {"op": "mkdir", "path": "clients/Keller"})
    schema = narrowed_schema("Help me I need new folders: archive and keep/misc and trash-me/2026", ENTRIES, TODAY)
    assert _allows(schema, *({"op": "mkdir", "path": p} for p in ("archive", "keep/misc", "trash-me/2026")))
    # A folder that exists is where files may go without being said as a place.
    schema = narrowed_schema("the logs belong with the scripts", ENTRIES, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "logs/**"}, "to": "scripts"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "logs/**"}, "to": "belong"})


def test_a_new_folder_is_never_the_first_words_of_a_longer_name_said() -> None:
    schema = narrowed_schema("move the logs older than a month into old stuff/2026", ENTRIES, TODAY)
    logs = {"op": "move", "match": {"glob": "logs/**", "modified_before": "30d"}}
    assert _steps_to(schema, logs, ["old stuff/2026", "old", "old stuff"]) == ["old stuff/2026"]
    schema = narrowed_schema("get the logs out of logs, into a folder called log archive", ENTRIES, TODAY)
    assert _steps_to(schema, {"op": "move", "match": {"glob": "logs/**"}}, ["log archive", "log"]) == ["log archive"]
    assert not _allows(schema, {"op": "mkdir", "path": "log"})


def test_a_name_said_with_spaces_never_ends_in_thanks_typed_with_a_slip() -> None:
    assert spaced_names("shift the logs from my server logs into old thaks", FOLDERS) == []
    assert "old stuff" in spaced_names("shift the logs into old stuff plesae", FOLDERS)
    assert "old stuff plesae" not in spaced_names("shift the logs into old stuff plesae", FOLDERS)
    # A place word starts no name: "folder under scripts" names no folder "under scripts".
    assert spaced_names("ditch every __pycache__ folder under scripts", FOLDERS) == []


def test_a_request_that_puts_nothing_anywhere_takes_files_from_the_folder_said() -> None:
    # Renamed, deleted or tagged "under" or "in" a folder: that folder's files, never everywhere.
    assert takes_from_folder("swap the spaces in file names under site/ for dashes", FOLDERS)
    schema = narrowed_schema("swap the spaces in file names under site/ for dashes", ENTRIES, TODAY)
    rename = {"op": "rename", "find": " ", "replace": "-"}
    assert _allows(schema, {**rename, "match": {"glob": "site/**"}})
    assert not _allows(schema, {**rename, "match": {"glob": "**"}})
    # ... a folder of several words too.
    request = "in honey sales/receipts replace the spaces in the file names with underscores"
    assert takes_from_folder(request, FOLDERS)
    schema = narrowed_schema(request, ENTRIES, TODAY)
    rename = {"op": "rename", "find": " ", "replace": "_"}
    assert _allows(schema, {**rename, "match": {"glob": "honey sales/receipts/**"}})
    assert not _allows(schema, {**rename, "match": {"glob": "**"}})
    assert takes_from_folder("ditch every __pycache__ folder under scripts", FOLDERS)
    # Files put somewhere may go "under" a folder: "file them under logs" says where they go.
    assert not takes_from_folder("file the pdfs under logs", FOLDERS)
