"""The reply schema narrowed to a request that asks several things: a step for each, in the order
asked, each piece's own files, the folders it makes, and a classify rule for each place it sorts into."""

from __future__ import annotations

import datetime as dt

from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from tests.engine.planner.test_narrow import TODAY, _allows, _values


def test_files_put_in_it_go_into_the_folder_an_earlier_step_made() -> None:
    entries = [ViewEntry(path, False, 10, TODAY - dt.timedelta(days=500)) for path in ("Videos/a.mp4", "backups/b.zip")]
    schema = narrowed_schema("make a folder Videos/archive and put the videos older than a year in it", entries, TODAY)
    mkdir = {"op": "mkdir", "path": "Videos/archive"}
    old = {"glob": "Videos/**", "modified_before": "365d"}
    assert _allows(schema, mkdir, {"op": "move", "match": old, "to": "Videos/archive"})
    assert not _allows(schema, mkdir, {"op": "move", "match": old, "to": "backups"})


def test_a_folder_made_by_a_plain_name_is_where_files_put_there_go() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("docs/a.md", "docs/b.pdf", "logs/app.log")]
    for request in (
        "create trash-me and put the .md files from docs there thanks!",
        "make a folder called trash-me and move the md files in docs into it, thx",
    ):
        schema = narrowed_schema(request, entries, TODAY)
        mkdir = {"op": "mkdir", "path": "trash-me"}
        moved = {"op": "move", "match": {"glob": "docs/**", "ext": [".md"]}, "to": "trash-me"}
        assert _allows(schema, mkdir, moved), request
        assert not _allows(schema, mkdir, {**moved, "to": "docs"}), request
    # One file named with its extension goes into the folder made, not to a new name beside it.
    schema = narrowed_schema("mkdir keep and move app.log into it asap", entries, TODAY)
    mkdir = {"op": "mkdir", "path": "keep"}
    assert _allows(schema, mkdir, {"op": "move", "paths": ["logs/app.log"], "to": "keep"})
    assert not _allows(schema, mkdir, {"op": "move", "from": "logs/app.log", "to": "logs/keep"})


def test_folders_made_one_after_another_are_each_made_once_in_order() -> None:
    entries = [ViewEntry("keep/a.txt", False, 10, TODAY)]
    schema = narrowed_schema("Make a folder called done and keep/travel and shared - thank you", entries, TODAY)
    made = [{"op": "mkdir", "path": name} for name in ("done", "keep/travel", "shared")]
    assert _allows(schema, *made)
    assert not _allows(schema, made[0], made[2], made[2])
    assert not _allows(schema, made[0], made[1])
    # A folder made that files then go into is no list of names.
    schema = narrowed_schema("make a folder called x and move the txt files into it", entries, TODAY)
    assert "made-0" not in schema["$defs"]
    # ("called" and "folder" are no names of folders made)
    assert not {"called", "folder", "keep"} & set(
        _values(schema["$defs"], schema["$defs"]["mkdir"]["properties"]["path"])
    )


def test_each_thing_a_sentence_asks_is_a_step_of_its_own_op_in_order() -> None:
    entries = [
        ViewEntry(path, False, 10, TODAY) for path in ("onboarding/handbook.pdf", "onboarding/faq.md", "TODO.md")
    ]
    request = "zip onboarding/ as kit.zip, copy the handbook into shared, and add '- send kit' to TODO.md"
    schema = narrowed_schema(request, entries, TODAY)
    archive = {"op": "archive", "match": {"glob": "onboarding/**"}, "to": "kit.zip"}
    copy = {"op": "copy", "paths": ["onboarding/handbook.pdf"], "to": "shared"}
    append = {"op": "append", "path": "TODO.md", "content": "- send kit\n"}
    assert _allows(schema, archive, copy, append)
    assert not _allows(schema, archive, append, copy)
    assert not _allows(schema, archive, copy, {**append, "path": "kit.zip"})  # a file that exists, not the new zip
    assert not _allows(schema, archive, {**copy, "op": "move"}, append)
    assert not _allows(schema, archive, copy, {"op": "tag", "path": "TODO.md", "tags": ["send"]})
    # "it" is the one file an earlier step named.
    notes = [ViewEntry("Notes/reno.md", False, 10, TODAY, ("todo",)), ViewEntry("Notes/other.md", False, 10, TODAY)]
    schema = narrowed_schema("take the todo tag off Notes/reno.md, tag it done and move it to Notes/archive", notes,
                             TODAY)  # fmt: skip
    untag = {"op": "untag", "path": "Notes/reno.md", "tags": ["todo"]}
    tag = {"op": "tag", "path": "Notes/reno.md", "tags": ["done"]}
    move = {"op": "move", "paths": ["Notes/reno.md"], "to": "Notes/archive"}
    assert _allows(schema, untag, tag, move)
    assert not _allows(schema, {**untag, "op": "tag"}, tag, move)
    assert not _allows(schema, untag, tag, {"op": "move", "match": {"glob": "Notes/**"}, "to": "Notes/archive"})


def test_files_sorted_into_places_get_a_rule_for_each_in_the_order_said() -> None:
    paths = ("Downloads/a.pdf", "Downloads/b.jpg", "Downloads/c.png", "Documents/x.pdf", "Pictures/y.jpg")
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    request = "sort my downloads pls: pdfs go to Documents/pdfs, pictures to Pictures/downloaded, leave the rest"
    schema = narrowed_schema(request, entries, TODAY)
    pdfs = {"ext": [".pdf"], "to": "Documents/pdfs"}
    pictures = {"ext": [".jpg", ".png", ".heic"], "to": "Pictures/downloaded"}
    sort = {"op": "classify", "match": {"glob": "Downloads/**"}, "rules": [pdfs, pictures]}
    assert _allows(schema, sort)
    assert not _allows(schema, {**sort, "rules": [pictures, pdfs]})
    assert not _allows(schema, {**sort, "rules": [pdfs, {**pictures, "ext": [".jpg"]}]})
    assert not _allows(schema, {**sort, "rules": [pdfs, pictures, {"default": True, "to": "Documents/pdfs"}]})
    # What it sorts is not where the files go: "Pictures" is only the start of Pictures/downloaded.
    assert not _allows(schema, {**sort, "match": {"glob": "Pictures/**"}})
    # Where the rest goes, the last rule is the default.
    schema = narrowed_schema("tidy Downloads: pdfs into Downloads/pdf and everything else into Downloads/misc",
                             entries, TODAY)  # fmt: skip
    rest = {"op": "classify", "match": {"glob": "Downloads/*"},
            "rules": [{"ext": [".pdf"], "to": "Downloads/pdf"}, {"default": True, "to": "Downloads/misc"}]}  # fmt: skip
    assert _allows(schema, rest)
    assert not _allows(schema, {**rest, "rules": [rest["rules"][0], {"ext": [".jpg"], "to": "Downloads/misc"}]})


def test_a_tag_swapped_comes_off_then_the_other_goes_on() -> None:
    entries = [ViewEntry("Notes/grocery.md", False, 10, TODAY, ("todo",)), ViewEntry("Notes/b.md", False, 10, TODAY)]
    schema = narrowed_schema("got the groceries - swap the todo tag on Notes/grocery.md for done", entries, TODAY)
    untag = {"op": "untag", "path": "Notes/grocery.md", "tags": ["todo"]}
    tag = {"op": "tag", "path": "Notes/grocery.md", "tags": ["done"]}
    assert _allows(schema, untag, tag)
    assert not _allows(schema, tag, untag)
    assert not _allows(schema, {**untag, "tags": ["done"]}, tag)  # no file has the tag "done"
    assert not _allows(schema, {"op": "move", "paths": ["Notes/grocery.md"], "to": "done"})


def test_a_piece_that_takes_a_tag_off_is_an_untag_only() -> None:
    from engine.planner.pieces import piece_ops

    pieces = (
        "take the wip tag off lyrics.md",
        "remove the draft tag from budget.md",
        "drop the to-edit tag",
        "strip that label from the notes",
        "delete any #old tags on the photos",
        "untag the draft tag on a.md",
    )
    for piece in pieces:
        assert piece_ops(piece) == {"untag"}, piece
    # Files removed are not a tag taken off.
    assert "delete" in (piece_ops("delete the draft notes") or set())
    assert "untag" not in (piece_ops("delete the draft notes") or set())
