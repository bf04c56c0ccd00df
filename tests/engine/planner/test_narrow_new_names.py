"""The reply schema narrowed to requests that name new things: a file put "in it" of a folder the
request makes, names shown with a date spelled out, a file added by its name, two words files are
about, a folder unpacked into under an archive's name with spaces, and a folder made that is no file."""

from __future__ import annotations

from engine.planner.by_example import dated_templates
from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from engine.planner.said import about_phrases
from tests.engine.planner.test_narrow import TODAY, _allows

ENTRIES = [
    ViewEntry(path, False, 10, TODAY)
    for path in ("notes/a.md", "notes/b.md", "src/old.py", "packs/Retro 16x.zip", "photos/IMG_1.HEIC")
]


def test_a_file_put_in_a_new_folder_is_that_folders() -> None:
    for request in (
        "make a docs/meetings folder and put a note in it, monday.md, that says: ship on friday",
        "create docs/meetings, and add a monday.md in there that says: ship on friday",
    ):
        schema = narrowed_schema(request, ENTRIES, TODAY)
        mkdir = {"op": "mkdir", "path": "docs/meetings"}
        write = {"op": "write", "path": "docs/meetings/monday.md", "content": "ship on friday\n"}
        assert _allows(schema, mkdir, write), request
        assert not _allows(schema, mkdir, {**write, "path": "monday.md"}), request
    # A name given with no new folder to put it in stays where it is said.
    schema = narrowed_schema("write monday.md that says: ship on friday", ENTRIES, TODAY)
    assert _allows(schema, {"op": "write", "path": "monday.md", "content": "ship on friday\n"})


def test_names_shown_with_a_date_spelled_out_are_the_templates() -> None:
    assert dated_templates("rename them drawing-YYYY-MM-DD, keep the extension") == ["drawing-{mtime:%Y-%m-%d}{ext}"]
    assert dated_templates("call them IMG_YYYYMMDD.jpg.") == ["IMG_{mtime:%Y%m%d}{ext}"]
    assert dated_templates("as yyyy-mm_report") == ["{mtime:%Y-%m}_report{ext}"]
    # A date shown alone is its form, not a name; braces are never copied into a template.
    assert dated_templates("add the date (YYYY-MM-DD) to the start of the names") == []
    assert dated_templates("as {YYYY-MM-DD}x") == []
    schema = narrowed_schema("rename the HEIC photos photo-YYYY-MM-DD from each file's date", ENTRIES, TODAY)
    rename = {"op": "rename", "match": {"glob": "photos/**", "ext": [".heic"]}}
    assert _allows(schema, {**rename, "template": "photo-{mtime:%Y-%m-%d}{ext}"})
    assert not _allows(schema, {**rename, "template": "{mtime:%Y-%m-%d}_{name}"})


def test_a_file_added_by_its_name_may_be_written() -> None:
    schema = narrowed_schema("add notes/versions.txt with the line: python 3.11", ENTRIES, TODAY)
    assert _allows(schema, {"op": "write", "path": "notes/versions.txt", "content": "python 3.11\n"})
    # Added to a file that exists, it is appended to.
    schema = narrowed_schema("add the line: call mum to notes/a.md", ENTRIES, TODAY)
    assert _allows(schema, {"op": "append", "path": "notes/a.md", "content": "call mum\n"})


def test_two_words_files_are_said_to_be_about_are_one_text() -> None:
    assert about_phrases("copy the notes that mention a missing receipt into todo") == ["missing receipt"]
    assert about_phrases("the notes mentioning release, then zip them") == []
    assert about_phrases("notes that mention missing, receipt") == []  # not side by side
    schema = narrowed_schema("copy the notes that mention a missing receipt into todo", ENTRIES, TODAY)
    copy = {"op": "copy", "match": {"glob": "notes/**", "contains": "missing receipt"}, "to": "todo"}
    assert _allows(schema, copy)
    assert _allows(schema, {**copy, "match": {"glob": "notes/**", "contains": "missing"}})
    assert not _allows(schema, {**copy, "match": {"glob": "notes/**", "contains": "receipt into"}})


def test_an_archive_is_unpacked_into_its_own_name_with_spaces_where_the_request_says_it() -> None:
    schema = narrowed_schema("unzip the Retro 16x pack into packs/Retro 16x", ENTRIES, TODAY)
    extract = {"op": "extract", "from": "packs/Retro 16x.zip"}
    assert _allows(schema, {**extract, "to": "packs/Retro 16x"})
    assert not _allows(schema, {**extract, "to": "packs/Retro"})  # the name cut at its space


def test_a_folder_made_is_no_file_written() -> None:
    schema = narrowed_schema("please create src/archive and move old.py into it", ENTRIES, TODAY)
    moved = {"op": "move", "paths": ["src/old.py"], "to": "src/archive"}
    assert _allows(schema, {"op": "mkdir", "path": "src/archive"}, moved)
    assert not _allows(schema, {"op": "write", "path": "src/archive", "content": "please create\n"}, moved)
    # Nor is a folder named as a common kind of file made.
    schema = narrowed_schema("make a folder docs/fall with a README.md in it that says: tbd", ENTRIES, TODAY)
    write = {"op": "write", "path": "docs/fall/README.md", "content": "tbd\n"}
    assert _allows(schema, {"op": "mkdir", "path": "docs/fall"}, write)
    assert not _allows(schema, {"op": "mkdir", "path": "README.md"}, write)


def test_a_tag_of_several_words_a_raw_kind_and_words_inside_names_are_offered() -> None:
    entries = [
        ViewEntry("Photos/a.jpg", False, 10, TODAY, ("to-edit",)),
        ViewEntry("shoot/DSC_1.NEF", False, 10, TODAY),
        ViewEntry("shoot/DSC_1.jpg", False, 10, TODAY),
        ViewEntry("shoot/DSC_1.tif", False, 10, TODAY),
        ViewEntry("essays/essay-draft-2.docx", False, 10, TODAY),
        ViewEntry("essays/essay-final.docx", False, 10, TODAY),
        ViewEntry("mods/sodium-0.5+mc1.20.1.jar", False, 10, TODAY),
    ]
    schema = narrowed_schema("pls drop the to-edit tag from the pics in Photos", entries, TODAY)
    untag = {"op": "untag", "match": {"glob": "Photos/**", "tag": "to-edit"}, "tags": ["to-edit"]}
    assert _allows(schema, untag)
    schema = narrowed_schema("stash the raws from the shoot in raw/keep", entries, TODAY)
    raws = {"op": "move", "match": {"glob": "shoot/**", "ext": [".nef"]}, "to": "raw/keep"}
    assert _allows(schema, raws)
    # A kind of file known by its name is no raw: the request names the one kind.
    assert not _allows(schema, {**raws, "match": {"glob": "shoot/**", "ext": [".tif"]}})
    # A word said that names hold inside them, literally ("drafts": draft; a version's dots escaped).
    schema = narrowed_schema("ditch the essay drafts in essays", entries, TODAY)
    assert _allows(schema, {"op": "delete", "match": {"glob": "essays/**", "name_regex": "draft"}})
    schema = narrowed_schema("move every jar in mods built for 1.20.1 into mods/off", entries, TODAY)
    moved = {"op": "move", "match": {"glob": "mods/**", "ext": [".jar"], "name_regex": "1\\.20\\.1"}, "to": "mods/off"}
    assert _allows(schema, moved)
    # A kind of file is no word inside a name ("the jar files" selects by the extension).
    assert not _allows(schema, {**moved, "match": {"glob": "mods/**", "name_regex": "jar"}})
