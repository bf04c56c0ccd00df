"""What a request refers to: the folders, files and kinds the decoding schema offers first and only."""

from __future__ import annotations

import datetime as dt

from engine.planner.kind_words import referred_exts
from engine.planner.narrow import narrowed_schema
from engine.planner.places import made_folders, referred_targets
from engine.planner.prompt import ViewEntry
from engine.planner.refer import referred_files, referred_folders, referred_ops, takes_from_folder
from engine.planner.said import asked_pieces
from engine.planner.spared import spared_folders
from engine.planner.words import Request, alike, stem

TODAY = dt.date(2026, 6, 15)


def test_plural_endings_come_off() -> None:
    assert [stem(w) for w in ("taxes", "notes", "libraries", "Photos", "class", "status", "tax")] == [
        "tax", "note", "library", "photo", "class", "status", "tax"]  # fmt: skip


def test_two_words_spelled_right_are_one_only_by_an_ending() -> None:
    # A typo of a word is that word, both ways ("budegt", "evry", "delte").
    for said, word in (("budegt", "budget"), ("budget", "budegt"), ("evry", "every"), ("delte", "delete"),
                       ("recipies", "recipes")):  # fmt: skip
        assert alike(said, word), (said, word)
    # A word and its endings are one.
    for said, word in (("moved", "move"), ("copies", "copied"), ("dated", "date"), ("archived", "archive"),
                       ("named", "name"), ("renamed", "rename")):  # fmt: skip
        assert alike(said, word), (said, word)
    # Two words spelled right are not typos of each other.
    for said, word in (("alone", "clone"), ("lease", "leave"), ("chance", "change"), ("trips", "strip"),
                       ("loose", "lose"), ("report", "export"), ("start", "star"), ("spaces", "place")):  # fmt: skip
        assert not alike(said, word), (said, word)
    assert not Request("leave anything else alone").uses(["clone"])
    assert Request("pls clnoe the repo").uses(["clone"])


def test_a_polite_chance_or_a_lease_asks_for_no_op_of_theirs() -> None:
    assert referred_ops("by any chance, could you move the pdfs to docs") == {"move", "classify"}
    assert referred_ops("copy the lease to Contracts") == {"copy"}
    assert "copy" not in (referred_ops("pdfs into Scans/pdf, leave anything else alone") or set())


def test_a_folder_is_referred_to_by_its_path_or_a_word_of_its_last_part() -> None:
    folders = ["media", "media/music", "media/videos", "Documents", "Documents/taxes", "photos", "photos/wedding"]
    assert referred_folders("put the songs in music/ into backup", folders) == ["media/music"]
    assert referred_folders("my tax stuff -> archive", folders) == ["Documents/taxes"]
    # A path spelled whole is not a mention of its parents.
    assert referred_folders("photos/wedding files older than 7 days -> keep", folders) == ["photos/wedding"]
    assert referred_folders("the wedding photos", folders) == ["photos", "photos/wedding"]
    # Nor is a new folder it spells ("into Documents/pdfs"), but one it spells with a slash after is itself.
    assert referred_folders("sort my downloads: pdfs go to Documents/pdfs", [*folders, "Downloads"]) == ["Downloads"]
    assert referred_folders("the pdfs in Documents/taxes/ -> done", folders) == ["Documents/taxes"]
    assert referred_folders("remind me to call mum", folders) is None


def test_a_file_named_whole_is_the_only_one_its_words_refer_to() -> None:
    files = ["notes/meeting-2024-12-06.md", "notes/meeting-2026-04-22.md", "papers/rental contract.pdf",
             "taxes/W-2 Employer.pdf", "taxes/1099-INT.pdf", "taxes/budget.xlsx"]  # fmt: skip
    said = "call meeting-2024-12-06.md old-meeting-2024-12-06.md instead"
    assert referred_files(said, files) == ["notes/meeting-2024-12-06.md"]
    assert referred_files("the meeting notes", files) == files[:2]
    assert referred_files("move the rental contract pdf to keep", files) == ["papers/rental contract.pdf"]
    assert referred_files("copy the W-2 and the 1099 for the accountant", files) == files[3:5]
    assert referred_files("the budegt sheet", files) == ["taxes/budget.xlsx"]  # one letter typed wrong
    assert referred_files("what's the weather", files) is None
    # A file that holds only some of the words another holds is not the one described.
    assert referred_files("tag the budget meeting notes", ["budget.xlsx", "budget-meeting.md", "meeting.md"]) == [
        "budget-meeting.md"
    ]
    assert referred_files("the lease and the car policy", ["lease.pdf", "car-policy.pdf", "car.jpg"]) == [
        "lease.pdf",
        "car-policy.pdf",
    ]
    # (A word for a kind of file is no such word: "the wedding clip" may be wedding-trip.mp4.)
    clips = ["v/wedding-trip.mp4", "v/wedding-clip.mov", "v/old.bak", "v/db-backup.zip"]
    assert referred_files("move the wedding clip in v to x", clips) == clips[:2]
    assert referred_files("tag the backup in v as keep", clips) == [clips[3]]
    # A word for another kind is a word of its name, two letters long too: "the db backup" is the
    # db backup, not every backup zip ("backup" is a kind of zip, "db" is not).
    backups = ["b/config-backup-2026.zip", "b/db-backup-2025.zip", "b/photos-backup-2026.zip", "b/old.bak"]
    assert referred_files("unzip the db backup in review/db-backup-2025", backups) == [backups[1]]
    assert referred_files("unzip the cv in b", ["b/cv.pdf", "b/cover.pdf"]) == ["b/cv.pdf"]
    # The words of a new name it gives, of another path it spells and of a tag it names describe none.
    assert referred_files("rename the rental contract to budget-2024.pdf", files) == ["papers/rental contract.pdf"]
    assert referred_files("unpack the 1099 into taxes/budget", files) == ["taxes/1099-INT.pdf"]
    assert referred_files("take the meeting tag off the budget", files, tags=["meeting"]) == ["taxes/budget.xlsx"]


def test_a_version_said_tells_files_apart_and_a_new_name_describes_none() -> None:
    files = ["recipes/West Coast IPA v2.md", "recipes/West Coast IPA v3.md", "labels/ipa-label-v3.ai",
             "downloads/poster.docx", "downloads/poster_v2.docx"]  # fmt: skip
    # "v2" and "q3" are words of names: a letter and a digit.
    assert referred_files("IPA v2 is retired, stick it in recipes/retired", files) == ["recipes/West Coast IPA v2.md"]
    # A name with an extension no file has is a new one: "v2-poster.docx" describes no v2 file.
    assert referred_files("also call poster.docx v2-poster.docx instead", files) == ["downloads/poster.docx"]


def test_kinds_are_named_by_extension_or_by_a_word_for_them() -> None:
    exts = [".md", ".mp3", ".m3u", ".xyz", ".jpg", ".png", ".pdf", ".mp4", ".sql"]
    assert referred_exts("move the songs to music", exts) == [".mp3", ".xyz"]  # no word here names .xyz
    assert referred_exts("the PDFs and MP4s", exts) == [".xyz", ".pdf", ".mp4"]
    assert referred_exts("copy the noets in documents", exts) == [".md", ".xyz", ".pdf"]  # "noets": notes
    assert referred_exts("holiday pics and playlists", exts) == [".m3u", ".xyz", ".jpg", ".png"]
    # Extensions spelled with their dot are all it names.
    assert referred_exts("prefix the .sql dumps with prod-", exts) == [".sql"]
    assert referred_exts("nuke the .bak and .orig leftovers", [".bak", ".orig", ".pyc"]) == [".bak", ".orig"]
    # An extension said before a word for its kind narrows the kind; a folder spelled with a slash is no kind.
    assert referred_exts("archive png images from photos/ as old.zip", exts) == [".xyz", ".png"]
    assert referred_exts("the mp3 songs", exts) == [".mp3", ".xyz"]
    assert referred_exts("the pdf files and the images", exts) == [".xyz", ".jpg", ".png", ".pdf"]
    # A verb is not a kind: "move" is not "movie", and no kind named is None.
    assert referred_exts("move everything in downloads", exts) is None
    # A word for a kind no file here has is a word of names, and no kind an unknown extension may be:
    # "the lecture slides" are lecture-07-slides.pdf where there are no slide decks, never the .tex.
    assert referred_exts("put the lecture slides from downloads into courses", [".pdf", ".tex", ".zip"]) is None
    assert referred_exts("the lecture slides", [".pdf", ".tex", ".pptx"]) == [".tex", ".pptx"]
    # (Spelled with its dot, a kind no file has is still the kind it names: no file, never every file.)
    assert referred_exts("delete the .bak files", [".pdf", ".tex"]) == [".bak"]
    # A file the request names is where things go, not a kind it asks for.
    assert referred_exts("copy the thesis folder to thesis-backup.pdf", exts) is None
    # One long token is one name, read in one pass (it once took minutes at this length).
    assert referred_exts("save it as " + "x-" * 50_000 + "y.pdf", exts) is None
    assert referred_exts("the pdfs " + "a." * 50_000, exts) == [".xyz", ".pdf"]


def test_the_schema_offers_what_the_request_refers_to_and_everything_when_it_refers_to_nothing() -> None:
    paths = ["meetings/budget-review.md", "meetings/database.md", "media/music/a.mp3", "media/videos/b.mp4"]
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    defs = narrowed_schema("tag the budegt notes in meetings as urgent", entries, TODAY)["$defs"]
    contains = next(d["enum"] for name, d in defs.items() if name.startswith("contains-"))
    assert "budget" in contains
    assert "database" not in contains
    assert defs["glob"]["enum"] == ["meetings/**", "meetings/*"]  # it takes files from meetings
    exts = next(d["enum"] for name, d in defs.items() if name.startswith("items-"))
    assert exts == [".md"]
    defs = narrowed_schema("move the songs in music/ to backup", entries, TODAY)["$defs"]
    assert defs["glob"]["enum"] == ["media/music/**", "media/music/*"]  # it takes files from music
    defs = narrowed_schema("move the budget review to keep", entries, TODAY)["$defs"]
    assert "meetings/budget-review.md" in defs["source"]["enum"]
    assert "meetings/database.md" not in defs["source"]["enum"]
    # Nothing referred to: every folder and file is offered, as before.
    defs = narrowed_schema("zip it all up as all.zip", entries, TODAY)["$defs"]
    assert {"meetings/**", "media/music/**", "media/videos/**"} <= set(defs["glob"]["enum"])


def test_the_ops_offered_are_those_the_request_says() -> None:
    assert referred_ops("delete the tmp files in Downloads") == {"delete"}
    # Typed fast, and in other words: "extrct", "get rid of", "bakc up".
    assert referred_ops("extrct hw2-solutions.zip into code/hw2") == {"extract", "mkdir"}  # it unpacks into a folder
    assert "delete" in (referred_ops("get rid of the old logs") or set())
    assert "copy" in (referred_ops("bakc up the photos to backup") or set())
    # A word inside a file's name asks for nothing: this zip is unpacked, not made.
    assert "archive" not in (referred_ops("extract data.zip to restore") or set())
    # A new archive's name asks for an archive; an arrow for a move; quoted text for a write.
    assert "archive" in (referred_ops("everything in thesis as thesis-backup.tar.gz") or set())
    # Two archive names in a rename are an archive's old name and its new one: no archive is made.
    assert "archive" not in (
        referred_ops("I'd like you to call data-final.zip copy-of-data-final.zip instead") or set()
    )
    assert "archive" not in (referred_ops("rename old.zip to new.zip") or set())
    assert "archive" in (referred_ops("rename the logs into logs.zip") or set())
    assert {"move", "classify"} <= (referred_ops("pdfs -> docs") or set())
    assert {"write", "append"} <= (referred_ops("'buy milk' in todo.md") or set())
    # "remove" with a tag is an untag only; without one, only a delete.
    assert referred_ops("remove the draft tag from everything") == {"untag"}
    assert referred_ops("done editing the pics, pls drop the to-edit tag from them") == {"untag"}
    assert "delete" in (referred_ops("remove the draft tag from a.md and delete b.md") or set())
    assert "untag" not in (referred_ops("remove the old logs") or set())
    # An op said not to be done is not asked, nor is "leave" in "leave the rest alone".
    assert referred_ops("zip up the trip pictures as trip.zip (dont delete them)") == {"archive"}
    assert "delete" not in (referred_ops("pack the logs without deleting the originals") or set())
    assert "write" not in (referred_ops("pdfs into Scans/pdf, leave anything else alone") or set())
    assert "write" in (referred_ops("leave a note in todo.md") or set())
    # A tag that only comes off ("the draft tag" is a noun) is no tag put on; a swap is both.
    assert "tag" not in (referred_ops("strip the draft tag off whatever in meetings") or set())
    assert "tag" not in (referred_ops("take the favorite tag off everything") or set())
    assert {"tag", "untag"} <= (referred_ops("swap the todo tag on grocery.md for done") or set())
    assert {"tag", "untag"} <= (referred_ops("take the todo tag off a.md and tag it done") or set())
    assert "tag" in (referred_ops("tag the notes urgent") or set())  # nothing comes off
    assert "tag" in (referred_ops("remove the old logs. Then a.png gets the archived tag") or set())
    # A request that says no op's word is offered every op (None), as before.
    assert referred_ops("what's the weather tomorrow") is None
    # Nor does one that says only nouns that are also an op's words ("notes", "logs", "a new folder").
    assert referred_ops("my notes and the new logs folder are a mess") is None
    assert referred_ops("file the pdfs under docs") == {"move", "rename", "classify"}  # "file" as a verb
    assert referred_ops("") is None


def test_a_plan_does_only_what_the_request_says() -> None:
    entries = [ViewEntry("logs/a.log", False, 10, TODAY), ViewEntry("notes/todo.md", False, 10, TODAY)]
    schema = narrowed_schema("write 'exam: feb 12' into notes/exam.txt", entries, TODAY)
    step = schema["$defs"]["step"]
    assert set(step["properties"]["op"]["enum"]) == {"write", "append"}
    assert {way["if"]["properties"]["op"]["const"] for way in step["allOf"]} == {"write", "append"}
    # The file written is the name with an extension, not a word of the line ("exam").
    written = schema["$defs"]["write"]["properties"]["path"]["$ref"].rsplit("/", 1)[1]
    assert schema["$defs"][written]["enum"] == ["notes/exam.txt"]
    # A request that says no op is offered every op that has somewhere to go but a delete: a write or
    # an append, only where it names a file.
    free = narrowed_schema("hmm, my logs", entries, TODAY)["$defs"]["step"]["properties"]["op"]["enum"]
    assert {"move", "tag", "archive"} <= set(free)
    assert not {"write", "append", "delete"} & set(free)
    free = narrowed_schema("hmm, my logs. notes/exam.txt", entries, TODAY)["$defs"]["step"]["properties"]["op"]["enum"]
    assert {"write", "append"} <= set(free)


def test_a_folder_files_are_taken_from_is_not_one_they_go_to_or_a_kind() -> None:
    folders = ["docs", "archive", "Videos", "Music", "thesis", "Documents/work", "Backups"]
    assert takes_from_folder("move the pdfs in docs to archive", folders)
    assert takes_from_folder("zip the thesis folder to thesis-backup.zip", folders)
    assert takes_from_folder("grab the first 3 songs in Music", folders)
    assert not takes_from_folder("move the pdfs to archive", folders)  # where they go
    assert not takes_from_folder("pdfs -> docs", folders)
    assert not takes_from_folder("move all the big videos onto external/videos", folders)  # a kind of file
    assert not takes_from_folder("files with the work tag go to archive", folders)  # a tag
    assert not takes_from_folder("remove every tmp file but leave Backups alone", folders)  # left alone
    assert not takes_from_folder("what's the weather", folders)
    # A kind said without "all" or "every" that is a folder's whole name is that folder.
    assert takes_from_folder("put the videos older than a year in Videos/old", folders)
    assert takes_from_folder("move last month's videos to archive", folders)
    assert not takes_from_folder("move every video older than a year to archive", folders)
    assert not takes_from_folder("move the songs to archive", folders)  # no folder is called that


def test_the_places_files_go_to_are_said_after_to_or_where_nothing_else_is_said() -> None:
    assert referred_targets("move last month's screenshots to Desktop/recent") == {"desktop/recent"}
    assert referred_targets("everything tagged hiring -> hr/") == {"hr"}
    assert referred_targets("copy whatever in onboarding mentions the vpn into it-handover") == {"it-handover"}
    assert referred_targets("I'd like you to move the logs into the folder called old") == {"old"}  # not "move"
    assert referred_targets("archive shuold hold the .md files that are in wiki") == {"archive"}  # a typo too
    # "in" says where files go only in a clause that says it no other way.
    assert referred_targets("put the lease in house. Then move the pdfs in docs to keep") == {"house", "keep"}
    assert referred_targets("file the 2025 pngs under Pictures/2025") == {"pictures/2025"}
    # A file name may be a new name ("call a.md b.md"): the name, and its last part.
    assert referred_targets("call notes/a.md b.md instead") == {"notes/a.md", "a.md", "b.md"}
    assert referred_targets("delete the old logs") is None
    assert referred_targets("") is None


def test_the_schema_offers_only_the_places_the_request_says() -> None:
    paths = ["onboarding/vpn.md", "exports/crm.tar.gz", "Notes/kitchen.md", "reports/q1.pdf"]
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    defs = narrowed_schema("copy whatever in onboarding mentions the vpn into it-handover", entries, TODAY)["$defs"]
    assert defs["target"]["enum"] == ["it-handover"]  # not "mentions", not the folder it reads
    defs = narrowed_schema("extract the crm export into exports/crm", entries, TODAY)["$defs"]
    into = defs["extract"]["properties"]["to"]["$ref"].rsplit("/", 1)[1]
    assert defs[into]["enum"] == ["exports/crm"]
    # Only files carry tags: a tag step's path is a file, never a word such as "finally".
    defs = narrowed_schema("kitchen is finally done! tag Notes/kitchen.md done", entries, TODAY)["$defs"]
    tagged = defs["tag"]["anyOf"][0]["properties"]["path"]["$ref"].rsplit("/", 1)[1]
    assert defs[tagged]["enum"] == ["Notes/kitchen.md"]
    # A request that says no place offers every folder it mentions, and none it does not: "tidy up"
    # moves nothing anywhere (it takes no step).
    defs = narrowed_schema("tidy up onboarding, exports, notes and reports", entries, TODAY)["$defs"]
    assert {"onboarding", "exports", "Notes", "reports"} <= set(defs["target"]["enum"])
    schema = narrowed_schema("tidy up", entries, TODAY)
    assert schema["properties"]["steps"]["maxItems"] == 0


def test_a_file_renamed_keeps_its_folder_and_a_list_holds_no_item_twice() -> None:
    paths = ["camera/2025/office-8.JPG", "inbox/office-8.txt", "photos/a.jpg", "photos/b.png"]
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    defs = narrowed_schema("RENAME office-8.JPG TO old-office-8.JPG", entries, TODAY)["$defs"]
    singles = [way for way in defs["move"]["anyOf"] if "from" in way["required"]]
    assert [way["properties"]["from"] for way in singles] == [{"const": "camera/2025/office-8.JPG"}]
    assert singles[0]["properties"]["to"] == {"enum": ["camera/2025/old-office-8.JPG"]}
    # The new name is no bare name at the top, and never a file that exists.
    assert "old-office-8.JPG" not in defs["target"]["enum"]
    assert "camera/2025/office-8.JPG" not in defs["target"]["enum"]
    # At most as many extensions or tags as there are to choose from: none can come twice.
    defs = narrowed_schema("copy the jpgs in photos into keep and tag them trip", entries, TODAY)["$defs"]
    ext = defs["match"]["properties"]["ext"]
    assert ext["maxItems"] == len(defs[ext["items"]["$ref"].rsplit("/", 1)[1]]["enum"]) < 8
    assert defs["tags"]["maxItems"] == len(defs["tag_name"]["enum"]) == 1
    # A list of paths names files, never their folder.
    defs = narrowed_schema("delete a.jpg and b.png in photos", entries, TODAY)["$defs"]
    assert defs["listed"]["enum"] == ["photos/a.jpg", "photos/b.png"]
    assert defs["paths"]["items"] == {"enum": defs["listed"]["enum"]}  # listed whole: each file once
    assert defs["paths"]["uniqueItems"] is True
    assert defs["paths"]["maxItems"] == 2


def test_the_folders_a_request_makes_are_the_names_after_mkdir_create_or_make_a_folder() -> None:
    assert made_folders("create trash-me and put the logs there") == ["trash-me"]
    assert made_folders("Make a folder called keep/travel, then move x.md into it") == ["keep/travel"]
    assert made_folders("mkdir old/ and move the pdfs into it") == ["old"]
    # Not an archive, a copy or a file made.
    assert made_folders("make an archive logs.zip of logs") == []
    assert made_folders("make a copy of a.md in b") == []
    assert made_folders("create notes.txt with the text hi") == []


def test_files_put_in_it_go_where_the_folder_made_is() -> None:
    assert referred_targets("create Trash-me and put the logs in it") == {"trash-me"}
    assert referred_targets("mkdir keep and move a.log into it") == {"keep", "a.log"}
    # With no folder made, "it" is no place.
    assert referred_targets("move the pdfs into it") is None


def test_a_folder_left_alone_is_said_so_with_a_typo_too() -> None:
    folders = ["Pictures", "Pictures/Screenshots", "Pictures/trips"]
    assert spared_folders("delete everything in pictures except Pictures/Screenshots", folders) == {
        "Pictures/Screenshots"}  # fmt: skip
    assert spared_folders("delete everything in pictures execpt Pictures/Screenshots", folders) == {
        "Pictures/Screenshots"}  # fmt: skip
    assert spared_folders("move Pictures/Screenshots to old", folders) == set()


def test_a_top_folder_spelled_with_a_slash_is_that_folder() -> None:
    folders = ["dist", "node_modules", "node_modules/slider", "node_modules/slider/dist", "releases"]
    assert referred_folders("bundle up dist/ into releases/v1.4.0.tar.gz", folders) == ["dist"]
    assert referred_folders("move the pdfs in dist to x", folders) == ["dist", "node_modules/slider/dist"]


def test_chuck_deletes_and_a_tag_taken_off_is_a_step_of_its_own() -> None:
    assert referred_ops("chuck Midnight Drive v1.wav, it's garbage") == {"delete"}
    assert asked_pieces("tag them done and take the wip tag off") == ["tag them done", "take the wip tag off"]


def test_an_archive_removes_what_it_packs_only_when_the_request_says_so() -> None:
    entries = [ViewEntry("photos/a.png", False, 10, TODAY), ViewEntry("logs/x.log", False, 10, TODAY)]
    kept = narrowed_schema("zip photos/ as photos.zip and copy logs to keep", entries, TODAY)["$defs"]["archive"]
    assert all("remove" not in way["properties"] for way in kept["anyOf"])
    gone = narrowed_schema("zip photos/ as photos.zip, removing the originals", entries, TODAY)["$defs"]["archive"]
    assert all(way["properties"]["remove"] == {"const": True} for way in gone["anyOf"])
    assert all("remove" in way["required"] for way in gone["anyOf"])
    # Keeping the originals says nothing done to them ("the" is no word typed too fast for delete).
    for request in (
        "make a zip of photos as photos.zip? keep the originals where they are",
        "zip photos as photos.zip, keep the originals",
        "tar up photos from them as p.tar.gz",
    ):
        kept = narrowed_schema(request, entries, TODAY)["$defs"]["archive"]
        assert all("remove" not in way["properties"] for way in kept["anyOf"]), request
    # Two archives and a delete: either may remove what it packs.
    two = narrowed_schema("zip photos as a.zip and logs as b.zip, delete the originals", entries, TODAY)
    assert all(way["properties"]["remove"] == {"type": "boolean", "default": False}
               for way in two["$defs"]["archive"]["anyOf"])  # fmt: skip
