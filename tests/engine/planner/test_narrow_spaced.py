"""The reply schema narrowed to requests that name new things with spaces in them ("into editor/for
Ruth", "as invoices/2025 invoices.zip", "a new 'for upload' folder"), and to a few ways of saying
where files go, what they hold, which tag and which year, which folders of one name, names shown by
an example, kinds spelled with their dot and messages sent."""

from __future__ import annotations

import datetime as dt
import json
import random

from jsonschema import Draft202012Validator

from engine.planner.by_example import changed_by_example, example_templates
from engine.planner.narrow import narrowed_schema
from engine.planner.places import referred_targets
from engine.planner.prompt import ViewEntry
from engine.planner.refer import referred_folders
from engine.planner.said import about_words, not_files, tag_words
from engine.planner.said_names import spaced_names
from tests.engine.planner.test_narrow import TODAY, _allows, _walks

ENTRIES = [
    ViewEntry(path, False, 10, TODAY - dt.timedelta(days=age))
    for path, age in (
        ("manuscript/ch01.docx", 40),
        ("manuscript/ch02.docx", 40),
        ("invoices/Makro 2025-11.pdf", 200),
        ("invoices/EDP 2026-03.pdf", 90),
        ("show notes/ep42 show notes.md", 3),
        ("old drafts/draft 1.docx", 900),
        ("episodes/ep42/final.mp3", 3),
    )
]


def test_names_said_with_spaces_are_whole_names() -> None:
    folders = ["manuscript", "invoices", "show notes", "old drafts", "episodes"]
    assert spaced_names("copy the first five chapters into editor/for Ruth, she wants to start", folders) == [
        "editor/for Ruth"
    ]
    # A name that ends in a file name is that one; a folder's name ends before a word that goes on.
    assert spaced_names("zip them as invoices/2025 invoices.zip and bin the pdfs", folders) == [
        "invoices/2025 invoices.zip"
    ]
    assert spaced_names("make episodes/ep43 - Aiyana Redcloud with raw/ in it", folders) == [
        "episodes/ep43 - Aiyana",
        "episodes/ep43 - Aiyana Redcloud",
    ]
    # The words before a slash that spell a folder with its first part are the name's ("show notes").
    assert spaced_names("and a show notes/ep43 show notes.md that says TBD", folders) == [
        "show notes/ep43 show notes.md"
    ]
    assert spaced_names("copy every final mp3 into a new 'for upload' folder", folders) == ["for upload"]
    # A file name is whole already; an aside, a link and a plain word are no names with spaces.
    assert spaced_names("zip the pictures as Pictures/berlin-2025.zip (dont delete them)", folders) == []
    assert spaced_names("move the pdfs to docs/old please", folders) == []
    assert spaced_names("fetch https://example.com/a b into x", folders) == []
    assert spaced_names("put it in 'notes'", folders) == []


def test_files_go_into_a_folder_said_with_spaces() -> None:
    schema = narrowed_schema("copy the chapters into editor/for Ruth, she wants to start the line edit", ENTRIES, TODAY)
    copy = {"op": "copy", "match": {"glob": "manuscript/**"}}
    assert _allows(schema, {**copy, "to": "editor/for Ruth"})
    assert not _allows(schema, {**copy, "to": "editor/for"})  # a name does not end in "for"
    assert not _allows(schema, {**copy, "to": "start"})  # "wants to start" says what she does, not where
    schema = narrowed_schema("copy evry final mp3 into a new 'for upload' folder at the top level", ENTRIES, TODAY)
    assert _allows(schema, {"op": "copy", "match": {"glob": "episodes/**", "ext": [".mp3"]}, "to": "for upload"})


def test_an_archive_said_with_spaces_is_made_under_that_name() -> None:
    schema = narrowed_schema("archive the old drafts folder to backups/old drafts.zip and delete it", ENTRIES, TODAY)
    archive = {"op": "archive", "match": {"glob": "old drafts/**"}, "remove": True}
    assert _allows(schema, {**archive, "to": "backups/old drafts.zip"})
    assert not _allows(schema, {**archive, "to": "backups/old"})
    assert not _allows(schema, {**archive, "to": "drafts.zip"})


def test_next_to_says_where_a_thing_is_not_where_it_goes() -> None:
    assert referred_targets("put the abandoned ch07 version in scratch, i dont want it next to the real chapters") == {
        "scratch"
    }
    assert referred_targets("move it to archive, due to the audit") == {"archive"}


def test_a_tag_said_last_before_while_is_the_tag_and_both_is_none() -> None:
    request = "tag both on-call runbooks reviewed-2026-05 while ur at it"
    assert "reviewed-2026-05" in tag_words(request)
    assert "both" not in tag_words(request)


def test_what_files_have_in_them_is_what_they_hold() -> None:
    assert about_words("tag evry recipe that has cream in it as dairy") == {"cream"}
    assert about_words("the logs with ERROR in them") == {"error"}
    entries = [ViewEntry(f"recipes/{name}.md", False, 10, TODAY) for name in ("a", "b")]
    schema = narrowed_schema("tag evry recipe that has cream in it as dairy", entries, TODAY)
    match = {"glob": "recipes/**"}
    assert _allows(schema, {"op": "tag", "match": {**match, "contains": "cream"}, "tags": ["dairy"]})
    assert not _allows(schema, {"op": "tag", "match": match, "tags": ["dairy"]})


def test_last_years_without_an_apostrophe_is_last_year() -> None:
    schema = narrowed_schema("zip up last years invoices as invoices/2025 invoices.zip", ENTRIES, TODAY)
    year = {"glob": "invoices/**", "modified_after": "2025-01-01", "modified_before": "2026-01-01"}
    assert _allows(schema, {"op": "archive", "match": year, "to": "invoices/2025 invoices.zip"})
    # A year of the calendar is no age; a year back from today is.
    aged = {"glob": "invoices/**", "modified_after": "365d"}
    assert not _allows(schema, {"op": "archive", "match": aged, "to": "invoices/2025 invoices.zip"})
    for request, side in (("tag the invoices from the last year as q", "modified_after"),
                          ("tag the invoices changed over the past year as q", "modified_after")):  # fmt: skip
        recent = narrowed_schema(request, ENTRIES, TODAY)
        assert _allows(recent, {"op": "tag", "match": {"glob": "invoices/**", side: "365d"}, "tags": ["q"]}), request


def test_folders_of_one_name_are_those_under_a_folder_it_refers_to() -> None:
    folders = ["eps/ep40 - Kenji", "eps/ep40 - Kenji/raw", "eps/ep41 - Mariana", "eps/ep41 - Mariana/raw",
               "eps/ep42 - Ciarán", "eps/ep42 - Ciarán/raw", "inbox"]  # fmt: skip
    assert referred_folders("ep40 and ep41 are out, nuke the big raw recordings for both", folders) == [
        "eps/ep40 - Kenji",
        "eps/ep40 - Kenji/raw",
        "eps/ep41 - Mariana",
        "eps/ep41 - Mariana/raw",
    ]
    assert referred_folders("unzip the tracks in inbox into ep42's raw folder", folders) == [
        "eps/ep42 - Ciarán",
        "eps/ep42 - Ciarán/raw",
        "inbox",
    ]
    # A folder said as where things go holds none of them ("copy raw into docs": raw/, not docs/raw/).
    assert referred_folders("copy raw into docs", ["raw", "docs", "docs/raw"]) == ["raw", "docs", "docs/raw"]
    # Said alone, a name is every folder of it.
    assert referred_folders("clean out every raw folder", folders) == [
        "eps/ep40 - Kenji/raw",
        "eps/ep41 - Mariana/raw",
        "eps/ep42 - Ciarán/raw",
    ]


def test_a_tag_swapped_for_another_goes_on_as_the_other() -> None:
    entries = [ViewEntry("notes/ep42.md", False, 10, TODAY, ("draft",)), ViewEntry("notes/ep41.md", False, 10, TODAY)]
    schema = narrowed_schema("ep42's notes went live, swap the draft tag for published", entries, TODAY)
    untag = {"op": "untag", "path": "notes/ep42.md", "tags": ["draft"]}
    assert _allows(schema, untag, {"op": "tag", "path": "notes/ep42.md", "tags": ["published"]})
    assert not _allows(schema, untag, {"op": "tag", "path": "notes/ep42.md", "tags": ["draft"]})


def test_folders_taken_by_their_name_are_selected_as_folders() -> None:
    paths = ("scripts/__pycache__/a.pyc", "scripts/lib/__pycache__/b.pyc", "scripts/a.py", "src/__pycache__/c.pyc")
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    schema = narrowed_schema("ditch every __pycache__ folder under scripts", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "scripts/**/__pycache__", "type": "dir"}})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "scripts/**", "type": "file"}})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "**/__pycache__", "type": "dir"}})
    schema = narrowed_schema("remove all the __pycache__ dirs", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "**/__pycache__", "type": "dir"}})


def test_names_shown_by_an_example_are_renamed_like_it() -> None:
    assert example_templates(["ep40 - subtitles.srt"], ["ep40.srt", "ep40.txt"]) == ["{stem} - subtitles{ext}"]
    assert example_templates(["2026 budget.xlsx"], ["budget.xlsx"]) == ["2026 {stem}{ext}"]
    # (a day it shows is each file's own date, in the form shown)
    assert example_templates(["2026-09-18_take 3.wav"], ["take 3.wav"]) == ["{mtime:%Y-%m-%d}_{stem}{ext}"]
    assert example_templates(["IMG_5521-20260629.jpg"], ["IMG_5521.jpg"]) == ["{stem}-{mtime:%Y%m%d}{ext}"]
    assert example_templates(["{x}a.srt"], ["a.srt"]) == []
    assert changed_by_example(["ch03 - Inês.docx", "Chapter 03 - Inês.docx"]) == [(["^ch", "ch"], "Chapter ")]
    assert changed_by_example(["x - Inês.docx", "Inês.docx"]) == []
    entries = [ViewEntry(f"transcripts/{name}", False, 10, TODAY) for name in ("ep40.srt", "ep41.srt", "ep40.txt")]
    schema = narrowed_schema("in transcripts, rename the srt files to the 'ep40 - subtitles.srt' pattern", entries,
                             TODAY)  # fmt: skip
    rename = {"op": "rename", "match": {"glob": "transcripts/**", "ext": [".srt"]}}
    assert _allows(schema, {**rename, "template": "{stem} - subtitles{ext}"})
    entries = [ViewEntry(f"book/ch0{n} - x.docx", False, 10, TODAY) for n in (1, 2, 3)]
    schema = narrowed_schema("rename my chapters from 'ch03 - x.docx' to 'Chapter 03 - x.docx', all of them",
                             entries, TODAY)  # fmt: skip
    assert _allows(schema, {"op": "rename", "match": {"glob": "book/**"}, "find": "^ch", "replace": "Chapter "})


def test_kinds_spelled_with_their_dot_are_all_selected() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("configs/a.bak", "configs/b.orig", "configs/c.pyc")]
    schema = narrowed_schema("nuke the .bak and .orig leftovers in configs/", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "configs/**", "ext": [".bak", ".orig"]}})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "configs/**", "ext": [".bak"]}})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "configs/**", "ext": [".bak", ".pyc"]}})


def test_a_message_sent_is_no_file_task() -> None:
    assert not_files("could you text this week's rota to the whole team?")
    assert not_files("whatsapp the menu to Ana")
    assert not not_files("move the text files to docs")
    assert not not_files("move the whatsapp pics to photos")  # files named for the app, not a message
    assert not not_files("put the text of it into notes.md")


def test_every_answer_decoded_under_these_schemas_satisfies_them() -> None:
    """The server refuses an answer its grammar let through but the schema does not allow (a
    repeated extension once): each keyword these rules add is one the grammar enforces."""
    rng = random.Random(11)
    configs = [ViewEntry(path, False, 10, TODAY) for path in ("configs/a.bak", "configs/b.orig", "configs/c.pyc")]
    caches = [
        ViewEntry(path, False, 10, TODAY) for path in ("scripts/__pycache__/a.pyc", "scripts/lib/__pycache__/b.pyc")
    ]
    tagged = [ViewEntry("notes/ep42.md", False, 10, TODAY, ("draft",)), ViewEntry("notes/ep41.md", False, 10, TODAY)]
    for request, entries in (
        ("nuke the .bak and .orig leftovers in configs/", configs),
        ("ditch every __pycache__ folder under scripts", caches),
        ("ep42's notes went live, swap the draft tag for published", tagged),
        ("copy the chapters into editor/for Ruth, she wants to start the line edit", ENTRIES),
        ("rename the mp3s from 'ep42/final.mp3' to 'ep42/final master.mp3'", ENTRIES),
    ):
        schema = narrowed_schema(request, entries, TODAY)
        check = Draft202012Validator(schema)
        for answer in _walks(schema, 25, rng):
            assert check.is_valid(json.loads(answer)), (request, answer)


def test_a_backslash_a_request_shows_is_put_in_literally() -> None:
    entries = [ViewEntry("a/a.txt", False, 10, TODAY)]
    schema = narrowed_schema(r"rename them from 'a.txt' to 'b\1 c.txt'", entries, TODAY)
    rename = {"op": "rename", "paths": ["a/a.txt"], "find": "^a"}
    assert _allows(schema, {**rename, "replace": r"b\\1 c"})
    assert not _allows(schema, {**rename, "replace": r"b\1 c"})  # a group the pattern lacks: refused


def test_a_kind_spelled_with_its_dot_that_no_file_has_is_still_the_kind_offered() -> None:
    entries = [ViewEntry("old/a.log", False, 10, TODAY), ViewEntry("old/b.txt", False, 10, TODAY)]
    schema = narrowed_schema("delete the .bak files in old", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "old/**", "ext": [".bak"]}})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "old/**", "ext": [".log"]}})


def test_a_word_for_a_kind_no_file_has_selects_by_name_never_by_an_unknown_kind() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in
               ("Downloads/lecture-07-slides.pdf", "Downloads/report.tex", "courses/algorithms/notes.md")]  # fmt: skip
    schema = narrowed_schema("put the lecture slides from downloads into courses/algorithms", entries, TODAY)
    assert not _allows(schema, {"op": "move", "match": {"glob": "Downloads/**", "ext": [".tex"]},
                                "to": "courses/algorithms"})  # fmt: skip
    assert _allows(schema, {"op": "move", "match": {"glob": "Downloads/**", "name_regex": "^lecture-"},
                            "to": "courses/algorithms"})  # fmt: skip


def test_a_file_renamed_then_spoken_of_as_it_is_taken_by_its_new_name() -> None:
    entries = [
        ViewEntry(path, False, 10, TODAY) for path in ("Edits/cover-final.png", "Edits/cover.psd", "Camera/a.png")
    ]
    schema = narrowed_schema("rename cover-final.png to cover.png and tag it approved", entries, TODAY)
    move = {"op": "move", "from": "Edits/cover-final.png", "to": "Edits/cover.png"}
    assert _allows(schema, move, {"op": "tag", "path": "Edits/cover.png", "tags": ["approved"]})
    assert not _allows(schema, move, {"op": "tag", "path": "Edits/cover-final.png", "tags": ["approved"]})
    # Every answer the grammar lets through satisfies the schema.
    check = Draft202012Validator(schema)
    for answer in _walks(schema, 10, random.Random(7)):
        assert check.is_valid(json.loads(answer)), answer
    # Moved into a folder, it is the file of that name there.
    schema = narrowed_schema("move cover-final.png into Camera and tag it approved", entries, TODAY)
    move = {"op": "move", "from": "Edits/cover-final.png", "to": "Camera"}
    assert _allows(schema, move, {"op": "tag", "path": "Camera/cover-final.png", "tags": ["approved"]})
    assert not _allows(schema, move, {"op": "tag", "path": "Edits/cover-final.png", "tags": ["approved"]})
    # Copied, "it" may be either: both are offered.
    schema = narrowed_schema("copy cover-final.png to cover.png and tag it approved", entries, TODAY)
    copy = {"op": "copy", "from": "Edits/cover-final.png", "to": "Edits/cover.png"}
    assert _allows(schema, copy, {"op": "tag", "path": "Edits/cover-final.png", "tags": ["approved"]})


def test_a_folder_files_are_taken_from_is_no_kind_of_file() -> None:
    entries = [ViewEntry(path, False, 10, TODAY - dt.timedelta(days=age)) for path, age in
               (("Documents/budget.md", 2), ("Documents/spec.pdf", 90), ("keep/x.txt", 1))]  # fmt: skip
    schema = narrowed_schema("move everything in Documents over a month old to keep/", entries, TODAY)
    old = {"glob": "Documents/**", "modified_before": "30d"}
    assert _allows(schema, {"op": "move", "match": old, "to": "keep"})
    assert not _allows(schema, {"op": "move", "match": {**old, "ext": [".pdf"]}, "to": "keep"})
    # A kind said beside it is still the kind.
    schema = narrowed_schema("move the pdfs in Documents to keep/", entries, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "Documents/**", "ext": [".pdf"]}, "to": "keep"})


def test_files_named_and_sent_to_a_folder_are_listed() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("code/app/src/utils.py", "code/app/src/main.py",
                                                              "old/readme.txt")]  # fmt: skip
    schema = narrowed_schema("Kindly put the utils module in old", entries, TODAY)
    assert _allows(schema, {"op": "move", "paths": ["code/app/src/utils.py"], "to": "old"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "old/**", "ext": [".py"]}, "to": "old"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "old/**"}, "to": "old"})


def test_a_file_named_whole_is_listed_even_where_a_folder_is_named() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("Edits/cover.psd", "Edits/cover-final.png")]
    schema = narrowed_schema("Edits cleanup: put cover.psd into Edits/cover-psd.zip", entries, TODAY)
    assert _allows(schema, {"op": "archive", "paths": ["Edits/cover.psd"], "to": "Edits/cover-psd.zip"})
    assert not _allows(schema, {"op": "archive", "match": {"glob": "Edits/**"}, "to": "Edits/cover-psd.zip"})


def test_a_new_file_dictated_into_a_folder_is_written_there_and_nothing_moved() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("data/processed/features_v2.parquet", "notes/a.md")]
    schema = narrowed_schema("put a NOTES.txt in data/processed that says: v2 is deprecated", entries, TODAY)
    write = {"op": "write", "path": "data/processed/NOTES.txt", "content": "v2 is deprecated\n"}
    assert _allows(schema, write)
    assert not _allows(schema, {"op": "move", "paths": ["data/processed/features_v2.parquet"], "to": "data/processed"})
    # Asked to copy too, the copy stays ("copy a.md to handoff/ and drop a handoff/README.txt in there saying 'hi'").
    schema = narrowed_schema("copy a.md to handoff/ and drop a handoff/README.txt in there saying 'hi'", entries, TODAY)
    assert _allows(schema, {"op": "copy", "paths": ["notes/a.md"], "to": "handoff"},
                   {"op": "write", "path": "handoff/README.txt", "content": "hi\n"})  # fmt: skip


def test_converting_a_file_to_another_format_is_no_file_task() -> None:
    for request in ("can u turn the seating chart into a pdf for the venue", "convert notes.md to pdf",
                    "export the budget sheet as a csv please", "save the drawing as a png"):  # fmt: skip
        assert not_files(request), request
    for request in ("turn the reports folder into a zip", "move the pdfs into pdf", "save the line hi as notes.txt",
                    "make a folder and sort the scans into a pdf folder", "convert the pdfs to pdf/"):  # fmt: skip
        assert not not_files(request), request
    # (A pasted page of "make" asks for no conversion.)
    assert not not_files("make " * 20_000)


def test_files_said_in_the_plural_by_words_of_their_names_are_all_of_them() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in
               ("notebooks/Untitled.ipynb", "notebooks/Untitled1.ipynb", "notebooks/eda.ipynb")]  # fmt: skip
    schema = narrowed_schema("nuke the untitled notebooks", entries, TODAY)
    both = ["notebooks/Untitled.ipynb", "notebooks/Untitled1.ipynb"]
    assert _allows(schema, {"op": "delete", "paths": both})
    assert not _allows(schema, {"op": "delete", "paths": both[:1]})
    assert not _allows(schema, {"op": "delete", "path": both[0]})
    # One said alone is one: "nuke the untitled notebook" may be either.
    schema = narrowed_schema("nuke the untitled notebook", entries, TODAY)
    assert _allows(schema, {"op": "delete", "path": both[0]})


def test_a_place_of_several_words_said_by_its_path_is_that_whole_path() -> None:
    assert referred_targets("unzip the tree export from november into family tree/exports/2025-11") == {
        "family tree/exports/2025-11"
    }
    assert referred_targets("pdfs into reading/ and the csv files into hive scale/") == {"reading", "hive scale"}
    # (A colon or a comma ends the place: the files listed after it are no part of its name.)
    assert "review" in referred_targets("copy these to review: downloads/setup copy.txt, photos/a.heic")
    assert referred_targets("move it to docs and notes/x") == {"docs"}
    entries = [
        ViewEntry(path, False, 10, TODAY)
        for path in ("family tree/exports/tree-export-2025-11.zip", "clients/Rasmussen family/notes.md")
    ]
    schema = narrowed_schema("unzip the tree export from november into family tree/exports/2025-11", entries, TODAY)
    archive = "family tree/exports/tree-export-2025-11.zip"
    assert _allows(schema, {"op": "extract", "from": archive, "to": "family tree/exports/2025-11"})
    assert not _allows(schema, {"op": "extract", "from": archive, "to": "family"})


def test_tags_surely_given_are_the_only_tags_put_on() -> None:
    assert tag_words("tag evry photo from zürich with switzerland", given=True) == {"switzerland"}
    assert tag_words("tag any stock list with backorder in it as chase", given=True) == {"chase"}
    assert tag_words("tag the shakshuka and dal recipies as vegetarian", given=True) == {"vegetarian"}
    assert tag_words("a heart murmur, tag it cardio", given=True) == {"cardio"}
    assert tag_words("tag them urgent and review", given=True) == {"urgent", "review"}
    assert tag_words("tag them lehenga and move them into her folder", given=True) == {"lehenga"}
    entries = [ViewEntry(f"Photos/Zürich/IMG_{n}.jpg", False, 10, TODAY) for n in (1, 2)]
    schema = narrowed_schema("tag evry photo from zürich with switzerland", entries, TODAY)
    match = {"glob": "Photos/Zürich/**"}
    assert _allows(schema, {"op": "tag", "match": match, "tags": ["switzerland"]})
    assert not _allows(schema, {"op": "tag", "match": match, "tags": ["evry"]})


def test_files_chosen_by_a_tag_get_another_tag_not_that_one() -> None:
    entries = [ViewEntry(f"Recipes/{name}.md", False, 10, TODAY, ("dinner",)) for name in ("dal", "stew")]
    entries.append(ViewEntry("Recipes/cake.md", False, 10, TODAY))
    request = "evrything in Recipes tagged dinner should also be tagged weeknight"
    schema = narrowed_schema(request, entries, TODAY)
    match = {"glob": "Recipes/**", "tag": "dinner"}
    assert _allows(schema, {"op": "tag", "match": match, "tags": ["weeknight"]})
    assert not _allows(schema, {"op": "tag", "match": match, "tags": ["dinner"]})


def test_every_word_for_big_or_small_files_narrows_without_failing() -> None:
    entries = [ViewEntry("logs/a.log", False, 10, TODAY), ViewEntry("logs/b.log", False, 50_000_000, TODAY)]
    big = {"glob": "logs/**", "larger_than": "10MB"}
    for word in ("giant", "enormous"):
        schema = narrowed_schema(f"delete the {word} logs", entries, TODAY)
        assert _allows(schema, {"op": "delete", "match": big})
        assert not _allows(schema, {"op": "delete", "match": {"glob": "logs/**"}})
    # ("little" alone says no size: the match is by place.)
    schema = narrowed_schema("do a little tidy: delete the logs", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "logs/**"}})


def test_a_file_said_by_the_end_of_its_path_is_the_one_it_means() -> None:
    entries = [
        ViewEntry(path, False, 10, TODAY)
        for path in (
            "coursework/MATH240/Übungsblatt 4.pdf",
            "coursework/MATH240/Übungsblatt 5.pdf",
            "coursework/HIST210/essay-draft-1.docx",
            "coursework/HIST210/essay-final.docx",
            "notes/todo.md",
            "lectures/week 5.pdf",
        )
    ]
    request = "the uni portal chokes on umlauts — rename MATH240/Übungsblatt 5.pdf to sheet-05.pdf"
    schema = narrowed_schema(request, entries, TODAY)
    rename = {"op": "move", "from": "coursework/MATH240/Übungsblatt 5.pdf", "to": "coursework/MATH240/sheet-05.pdf"}
    assert _allows(schema, rename)
    for other in ("notes/todo.md", "coursework/HIST210/essay-draft-1.docx", "coursework/MATH240/Übungsblatt 4.pdf"):
        assert not _allows(schema, {**rename, "from": other}), other
