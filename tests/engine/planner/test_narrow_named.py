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
    # (and "flats", which some of the names there hold, selects them)
    matched = {"glob": "chapter 02/**", "ext": [".psd"], "name_regex": "flats"}
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


def test_a_line_does_not_run_into_the_file_it_goes_to() -> None:
    lines = dictated_lines("append the line hello world to notes/journal.md")
    assert "hello world" in lines
    assert not any("journal" in line or line.endswith(" to") for line in lines)
    assert not any("todo" in line for line in dictated_lines("add the line buy milk to todo.md"))
    # (a place said before the last is the line's own)
    said = dictated_lines("add a note saying renamed the report to report-2024.pdf to changes.md")
    assert "renamed the report to report-2024.pdf" in said
    assert not any("changes" in line for line in said)


def test_files_said_by_words_some_names_hold_are_selected_by_them() -> None:
    entries = _files("Downloads/catalogue-preview-a.pdf", "Downloads/catalogue-preview-b.pdf", "Downloads/invoice.pdf",
                     "manuals/bosch.pdf")  # fmt: skip
    schema = narrowed_schema("those 2 catalogue preview pdfs in Downloads are dupes, bin them", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "Downloads/**", "name_regex": "^catalogue"}})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "Downloads/**", "ext": [".pdf"]}})
    # Spelled as the names spell it: a name's regular expression tells case apart.
    census = _files("records/census/1900 Bergen.jpg", "records/census/1900 Oslo.jpg", "records/census/1910 Bergen.jpg")
    copied = narrowed_schema("copy both bergen census images into a new folder 'for kari'", census, TODAY)
    assert _allows(
        copied, {"op": "copy", "match": {"glob": "records/census/**", "name_regex": "Bergen"}, "to": "for kari"}
    )
    assert not _allows(copied, {"op": "copy", "match": {"glob": "records/census/**", "name_regex": "bergen"},
                                "to": "for kari"})  # fmt: skip
    # Not words every file of a place holds ("the crash logs" of crashlogs/), nor words of its folder's name.
    crashes = _files("crashlogs/crash_1.log", "crashlogs/crash_2.log", "notes/a.md")
    copy = narrowed_schema("mkdir triage and copy last week's crash logs into it", crashes, TODAY)
    copied_logs = {"op": "copy", "match": {"glob": "crashlogs/**", "modified_after": "7d"}, "to": "triage"}
    assert _allows(copy, {"op": "mkdir", "path": "triage"}, copied_logs)
    # Nor words of an example, nor of files sorted to several places.
    dumps = _files("data/db-dump-1.sql", "data/db-dump-2.sql", "data/schema.sql", "data/readme.md")
    prefixed = narrowed_schema(
        "prefix the .sql dumps in data with prod- (db-dump-... -> prod-db-dump-...)", dumps, TODAY
    )
    assert _allows(prefixed, {"op": "rename", "match": {"glob": "data/**", "ext": [".sql"]}, "template": "prod-{name}"})


def test_a_folder_of_several_words_said_whole_asks_for_no_kind() -> None:
    entries = _files("vet notes/ivermectin dose.md", "vet notes/mange.txt", "intake/fox.md")
    schema = narrowed_schema("tag any vet notes that mention ivermectin as meds-review", entries, TODAY)
    step = {"op": "tag", "match": {"glob": "vet notes/**", "contains": "ivermectin"}, "tags": ["meds-review"]}
    assert _allows(schema, step)
    assert not _allows(schema, {**step, "match": {**step["match"], "ext": [".md"]}})


def test_a_file_said_by_a_version_or_a_day_its_name_holds_is_the_one() -> None:
    entries = _files("release notes/1.5.0.md", "release notes/1.4.2.md", "crashlogs/a.log")
    schema = narrowed_schema("append '- Fixed a crash when syncing' to the 1.5.0 release notes", entries, TODAY)
    step = {"op": "append", "path": "release notes/1.5.0.md", "content": "- Fixed a crash when syncing\n"}
    assert _allows(schema, step)
    assert not _allows(schema, {**step, "path": "release notes/1.4.2.md"})


def test_where_no_step_makes_a_file_a_tag_goes_on_one_that_exists() -> None:
    entries = _files("staff/incident reports/incident_2026-10-03.md", "staff/incident reports/incident_2026-10-21.md",
                     "memberships/members.csv", tags=("open",))  # fmt: skip
    schema = narrowed_schema("take the open tag off incident_2026-10-03.md, that one's sorted", entries, TODAY)
    step = {"op": "untag", "path": "staff/incident reports/incident_2026-10-03.md", "tags": ["open"]}
    assert _allows(schema, step)
    assert not _allows(schema, {**step, "path": "memberships/incident_2026-10-03.md"})


def test_an_op_said_as_done_already_is_not_asked() -> None:
    assert "move" not in (referred_ops("Mrs Jennings has moved away so zip up her folder as clients/j.zip") or set())
    assert referred_ops("I've zipped them already, delete the originals") == {"delete"}
    assert "move" in (referred_ops("move the files I have tagged urgent to x") or set())
