"""The reply schema narrowed to workspaces whose folders are named in several words ("Meeting Notes",
"clients/Harbor View Hotel/invoices") and to requests that send files to new folders named so
("into old stuff/2026", "a folder called Needs Review", "-> Keep Forever")."""

from __future__ import annotations

import datetime as dt

from engine.planner.cases import Case, generate_cases
from engine.planner.evaluate import gold_fits
from engine.planner.narrow import narrowed_schema
from engine.planner.pieces import said_at
from engine.planner.places import made_names
from engine.planner.prompt import ViewEntry
from engine.planner.said import not_files
from engine.planner.said_names import spaced_names, without_locations
from engine.planner.values import goes_to, parent_folders
from engine.planner.words import Request
from tests.engine.planner.test_narrow import TODAY, _allows

ENTRIES = [
    ViewEntry(path, False, size, TODAY - dt.timedelta(days=age))
    for path, size, age in (
        ("Meeting Notes/roadmap-minutes.md", 900, 40),
        ("Meeting Notes/meeting-2026-04-12.md", 900, 60),
        ("Meeting Notes/pricing-ideas.md", 900, 3),
        ("Downloads/email attachments/poster.pdf", 90_000, 12),
        ("Downloads/email attachments/setup copy.zip", 90_000, 12),
        ("Bills 2025/invoice-2025-03.pdf", 40_000, 300),
        ("Bills 2025/receipt-2025-07.pdf", 40_000, 150),
        ("clients/Harbor View Hotel/logs/sync-2026-05-01.log", 300, 45),
        ("clients/Harbor View Hotel/logs/sync-2026-06-10.log", 300, 5),
        ("clients/Harbor View Hotel/site photos/pool.jpg", 800_000, 20),
        ("photos/IMG_2610.jpg", 800_000, 20),
        ("photos/lisbon-17.png", 800_000, 20),
        ("Backups/photos-backup-20240323.tar.gz", 5_000, 400),
    )
]
NOTES = {"glob": "Meeting Notes/**", "ext": [".md"]}


def test_a_new_folder_said_in_several_words_after_where_things_go_is_one_name() -> None:
    folders = [entry.path.rsplit("/", 1)[0] for entry in ENTRIES]
    assert "old stuff/2026" in spaced_names("put the pdfs in Bills 2025 into old stuff/2026 please", folders)
    assert "Needs Review" in spaced_names("make a folder called Needs Review and keep", folders)
    assert "Keep Forever" in spaced_names(".py files in tools older than 7 days -> Keep Forever, thx", folders)
    assert "Old Drafts/misc" in spaced_names("Old Drafts/misc should hold the scripts in tools", folders)
    # The words after the name are not the name's: a small word, thanks, the end of a clause.
    assert spaced_names("move the logs into old stuff thanks", folders) == ["old stuff"]
    assert spaced_names("I'd like you to move the notes to sorted", folders) == []
    # A name said with a slash at its end ends there.
    said = spaced_names("the jpgs in clients/Harbor View Hotel/site photos/ dated 2025", folders)
    assert "clients/Harbor View Hotel/site photos" in said
    assert not [name for name in said if "dated" in name]
    # A file's name after words that spell a folder with its stem, or with its path's first part.
    assert "Meeting Notes/ideas.md" in spaced_names("append a line to Meeting Notes/ideas.md", folders)


def test_files_go_into_a_new_folder_of_several_words_never_into_its_first_word() -> None:
    schema = narrowed_schema("move the markdown files in Meeting Notes into old stuff/2026", ENTRIES, TODAY)
    assert _allows(schema, {"op": "move", "match": NOTES, "to": "old stuff/2026"})
    schema = narrowed_schema("please make a folder called Needs Review", ENTRIES, TODAY)
    assert _allows(schema, {"op": "mkdir", "path": "Needs Review"})
    schema = narrowed_schema("Meeting Notes files older than a month -> Keep Forever", ENTRIES, TODAY)
    move = {"op": "move", "match": {"glob": "Meeting Notes/**", "modified_before": "30d"}}
    assert _allows(schema, {**move, "to": "Keep Forever"})


def test_folders_listed_to_make_may_be_named_in_several_words() -> None:
    assert made_names("make a folder called Needs Review/2026 and archive and keep, thx") == [
        "Needs Review/2026",
        "archive",
        "keep",
    ]
    assert made_names("make a folder called keep/travel and old - thank you") == ["keep/travel", "old"]
    assert made_names("mkdir old and new for the photos") == []  # "new for the photos" is no name


def test_a_word_of_a_folders_name_asks_for_nothing_else() -> None:
    # "email" in a folder's name sends no mail; the year in "Bills 2025" is no date.
    folders = ["Downloads", "Downloads/email attachments"]
    assert not not_files("move the pdfs in Downloads/email attachments into keep", folders)
    assert not_files("email the pdfs in Downloads/email attachments to Ana", folders)
    schema = narrowed_schema("in Downloads/email attachments, remove ' copy' from the names", ENTRIES, TODAY)
    rename = {"op": "rename", "match": {"glob": "Downloads/email attachments/**"}, "find": " copy", "replace": ""}
    assert _allows(schema, rename)
    schema = narrowed_schema("in my Bills 2025, replace spaces with dashes", ENTRIES, TODAY)
    assert _allows(schema, {"op": "rename", "match": {"glob": "Bills 2025/**"}, "find": " ", "replace": "-"})


def test_a_folder_said_as_where_files_are_describes_none_of_them() -> None:
    folders = ["photos", "Meeting Notes", "Backups"]
    assert without_locations("copy the images in photos folder inside keep", folders).split() == [
        "copy", "the", "images", "in", "folder", "inside", "keep"
    ]  # fmt: skip
    assert without_locations("copy the photos backup into keep", folders) == "copy the photos backup into keep"
    # ... so the images in photos are selected there, not the photos-backup archive listed.
    schema = narrowed_schema("make copies of the images in photos folder inside keep", ENTRIES, TODAY)
    images = {"glob": "photos/**", "ext": [".jpg", ".png"]}
    assert _allows(schema, {"op": "copy", "match": images, "to": "keep"})
    # ... and the notes in a folder sorted by topic into folders inside it are selected by a match.
    request = "Sort the notes in meeting notes by topic: roadmap notes into Meeting Notes/roadmap and pricing notes "
    schema = narrowed_schema(request + "into Meeting Notes/pricing please", ENTRIES, TODAY)
    rules = [
        {"contains": "roadmap", "to": "Meeting Notes/roadmap"},
        {"contains": "pricing", "to": "Meeting Notes/pricing"},
    ]
    assert _allows(schema, {"op": "classify", "match": NOTES, "rules": rules})


def test_a_word_of_the_folder_files_are_in_is_nothing_they_hold() -> None:
    schema = narrowed_schema("move the markdown files in Meeting Notes into archive/2026", ENTRIES, TODAY)
    move = {"op": "move", "match": NOTES, "to": "archive/2026"}
    assert _allows(schema, move)
    assert not _allows(schema, {**move, "match": {**NOTES, "contains": "meeting"}})
    # A word said outside the folder's name still is: "the notes in Meeting Notes that mention pricing".
    schema = narrowed_schema("move the notes in Meeting Notes that mention pricing to archive", ENTRIES, TODAY)
    assert _allows(schema, {"op": "move", "match": {**NOTES, "contains": "pricing"}, "to": "archive"})


def test_a_kind_of_file_from_an_owners_folder_may_be_selected_there() -> None:
    schema = narrowed_schema("shift logs older than 7 days from the Harbor View Hotel folder into keep", ENTRIES, TODAY)
    logs = {"ext": [".log"], "modified_before": "7d"}
    assert _allows(schema, {"op": "move", "match": {"glob": "clients/Harbor View Hotel/**", **logs}, "to": "keep"})
    assert _allows(schema, {"op": "move", "match": {"glob": "clients/Harbor View Hotel/logs/**", **logs}, "to": "keep"})


def test_places_said_in_several_words() -> None:
    # A place said after a small word ("into My Downloads/pictures") is one of the place's words.
    assert goes_to("My Downloads/pictures", {"downloads/pictures"})
    assert not goes_to("My Downloads", {"downloads/pictures"})
    request = "images into Keep Forever/2026 and the rest into Keep Forever/other"
    assert said_at(request, "Keep Forever/2026") == request.index("Keep Forever/2026")
    assert said_at(request, "Keep") == said_at(request, "Keep Forever/2026")
    assert Request("the jpgs in site photos/ dated 2025").spells("site photos")
    assert not Request("the jpgs in site photos/pool dated 2025").spells("site photos")


def test_gold_plans_that_name_folders_of_several_words_fit_their_schemas() -> None:
    def spoken(case: Case) -> bool:
        folders = {folder for spec in case.fixture.files for folder in parent_folders(spec.path)}
        return any(" " in folder and folder.lower() in case.request.lower() for folder in folders)

    said = [case for case in generate_cases(200, seed=41, wide_percent=100) if spoken(case)]
    assert len(said) >= 20
    assert [case.id for case in said if not gold_fits(case)] == []
