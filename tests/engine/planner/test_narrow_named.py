"""The reply schema narrowed by how a request names things: a new name of several words after
"called", the words of a new name that describe no file, a folder said only as where files go, a
number that names a thing and counts nothing, text quoted for names or dictated for a file."""

from __future__ import annotations

from engine.planner.narrow import narrowed_schema
from engine.planner.offered import counted_numbers
from engine.planner.prompt import ViewEntry
from engine.planner.refer import referred_ops
from engine.planner.said import asked_pieces, dictated_lines, not_files
from tests.engine.planner.test_narrow import TODAY, _allows


def _files(*paths: str, tags: tuple[str, ...] = ()) -> list[ViewEntry]:
    return [ViewEntry(path, False, 100, TODAY, tags) for path in paths]


def test_a_new_name_said_after_called_is_the_whole_name_and_only_it() -> None:
    entries = _files("alterations/zip replacement - Ms Ruiz.txt", "clients/Priya Nair/lehenga.txt")
    schema = narrowed_schema("new note in alterations called ruiz zip.txt that says: Ms Ruiz wants YKK invisible "
                             "zip, 22cm, navy", entries, TODAY)  # fmt: skip
    step = {
        "op": "write",
        "path": "alterations/ruiz zip.txt",
        "content": "Ms Ruiz wants YKK invisible zip, 22cm, navy\n",
    }
    assert _allows(schema, step)
    # (neither its last word alone, nor the words before "called")
    for path in ("alterations/zip.txt", "zip.txt", "alterations/alterations called ruiz zip.txt"):
        assert not _allows(schema, {**step, "path": path})


def test_the_words_of_a_new_name_describe_no_file_to_take() -> None:
    entries = _files("release reports/release template.docx", "intake/0728 fox cub mange.md",
                     "vet notes/fox cub mange treatment.txt")  # fmt: skip
    schema = narrowed_schema("copy the release template and call the copy 'release - fox cub.docx', same folder",
                             entries, TODAY)  # fmt: skip
    new = "release reports/release - fox cub.docx"
    assert _allows(schema, {"op": "copy", "from": "release reports/release template.docx", "to": new})
    assert not _allows(
        schema, {"op": "copy", "from": "intake/0728 fox cub mange.md", "to": "intake/release - fox cub.docx"}
    )
    chapter = _files("chapter 03/script ch3.md", "chapter 03/cover_v7_REAL_final.psd")
    renamed = narrowed_schema("rename the REAL_final cover psd in chapter 3 to ch3 cover.psd", chapter, TODAY)
    assert _allows(
        renamed, {"op": "move", "from": "chapter 03/cover_v7_REAL_final.psd", "to": "chapter 03/ch3 cover.psd"}
    )
    assert not _allows(renamed, {"op": "move", "from": "chapter 03/script ch3.md", "to": "chapter 03/ch3 cover.psd"})


def test_a_folder_said_only_as_where_files_go_is_not_where_they_are_taken_from() -> None:
    entries = _files("worksheets/Autumn 2025/fractions.pdf", "old resources/phonics.pdf")
    schema = narrowed_schema("move the autumn term worksheet pdfs to old resources", entries, TODAY)
    moved = {"op": "move", "match": {"glob": "worksheets/Autumn 2025/**", "ext": [".pdf"]}, "to": "old resources"}
    assert _allows(schema, moved)
    assert not _allows(schema, {**moved, "match": {"glob": "old resources/**", "ext": [".pdf"]}})
    # (an archive named after the folder is no such saying: "into registrations/2025-26.zip")
    forms = _files("registrations/2025-26/form-1.pdf", "registrations/2025-26/form-2.pdf")
    packed = narrowed_schema("archive the registration forms into registrations/2025-26.zip, dont need the loose "
                             "files after", forms, TODAY)  # fmt: skip
    assert _allows(packed, {"op": "archive", "match": {"glob": "registrations/2025-26/**"},
                            "to": "registrations/2025-26.zip", "remove": True})  # fmt: skip


def test_a_number_that_names_a_thing_counts_no_files() -> None:
    assert counted_numbers("delete the flats psds from chapter 2, ive got the final pngs") == []
    assert counted_numbers("tag the week 3 notes") == []
    assert counted_numbers("grab the first 3 songs in Music") == ["3"]
    assert counted_numbers("First 3 scans in Inbox are forms") == ["3"]
    assert counted_numbers("move 4 pdfs to x") == ["4"]
    entries = _files("chapter 02/p1 flats.psd", "chapter 02/p2 flats.psd", "chapter 02/p1.png")
    schema = narrowed_schema("delete the flats psds from chapter 2, ive got the final pngs", entries, TODAY)
    matched = {"glob": "chapter 02/**", "ext": [".psd"]}
    assert _allows(schema, {"op": "delete", "match": matched})
    assert not _allows(schema, {"op": "delete", "match": {**matched, "limit": 2}})


def test_text_quoted_as_what_names_hold_asks_for_no_write_and_no_op() -> None:
    assert referred_ops("all the logbook files start with 'log ' which is pointless, strip that off the names") == {
        "rename",
        "move",
        "classify",
    }
    assert "write" in (referred_ops("write 'buy milk' into todo.txt") or set())
    # (and what it quotes for a file to hold asks nothing of it: "fixed a crash" mends no program)
    assert not not_files("append '- Fixed a crash when syncing on slow connections' to the 1.5.0 release notes")
    assert not_files("fix the sync crash in SyncService")


def test_what_a_file_made_is_to_hold_after_in_it_is_one_step_and_one_line() -> None:
    request = "create events/adler.txt and put in it: 7pm doors, 7.30 Zoë reads (~25 min), 8pm Q&A"
    assert asked_pieces(request) == [request]
    assert dictated_lines(request) == ["7pm doors, 7.30 Zoë reads (~25 min), 8pm Q&A"]
    # (a closing bracket stays where the line opens one; sign-offs typed with a slip go)
    assert dictated_lines("add this to the list: euro cyl x6 (ERA fortress)") == ["euro cyl x6 (ERA fortress)"]
    assert "review the budget with carol" in dictated_lines("New file misc/a.md: review the budget with carol thaanks")
