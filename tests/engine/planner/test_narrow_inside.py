"""The reply schema narrowed to requests that put new things inside folders that exist ("into a 2025
folder inside service notes", "as inspo.zip in the wedding folder", "into journals, sketchbooks and
other subfolders"), that spell paths with spaces, that spare a file, change text of names, show a
dated example, dictate after a colon, and to a few ways of saying which op is meant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.planner.by_example import example_templates
from engine.planner.kind_words import referred_exts
from engine.planner.narrow import narrowed_schema
from engine.planner.places import (
    folders_inside,
    made_names,
    moved_and_named,
    names_in_folders,
    placed_in_that,
    sorted_into,
)
from engine.planner.prompt import ViewEntry
from engine.planner.refer import referred_ops
from engine.planner.said import dictated_lines, not_files
from engine.planner.spared import spared_files
from tests.engine.planner.test_narrow import TODAY, _allows


def _entries(*files: tuple[str, float] | tuple[str, float, int]) -> list[ViewEntry]:
    return [ViewEntry(f[0], False, f[2] if len(f) > 2 else 10, TODAY - dt.timedelta(days=f[1])) for f in files]


def _schema(request: str, *files: tuple[str, float] | tuple[str, float, int]) -> dict[str, Any]:
    return narrowed_schema(request, _entries(*files), TODAY)


def test_a_path_said_with_spaces_is_one_place_not_its_pieces() -> None:
    files = [("Downloads/garmin_export_priya.zip", 3), ("athletes/Priya N/plan.md", 9)]
    schema = _schema("unpack priya's garmin export from downloads into athletes/Priya N/imports/garmin", *files)
    extract = {"op": "extract", "from": "Downloads/garmin_export_priya.zip"}
    mkdir = {"op": "mkdir", "path": "athletes/Priya N/imports"}
    assert _allows(schema, mkdir, {**extract, "to": "athletes/Priya N/imports/garmin"})
    assert not _allows(schema, mkdir, {**extract, "to": "athletes/Priya"})
    # ... and so at the end of a request, where no such folder exists yet
    files = [("reports/rehearsal report 2026-01-12.md", 60)]
    schema = _schema("move the rehearsal reports that are more than a month old into archive/hedda reports", *files)
    match = {"glob": "reports/**", "modified_before": "30d"}
    assert _allows(schema, {"op": "move", "match": match, "to": "archive/hedda reports"})
    assert not _allows(schema, {"op": "move", "match": match, "to": "archive/hedda"})


def test_new_folders_said_inside_one_that_exists_are_in_it() -> None:
    folders = ["service notes", "antenna", "commissions/Halvorsen family bible", "commissions", "pictures/2026"]
    assert folders_inside("move the 2025 service notes into a 2025 folder inside service notes", folders, None) == [
        ("2025", "service notes/2025", "service notes")
    ]
    assert folders_inside("make a builds folder in antenna and put the notes in it", folders, None)[0][1] == (
        "antenna/builds"
    )
    said = "unzip the halvorsen scans into the bible job folder, subfolder called scans"
    assert folders_inside(said, folders, None)[0][1] == "commissions/Halvorsen family bible/scans"
    # (not a folder said as where files are, nor a path that is not there)
    assert folders_inside("file the 2026 songs of the music folder under shared/2026", folders, None) == []
    assert folders_inside("put it in a new folder in it", folders, None) == []
    files = [("service notes/tuning 2025-03.md", 300), ("service notes/tuning 2026-02.md", 20)]
    schema = _schema("move all teh 2025 service notes into a 2025 folder inside service notes", *files)
    # (the notes of "service notes" are the folder's files, of any kind)
    match = {"glob": "service notes/**", "modified_after": "2025-01-01", "modified_before": "2026-01-01"}
    assert _allows(schema, {"op": "move", "match": match, "to": "service notes/2025"})
    assert not _allows(schema, {"op": "move", "match": match, "to": "2025"})
    # (a word of the folder's name says where the notes are, not what they say)
    assert not _allows(schema, {"op": "move", "match": {**match, "contains": "service"}, "to": "service notes/2025"})


def test_a_new_name_said_with_its_folder_is_in_that_folder() -> None:
    folders = ["orders/weddings", "orders/weddings/Sørensen wedding", "orders/weddings/Sørensen wedding/inspo"]
    said = "zip up the sorensen wedding inspo pics as inspo.zip in the wedding folder so i can send it"
    assert names_in_folders(said, folders, folders) == ["orders/weddings/Sørensen wedding/inspo.zip"]
    files = [
        ("orders/weddings/Sørensen wedding/inspo/pin 03.webp", 5),
        ("orders/weddings/Sørensen wedding/inspo/a.jpg", 5),
    ]
    schema = _schema(said, *files)
    match = {"glob": "orders/weddings/Sørensen wedding/inspo/**", "ext": [".jpg", ".webp"]}
    assert _allows(schema, {"op": "archive", "match": match, "to": "orders/weddings/Sørensen wedding/inspo.zip"})
    assert not _allows(schema, {"op": "archive", "match": match, "to": "inspo.zip"})
    # A folder of someone the request speaks of: "in his dir".
    files = [("athletes/Tomás Herrera/contract.pdf", 30), ("athletes/Sanna J/contract.pdf", 30)]
    schema = _schema("tomas is done with his block, put his contract in a paperwork folder in his dir", *files)
    one = {"op": "move", "paths": ["athletes/Tomás Herrera/contract.pdf"]}
    assert _allows(schema, {**one, "to": "athletes/Tomás Herrera/paperwork"})
    assert not _allows(schema, {**one, "to": "paperwork"})


def test_files_sorted_into_a_list_of_folders_go_into_the_folder_they_are_in() -> None:
    said = "can you sort the product photos into journals, sketchbooks and other subfolders thx"
    spoken, paths = sorted_into(said, "shop/photos") or ("", [])
    assert paths == ["shop/photos/journals", "shop/photos/sketchbooks", "shop/photos/other"]
    assert "everything else into shop/photos/other" in spoken
    assert sorted_into("move them into old folders", None) is None
    files = [("shop/product photos/journal A5.jpg", 40), ("shop/product photos/sketchbook kraft.jpg", 40),
             ("shop/product photos/album.png", 30)]  # fmt: skip
    schema = _schema(said, *files)
    rules = [{"glob": "**/journal*", "to": "shop/product photos/journals"},
             {"glob": "**/*sketchbook*", "to": "shop/product photos/sketchbooks"},
             {"default": True, "to": "shop/product photos/other"}]  # fmt: skip
    step = {"op": "classify", "match": {"glob": "shop/product photos/**"}, "rules": rules}
    assert _allows(schema, step)
    # (each rule by the name its place says, not by a kind every photo is)
    assert not _allows(schema, {**step, "rules": [{**rules[0], "glob": "**/sketchbook*"}, *rules[1:]]})
    assert not _allows(schema, {**step, "rules": [{"ext": [".jpg"], "to": rules[0]["to"]}, *rules[1:]]})


def test_folders_made_in_one_made_first_are_inside_it() -> None:
    assert made_names("make orders/mothers day 2026 with two folders in it, preorders and photos") == [
        "orders/mothers day 2026", "orders/mothers day 2026/preorders", "orders/mothers day 2026/photos"
    ]  # fmt: skip
    assert made_names("mkdir later and old!") == ["later", "old"]


def test_a_file_sent_to_a_folder_under_a_new_name_goes_there_whole() -> None:
    files = ["Downloads/ALL.TXT", "logbook/log 2026.adi"]
    said = "move ALL.TXT from downloads into logbook and call it ALL-2026.txt"
    assert moved_and_named(said, files, ["Downloads", "logbook"], None) == {
        "Downloads/ALL.TXT": ["logbook/ALL-2026.txt"]
    }
    schema = _schema(said, ("Downloads/ALL.TXT", 1), ("logbook/log 2026.adi", 1))
    assert _allows(schema, {"op": "move", "from": "Downloads/ALL.TXT", "to": "logbook/ALL-2026.txt"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "Downloads/**"}, "to": "logbook"})


def test_a_file_the_request_spares_is_left_out() -> None:
    files = ["scratch/Todo.txt", "scratch/a.txt", "notes/plan.md"]
    assert spared_files("delete the tiny txt files in there except Todo.txt", files) == ["scratch/Todo.txt"]
    assert spared_files("delete a.txt but not todo.txt", files) == ["scratch/Todo.txt"]
    assert spared_files("move everything but also delete plan.md", files) == []
    schema = _schema("scratch is full of junk, delete the tiny txt files in there except Todo.txt",
                     ("scratch/Todo.txt", 5, 200), ("scratch/cue.txt", 5, 300))  # fmt: skip
    match = {"glob": "scratch/**", "ext": [".txt"], "smaller_than": "1KB"}
    assert _allows(schema, {"op": "delete", "match": {**match, "exclude": ["scratch/Todo.txt"]}})
    assert not _allows(schema, {"op": "delete", "match": match})


def test_kinds_are_not_said_by_archiving_verbs_nor_new_places() -> None:
    assert referred_exts("zip up the flash designs as old.zip", [".zip", ".png"]) is None
    assert referred_exts("tar up the gpx/fit activity files", [".gpx", ".fit", ".md"]) == [".gpx", ".fit"]
    assert referred_exts("zip files in downloads", [".zip", ".png"]) == [".zip"]
    schema = _schema("move the raw nef files older than a month into a folder raw archive at the top",
                     ("photos/raw/a.nef", 60), ("photos/raw/old.zip", 60))  # fmt: skip
    match = {"glob": "photos/raw/**", "modified_before": "30d"}
    assert _allows(schema, {"op": "move", "match": {**match, "ext": [".nef"]}, "to": "raw archive"})
    assert not _allows(schema, {"op": "move", "match": {**match, "ext": [".zip"]}, "to": "raw archive"})


def test_text_of_names_changed_into_other_text_is_found_and_replaced() -> None:
    files = [("races/Berlin/DSC_0412.jpg", 60), ("races/Berlin/DSC_0419.jpg", 60)]
    schema = _schema("berlin race photos: change the DSC_ at the start of the names to berlin2026_", *files)
    match = {"glob": "races/Berlin/**", "ext": [".jpg"]}
    assert _allows(schema, {"op": "rename", "match": match, "find": "^DSC_", "replace": "berlin2026_"})
    assert not _allows(schema, {"op": "rename", "match": match, "template": "{mtime:%Y-%m-%d}_{name}"})
    # (a tag swapped for another is no rename, nor are separators, which are said otherwise)
    schema = _schema("swap the draft tag for sent", ("news/draft week 26.md", 2))
    assert not _allows(schema, {"op": "rename", "match": {"glob": "news/**"}, "find": "draft", "replace": "sent"})


def test_a_dated_example_names_each_file_by_its_own_date_in_place() -> None:
    assert example_templates(["2026-06-29_IMG_5521.jpg"], ["IMG_5521.jpg"]) == ["{mtime:%Y-%m-%d}_{stem}{ext}"]
    files = [("photos/field/IMG_5521.jpg", 10), ("photos/field/IMG_5522.jpg", 12)]
    schema = _schema("put the date in front of last month's field photos, like 2026-06-29_IMG_5521.jpg", *files)
    match = {"glob": "photos/field/**", "ext": [".jpg"], "modified_after": "30d"}
    assert _allows(schema, {"op": "rename", "match": match, "template": "{mtime:%Y-%m-%d}_{stem}{ext}"})
    assert not _allows(schema, {"op": "move", "match": match, "to": "front"})
    # (a file the request says by name is moved to the new name, as before)
    schema = _schema("rename wedding-38.JPG to v2-wedding-38.JPG", ("photos/wedding-38.JPG", 3))
    assert _allows(schema, {"op": "move", "from": "photos/wedding-38.JPG", "to": "photos/v2-wedding-38.JPG"})


def test_text_dictated_after_a_colon_is_the_line_and_goes_where_it_says() -> None:
    # (all that follows the colon: "taper starts 26" is cut short)
    assert dictated_lines("add a line to sanna's plan: taper starts 26 oct") == ["taper starts 26 oct"]
    assert "meeting at 10: bring coffee" in dictated_lines("write a file that says: meeting at 10: bring coffee")
    files = [
        ("athletes/Sanna J/plan autumn.md", 9),
        ("athletes/Tomás H/plan autumn.md", 9),
        ("templates/weekly plan.md", 90),
    ]
    schema = _schema("add a line to sanna's plan: taper starts 26 oct", *files)
    line = {"op": "append", "content": "taper starts 26 oct\n"}
    assert _allows(schema, {**line, "path": "athletes/Sanna J/plan autumn.md"})
    assert not _allows(schema, {**line, "path": "templates/weekly plan.md"})
    files = [("weather/station-export.zip", 3), ("CSA/week 26.md", 9)]
    said = "unzip the weather station export into weather/2026-07 and add a notes.md in there: hail on 3 july"
    schema = _schema(said, *files)
    extract = {"op": "extract", "from": "weather/station-export.zip", "to": "weather/2026-07"}
    note = {"op": "write", "path": "weather/2026-07/notes.md", "content": "hail on 3 july\n"}
    assert _allows(schema, extract, note)
    assert not _allows(schema, extract, {**note, "path": "notes.md"})
    assert referred_ops("new file todo.md in the thesis folder with") == {"write"}


def test_which_op_a_request_means() -> None:
    # An archive restored is unpacked, not copied for the word "backup".
    schema = _schema(
        "restore the wsjt-x backup tarball into software/wsjtx restore", ("software/wsjtx-backup.tar.gz", 30)
    )
    extract = {"op": "extract", "from": "software/wsjtx-backup.tar.gz", "to": "software/wsjtx restore"}
    assert _allows(schema, extract)
    assert not _allows(
        schema, {"op": "copy", "paths": ["software/wsjtx-backup.tar.gz"], "to": "software/wsjtx restore"}
    )
    # ... in one step, with no folder made twice before it.
    schema = _schema("unzip the care card zip from downloads into care cards/print/2026",
                     ("Downloads/care-cards.zip", 3), ("care cards/a.pdf", 9))  # fmt: skip
    mkdir = {"op": "mkdir", "path": "care cards/print"}
    unpack = {"op": "extract", "from": "Downloads/care-cards.zip", "to": "care cards/print/2026"}
    assert _allows(schema, mkdir, unpack)
    assert not _allows(schema, mkdir, mkdir)
    # "add" alone adds a line, not a tag.
    schema = _schema(
        "add to the mileage sheet - today, greenfield school hall again, 34 km", ("admin/mileage 2026.csv", 9)
    )
    assert not _allows(schema, {"op": "tag", "path": "admin/mileage 2026.csv", "tags": ["today"]})
    # One file pointed at is named by its path.
    schema = _schema("card messages are all written now, take the todo tag off that file",
                     ("orders/card messages.md", 9), ("care cards/todo list.md", 9))  # fmt: skip
    assert _allows(schema, {"op": "untag", "path": "orders/card messages.md", "tags": ["todo"]})
    assert not _allows(schema, {"op": "untag", "match": {"glob": "care cards/**", "tag": "todo"}, "tags": ["todo"]})
    # A size said in a sentence that asks nothing says why, not which.
    files = [("recordings/sdr_1.wav", 4, 600_000_000), ("recordings/sdr_2.wav", 20, 800_000_000)]
    schema = _schema("those sdr recordings are massive. delete any older than a week", *files)
    assert _allows(
        schema, {"op": "delete", "match": {"glob": "recordings/**", "ext": [".wav"], "modified_before": "7d"}}
    )
    # A word of a path it spells asks for nothing file operations cannot do.
    assert not not_files("unzip the intstagram export in downloads to social/instagram")
    assert not_files("post the photos on instagram")


def test_places_said_inside_the_folder_it_speaks_of_and_folders_listed_inside_a_new_one() -> None:
    said = (
        "sort out the nakamura sideboard folder - dxfs into a cad folder and the pdfs into paperwork, both inside "
        "that folder"
    )
    spoken, paths = placed_in_that(said, "commissions/Sideboard Nakamura", ["commissions/Sideboard Nakamura"]) or (
        "",
        [],
    )
    assert paths == ["commissions/Sideboard Nakamura/cad", "commissions/Sideboard Nakamura/paperwork"]
    assert "into commissions/Sideboard Nakamura/cad" in spoken
    assert placed_in_that("dxfs into cad", "x", []) is None
    files = [("commissions/Sideboard Nakamura/top.dxf", 9), ("commissions/Sideboard Nakamura/quote.pdf", 9)]
    schema = _schema(said, *files)
    rules = [{"ext": [".dxf"], "to": "commissions/Sideboard Nakamura/cad"},
             {"ext": [".pdf"], "to": "commissions/Sideboard Nakamura/paperwork"}]  # fmt: skip
    step = {"op": "classify", "match": {"glob": "commissions/Sideboard Nakamura/**"}, "rules": rules}
    assert _allows(schema, step)
    # (sorted into several folders at once, files are sorted, not moved into one of them)
    assert not _allows(schema, {"op": "move", "match": {"glob": "commissions/Sideboard Nakamura/**"}, "to": "cad"})
    said = "set up a folder for the new under 8s, teams/U8 Cubs, with match reports and photos folders inside"
    assert made_names(said) == ["teams/U8 Cubs", "teams/U8 Cubs/match reports", "teams/U8 Cubs/photos"]
    schema = _schema(said, ("teams/U10 Lions/match reports/a.md", 9))
    made = [{"op": "mkdir", "path": path} for path in made_names(said)]
    assert _allows(schema, *made)
    assert not _allows(schema, made[0])


def test_more_ways_of_saying_which_files_and_what_becomes_of_them() -> None:
    # A drone's flight logs are files, not a trip.
    assert not not_files("move the flight logs older than a year into flightlogs/old")
    assert not_files("book me two flights to rome")
    # A word of a path it spells is no tag it selects by.
    files = [("Downloads/client brief - Fenwick estate.pdf", 2, 10)]
    entries = [ViewEntry(*files[0], TODAY, ("job",))]
    schema = narrowed_schema("fenwick brief from downloads -> jobs/2026-07 Fenwick Estate", entries, TODAY)
    assert not _allows(
        schema, {"op": "move", "match": {"glob": "Downloads/**", "tag": "job"}, "to": "jobs/2026-07 Fenwick Estate"}
    )
    # A tag it puts on says no kind of file.
    schema = _schema("tag the huge tiffs with to-backup", ("scans/a.tif", 9, 90_000_000), ("old/x.zip", 9, 90_000_000))
    assert not _allows(
        schema, {"op": "tag", "match": {"glob": "**", "ext": [".zip"], "larger_than": "10MB"}, "tags": ["to-backup"]}
    )
    # "dont need the loose files after" removes what the archive packs.
    schema = _schema("archive the registration forms into registrations/2025-26.zip, dont need the loose files after",
                     ("registrations/2025-26/form 1.pdf", 200))  # fmt: skip
    pack = {"op": "archive", "match": {"glob": "registrations/2025-26/**"}, "to": "registrations/2025-26.zip"}
    assert _allows(schema, {**pack, "remove": True})
    assert not _allows(schema, pack)
    # A day and a space before a name that exists is an example of a new name.
    files = [("progress/IMG_5501.jpg", 9), ("progress/IMG_5502.jpg", 9)]
    schema = _schema("put the date at the front of the harris progress photos, like 2026-09-01 IMG_5501.jpg", *files)
    match = {"glob": "progress/**", "ext": [".jpg"]}
    assert _allows(schema, {"op": "rename", "match": match, "template": "{mtime:%Y-%m-%d} {stem}{ext}"})
    assert not _allows(schema, {"op": "move", "from": "progress/IMG_5502.jpg", "to": "progress/IMG_5501.jpg"})
    # A new name of many words ends at its extension.
    schema = _schema("rename the hollins report pdf to Hollins Farm - topographic survey - FINAL.pdf",
                     ("report/Hollins Farm survey report.pdf", 9))  # fmt: skip
    moved = {"op": "move", "from": "report/Hollins Farm survey report.pdf"}
    assert _allows(schema, {**moved, "to": "report/Hollins Farm - topographic survey - FINAL.pdf"})
    # A number in brackets a download added is found with its space, and taken out.
    schema = _schema("the april receipts all downloaded with (1) on the end of the name, can u strip that off",
                     ("billing/2026-04/receipt (1).pdf", 9))  # fmt: skip
    assert _allows(schema, {"op": "rename", "match": {"glob": "billing/2026-04/**"}, "find": " \\(1\\)", "replace": ""})
    # What files mention is what is said right after "mention".
    schema = _schema(
        "tag any patient notes that mention acl with acl-rehab", ("patients/a.md", 9), ("patients/b.md", 9)
    )
    tagged = {"op": "tag", "match": {"glob": "patients/**", "ext": [".md"]}, "tags": ["acl-rehab"]}
    assert _allows(schema, {**tagged, "match": {**tagged["match"], "contains": "acl"}})
    assert not _allows(schema, {**tagged, "match": {**tagged["match"], "contains": "patient"}})
