"""Where the reply schema lets a step put files, and where it takes them from: a new folder is one the
request says as a place (never a stray word of it, nor the first words of a longer name it says),
and a request that only renames, deletes or tags takes files from the folder it says they are in."""

from __future__ import annotations

import datetime as dt

from jsonschema import Draft202012Validator

from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from engine.planner.refer import referred_ops, takes_from_folder
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


def _ops_offered(schema: dict) -> list[str]:
    if schema["properties"]["steps"].get("maxItems") == 0:
        return []
    return schema["$defs"]["step"]["properties"]["op"]["enum"]


def test_no_new_file_or_folder_is_named_by_a_stray_word() -> None:
    # A file written is a name the request gives or a file it names: never "now" nor "style".
    request = "we're opening saturdays now, add 'Sat 10:00-14:00' to the style sheet"
    schema = narrowed_schema(request, ENTRIES, TODAY)
    assert "write" not in _ops_offered(schema)
    assert not _allows(schema, {"op": "write", "path": "now", "content": "Sat 10:00-14:00\n"})
    assert _allows(schema, {"op": "append", "path": "clients/Lumiere/style sheet.md", "content": "Sat 10:00-14:00\n"})
    # ... and a line is added to a file of text, never to a PDF: "the price list" is price list.pdf.
    schema = narrowed_schema("add 'Sat 10:00-14:00' to the price list", ENTRIES, TODAY)
    assert not _allows(schema, {"op": "append", "path": "honey sales/price list.pdf", "content": "Sat 10:00-14:00\n"})
    # ... while a name it gives is written.
    schema = narrowed_schema("write 'call the printer' into notes/todo.md", ENTRIES, TODAY)
    assert _allows(schema, {"op": "write", "path": "notes/todo.md", "content": "call the printer\n"})
    # A folder made is one it says: unpacking "into the logs folder" makes no "kessel".
    request = "unpack the kessel token pack into the logs folder"
    schema = narrowed_schema(request, [*ENTRIES, ViewEntry("kessel tokens.zip", False, 9_000, TODAY)], TODAY)
    assert not _allows(schema, {"op": "mkdir", "path": "kessel"})
    assert not _allows(schema, {"op": "extract", "from": "kessel tokens.zip", "to": "kessel"})
    assert _allows(schema, {"op": "extract", "from": "kessel tokens.zip", "to": "logs"})
    # Where a request says no place and names no file, nothing is made: it takes no step at all.
    flat = [ViewEntry(name, False, 900, TODAY) for name in ("a.txt", "b.txt")]
    schema = narrowed_schema("text Jens that the rotor came in and he can pick it up", flat, TODAY)
    assert not {"write", "mkdir", "move", "copy", "classify"} & set(_ops_offered(schema))
    for op in ({"op": "write", "path": "came", "content": "Jens\n"}, {"op": "mkdir", "path": "rotor"},
               {"op": "move", "paths": ["a.txt"], "to": "came"}):  # fmt: skip
        assert not _allows(schema, op), op
    assert _allows(schema)
    # ... under a schema the server takes (no empty list of ops, nor of ways to take one).
    schema = narrowed_schema("tidy up", flat, TODAY)
    assert schema["properties"]["steps"]["maxItems"] == 0
    Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["step"]["properties"]["op"]["enum"]
    assert schema["$defs"]["step"]["allOf"]


def test_files_that_can_go_are_deleted() -> None:
    assert referred_ops("the full recordings older than a month can go, theyre massive") == {"delete"}
    assert referred_ops("these can all go now") == {"delete"}
    # ... not files that go somewhere.
    assert "delete" not in (referred_ops("the pdfs can go into docs") or set())
    schema = narrowed_schema("the logs older than a month can go now", ENTRIES, TODAY)
    old_logs = {"glob": "logs/**", "modified_before": "30d"}
    assert _allows(schema, {"op": "delete", "match": old_logs})
    assert not _allows(schema, {"op": "move", "match": old_logs, "to": "logs"})


def test_files_go_only_into_a_folder_the_request_mentions() -> None:
    # An existing folder it never mentions is no place to put things: a word of a file's name
    # ("server") makes a step about that file, never a move of it into logs/ or site/.
    schema = narrowed_schema("the server notes say something odd", ENTRIES, TODAY)
    for folder in ("logs", "site", "scripts"):
        assert not _allows(schema, {"op": "move", "paths": ["logs/server.log"], "to": folder}), folder
    # ... while one it mentions is.
    schema = narrowed_schema("the logs belong with the scripts", ENTRIES, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "logs/**"}, "to": "scripts"})


def test_a_question_that_asks_no_file_operation_takes_no_step() -> None:
    for question in ("whats the forecast at blue hole for saturday?", "where did the meeting get moved to",
                     "who wrote the style sheet"):  # fmt: skip
        schema = narrowed_schema(question, ENTRIES, TODAY)
        assert schema["properties"]["steps"]["maxItems"] == 0, question
    # A question that asks for one does: "can you move the logs into scripts?"
    schema = narrowed_schema("can you move the logs into scripts?", ENTRIES, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "logs/**"}, "to": "scripts"})


def test_files_renamed_are_sent_nowhere() -> None:
    request = "rename the lumiere chapters to chapitre-01, chapitre-02 and so on, keep the extension"
    schema = narrowed_schema(request, ENTRIES, TODAY)
    chapters = {"glob": "clients/Lumiere/**"}
    assert not _allows(schema, {"op": "move", "match": chapters, "to": "chapitre-01"})
    assert not _allows(schema, {"op": "classify", "match": chapters, "rules": [{"default": True, "to": "chapitre-01"}]})
    assert _allows(schema, {"op": "rename", "match": chapters, "template": "chapitre-{n:02}{ext}"})
    # ... unless it says to send them: "rename them and put them in old".
    schema = narrowed_schema(f"{request} and move them into drafts", ENTRIES, TODAY)
    renamed = {"op": "rename", "match": chapters, "template": "chapitre-{n:02}{ext}"}
    assert _allows(schema, renamed, {"op": "move", "match": {"glob": "clients/Lumiere/**"}, "to": "drafts"})


def test_nothing_is_deleted_unless_the_request_says_so() -> None:
    # A request that says no op at all is offered every op but a delete.
    request = "new job: projects/Bellevue with drawings, photos and admin folders inside"
    assert referred_ops(request) is None
    assert "delete" not in _ops_offered(narrowed_schema(request, ENTRIES, TODAY))
    # ... and a word of deleting that is as often a noun still says one: "bin", "empty".
    schema = narrowed_schema("bin the old style sheet (style sheet.md), the new one stays", ENTRIES, TODAY)
    assert _allows(schema, {"op": "delete", "path": "clients/Lumiere/style sheet.md"})
