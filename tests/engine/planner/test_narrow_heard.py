"""The reply schema narrowed by what people type in a hurry: text dictated after a colon, a folder
named with the one it goes in, tags swapped in any words, a file named without its extension, a
name without its accents, a pattern typed with a star, kinds listed with the places they go."""

from __future__ import annotations

from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from tests.engine.planner.test_narrow import TODAY, _allows


def _files(*paths: str, tags: tuple[str, ...] = ()) -> list[ViewEntry]:
    return [ViewEntry(path, False, 100, TODAY, tags) for path in paths]


def test_text_a_colon_introduces_runs_to_the_end_and_asks_for_nothing() -> None:
    entries = _files("maintenance/engine hours.md", "bookings/cancellations.txt")
    said = "16/08 1247h, new impeller fitted. checked belts & hoses"
    schema = narrowed_schema(f"add this to the engine hours file: {said}", entries, TODAY)
    assert _allows(schema, {"op": "append", "path": "maintenance/engine hours.md", "content": f"{said}\n"})
    # (not cut short at a sentence's end or a sign, nor a folder "new" for the words it dictates)
    assert not _allows(schema, {"op": "append", "path": "maintenance/engine hours.md", "content": "16/08 1247h\n"})
    assert not _allows(schema, {"op": "append", "path": "maintenance/engine hours.md",
                                "content": "16/08 1247h, new impeller fitted\n"})  # fmt: skip
    assert not _allows(schema, {"op": "mkdir", "path": "new"})
    # It stops where the request goes on to something else.
    two = narrowed_schema("add to bookings/cancellations.txt: biscuit cancelled; then move the engine hours file into "
                          "bookings", entries, TODAY)  # fmt: skip
    line = {"op": "append", "path": "bookings/cancellations.txt", "content": "biscuit cancelled\n"}
    assert _allows(two, line, {"op": "move", "paths": ["maintenance/engine hours.md"], "to": "bookings"})
    # A colon inside a quote introduces nothing.
    quoted = narrowed_schema("write 'exam: feb 12, room H2' into bookings/exam.txt", entries, TODAY)
    assert _allows(quoted, {"op": "write", "path": "bookings/exam.txt", "content": "exam: feb 12, room H2\n"})


def test_a_file_or_folder_named_with_the_folder_it_goes_in_is_made_there() -> None:
    entries = _files("supply teacher/timetable.pdf", "invoices/inv-1.pdf", "invoices/inv-2.pdf")
    note = narrowed_schema("write a note in the supply teacher folder called cover notes thursday.md: seating plan "
                           "is on the wall", entries, TODAY)  # fmt: skip
    step = {"op": "write", "path": "supply teacher/cover notes thursday.md", "content": "seating plan is on the wall\n"}
    assert _allows(note, step)
    assert not _allows(note, {**step, "path": "cover notes thursday.md"})
    made = narrowed_schema("make a folder called chase up inside invoices and move the invoices into it",
                           entries, TODAY)  # fmt: skip
    assert _allows(
        made,
        {"op": "mkdir", "path": "invoices/chase up"},
        {"op": "move", "match": {"glob": "invoices/*"}, "to": "invoices/chase up"},
    )


def test_files_a_tag_is_swapped_on_are_chosen_by_the_tag_they_had() -> None:
    entries = [
        *_files("suppliers/invoices/a.md", "suppliers/invoices/b.md", tags=("unpaid",)),
        *_files("suppliers/invoices/c.md", tags=("paid",)),
    ]
    schema = narrowed_schema("all the supplier invoices tagged unpaid have been paid now. tag them paid and take the "
                             "unpaid tag off", entries, TODAY)  # fmt: skip
    had = {"glob": "suppliers/invoices/**", "tag": "unpaid"}
    tag, untag = {"op": "tag", "match": had, "tags": ["paid"]}, {"op": "untag", "match": had, "tags": ["unpaid"]}
    assert _allows(schema, tag, untag)
    assert not _allows(schema, {**tag, "match": {**had, "tag": "paid"}}, untag)
    assert not _allows(schema, tag, {**untag, "tags": ["paid"]})


def test_a_file_renamed_by_its_name_without_an_extension_keeps_its_extension() -> None:
    entries = _files("patterns/wrap dress v2.pdf", "patterns/shirt.pdf")
    schema = narrowed_schema("rename wrap dress v2 to wrap dress final", entries, TODAY)
    move = {"op": "move", "from": "patterns/wrap dress v2.pdf", "to": "patterns/wrap dress final.pdf"}
    assert _allows(schema, move)
    assert not _allows(schema, {**move, "to": "wrap dress final"})


def test_a_duplicate_said_of_a_file_makes_no_copy_and_a_name_is_said_without_accents() -> None:
    entries = _files("exports/members (1).csv", "exports/members.csv", "key codes/Škoda fleet.txt", "van stock/a.txt")
    schema = narrowed_schema("delete the duplicate members export, the one with (1) at the end", entries, TODAY)
    assert _allows(schema, {"op": "delete", "path": "exports/members (1).csv"})
    assert not _allows(schema, {"op": "copy", "paths": ["exports/members (1).csv"], "to": "exports"})
    moved = narrowed_schema("move the skoda fleet codes file into van stock pls", entries, TODAY)
    assert _allows(moved, {"op": "move", "paths": ["key codes/Škoda fleet.txt"], "to": "van stock"})


def test_mending_a_program_asks_no_file_operation() -> None:
    entries = _files("crashlogs/crash_2026-11-16_sync.log", "src/SyncService.swift")
    schema = narrowed_schema("can u fix the sync crash in SyncService, keeps dying on ios 18", entries, TODAY)
    assert _allows(schema)
    assert not _allows(schema, {"op": "move", "paths": ["crashlogs/crash_2026-11-16_sync.log"], "to": "src"})
    # (the names of its crash logs are files)
    logs = narrowed_schema("fix the names of the crash logs, spaces to dashes", entries, TODAY)
    assert logs["properties"]["steps"]["maxItems"] > 0


def test_names_sorted_inside_the_folder_it_spells_go_into_folders_inside_it() -> None:
    entries = _files("staff/rotas/rota draft 1.xlsx", "staff/rotas/rota final.xlsx", "staff/contracts.pdf")
    schema = narrowed_schema("Could you tidy up staff/rotas? drafts into a drafts folder and the final ones into a "
                             "final folder, thanks", entries, TODAY)  # fmt: skip
    rules = [{"regex": "draft", "to": "staff/rotas/drafts"}, {"regex": "final", "to": "staff/rotas/final"}]
    assert _allows(schema, {"op": "classify", "match": {"glob": "staff/rotas/**"}, "rules": rules})


def test_text_quoted_to_change_in_names_is_found_whole_and_a_start_at_the_start() -> None:
    entries = _files("rota/volunteer rota jan.xlsx", "rota/volunteer rota feb.xlsx", "logbook/log 2026-01.md")
    schema = narrowed_schema("in the rota folder change 'volunteer rota' to 'vol rota 2026' in the file names",
                             entries, TODAY)  # fmt: skip
    rename = {"op": "rename", "match": {"glob": "rota/**"}, "find": "volunteer rota", "replace": "vol rota 2026"}
    assert _allows(schema, rename)
    assert not _allows(schema, {**rename, "find": "volunteer", "replace": "vol"})
    start = narrowed_schema("all the logbook files start with 'log ' which is pointless, strip that off the names",
                            entries, TODAY)  # fmt: skip
    assert _allows(start, {"op": "rename", "match": {"glob": "logbook/**"}, "find": "^log ", "replace": ""})


def test_a_typed_pattern_and_kinds_listed_with_their_places() -> None:
    entries = _files("crashlogs/crash_1_sync.log", "crashlogs/crash_2_ui.log", "Downloads/a.zip", "Downloads/b.pdf")
    schema = narrowed_schema("zip all the crash_*_sync logs into crashlogs/sync crashes.zip and delete the originals",
                             entries, TODAY)  # fmt: skip
    packed = {"op": "archive", "match": {"glob": "crashlogs/crash_*_sync.*"}, "to": "crashlogs/sync crashes.zip",
              "remove": True}  # fmt: skip
    assert _allows(schema, packed)
    sorted_ = narrowed_schema("downloads is a mess. zips to Downloads/zips, pdfs to Downloads/pdfs, leave the rest",
                              entries, TODAY)  # fmt: skip
    rules = [{"ext": [".zip"], "to": "Downloads/zips"}, {"ext": [".pdf"], "to": "Downloads/pdfs"}]
    assert _allows(sorted_, {"op": "classify", "match": {"glob": "Downloads/**"}, "rules": rules})
    assert not _allows(sorted_, {"op": "archive", "match": {"glob": "Downloads/**"}, "to": "Downloads.zip"})
