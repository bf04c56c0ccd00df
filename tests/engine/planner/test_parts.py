"""Splitting a request that asks for several things in turn, and joining the parts' plans."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.planner.cases import generate_case, generate_cases
from engine.planner.narrow import narrowed_schema
from engine.planner.parts import MAX_PARTS, existing_folders, joined_plan, made_entries, request_parts, with_parents
from engine.planner.prompt import ViewEntry
from engine.planner.said import asked_pieces, asked_steps


@pytest.mark.parametrize(
    ("request_text", "parts"),
    [
        ("move the pdfs into archive", ["move the pdfs into archive"]),
        (
            "zip up logs into logs.zip; also tag the api notes in docs as api",
            ["zip up logs into logs.zip", "tag the api notes in docs as api"],
        ),
        (
            "mirror var into sorted/2025 and then start a note misc/README.md saying hi. Then zip P as p.zip",
            ["mirror var into sorted/2025", "start a note misc/README.md saying hi", "zip P as p.zip"],
        ),
        (
            "pls empty my project, leave project/tests alone. After that, move the pics in camera into done!",
            ["pls empty my project, leave project/tests alone", "move the pics in camera into done!"],
        ),
        # A part that goes on with what the part before it chose stays with it, in the request's words.
        (
            "mark the api notes in docs with review, then move them to docs/api",
            ["mark the api notes in docs with review, then move them to docs/api"],
        ),
        (
            "pack up old into old.tar.gz. Then remove the files :)",
            ["pack up old into old.tar.gz. Then remove the files :)"],
        ),
        ("pack up old into old.tar.gz. Then REOMVE THE FIES", ["pack up old into old.tar.gz. Then REOMVE THE FIES"]),
        ("zip logs into l.zip and then delete the originals", ["zip logs into l.zip and then delete the originals"]),
        # ... but not one that names its own files after "these", or takes "the first" few.
        (
            "tag a.txt as x, then move these to old: b.txt and c.txt",
            ["tag a.txt as x", "move these to old: b.txt and c.txt"],
        ),
        (
            "zip a into a.zip; also move the first 3 logs in var into keep",
            ["zip a into a.zip", "move the first 3 logs in var into keep"],
        ),
        (
            "remove the files in tmp, then move the files in inbox to keep",
            ["remove the files in tmp", "move the files in inbox to keep"],
        ),
    ],
)
def test_a_request_splits_where_one_thing_asked_ends_and_the_next_begins(request_text: str, parts: list[str]) -> None:
    assert request_parts(request_text) == parts


def test_a_request_is_planned_in_at_most_max_parts_parts_the_rest_going_with_the_last() -> None:
    text = "; ".join(f"make a folder called d{n}" for n in range(MAX_PARTS + 2))
    parts = request_parts(text)
    assert len(parts) == MAX_PARTS
    assert parts[-1] == "make a folder called d3; make a folder called d4; make a folder called d5"


def test_a_request_with_nothing_but_joins_is_one_part() -> None:
    assert request_parts("; ; ") == ["; ; "]


def test_generated_joined_requests_split_into_the_requests_they_were_joined_from() -> None:
    # The generator joins independent requests with its own joining words: each should come out
    # as one part, and a request it did not join as one part.
    wrong = []
    for index in range(600):
        case = generate_case(index, seed=3)
        if len(request_parts(case.request)) != len(case.kinds):
            wrong.append((case.kinds, case.request))
    assert wrong == []


def test_joined_plans_keep_every_step_in_order_and_the_goals_of_the_parts_that_do_something() -> None:
    first = {
        "version": 1,
        "goal": "Zip logs",
        "steps": [{"op": "archive", "match": {"glob": "logs/**"}, "to": "l.zip"}],
    }
    empty = {"version": 1, "goal": "Not a file operation", "steps": []}
    second = {
        "version": 1,
        "goal": "Make old",
        "steps": [{"op": "mkdir", "path": "old"}, {"op": "mkdir", "path": "new"}],
    }
    joined = joined_plan([first, empty, second])
    assert joined == {"version": 1, "goal": "Zip logs; make old", "steps": first["steps"] + second["steps"]}
    assert joined_plan([empty, empty]) == {"version": 1, "goal": "Not a file operation", "steps": []}
    assert len(joined_plan([{**first, "goal": "x" * 500}, second])["goal"]) <= 160


@pytest.mark.parametrize(
    ("request_text", "steps"),
    [
        ("move the pdfs into archive", 1),
        ("tag all my algorithms notes exam-prep and copy them to exam-prep/", 2),
        ("take the todo tag off Notes/reno.md, tag it done and move it to Notes/archive", 3),
        ("zip onboarding/ as kit.zip, copy the handbook into shared, and add '- ping Sam' to TODO.md", 3),
        # An archive's own removal, a verb after words that ask nothing, the same thing asked again,
        # taking a few files, a path or a kind that begins like a verb: no more steps.
        ("zip up the logs into logs.zip and delete them", 1),
        ("go ahead and move the pdfs into archive", 1),
        ("Hey, tag the lisbon photo as read-later", 1),
        ("the frank doc belongs in to-print, move it :)", 1),
        ("take 2 PDFs from paperwork, the first ones alphabetically, and move them to keep", 1),
        ("copy a.png and archive/b.zip into sorted", 1),
        ("sort downloads: images into d/images, zip files into d/zip", 1),
    ],
)
def test_the_steps_a_sentence_asks_for_count_each_further_verb(request_text: str, steps: int) -> None:
    assert asked_steps(request_text) == steps


def test_each_thing_a_sentence_asks_is_a_piece_of_it_in_order() -> None:
    assert asked_pieces("take the todo tag off Notes/reno.md, tag it done and move it to Notes/archive") == [
        "take the todo tag off Notes/reno.md", "tag it done", "move it to Notes/archive"]  # fmt: skip
    assert asked_pieces("move the big files in data/ to cold and leave a cold/README.txt that says 'moved'") == [
        "move the big files in data/ to cold", "leave a cold/README.txt that says 'moved'"]  # fmt: skip
    # Leaving the rest be asks for nothing.
    assert asked_pieces("leave the rest where it is and move the pdfs into docs") == [
        "leave the rest where it is and move the pdfs into docs"]  # fmt: skip
    assert asked_pieces("take 2 PDFs from paperwork, the first ones, and move them to keep") == [
        "take 2 PDFs from paperwork, the first ones, and move them to keep"]  # fmt: skip


def test_no_generated_request_asks_for_more_steps_than_its_plan_has() -> None:
    for case in generate_cases(1500, seed=13):
        for part in request_parts(case.request):
            assert asked_steps(part) == 1 or asked_steps(part) <= len(case.plan["steps"]), case.request


def test_the_decoding_schema_wants_a_step_for_each_thing_asked() -> None:
    today = dt.date(2026, 6, 15)
    entries = [ViewEntry("notes/a.md", False, 10, today, ("todo",))]
    two = narrowed_schema("tag notes/a.md done and move it to old", entries, today)["properties"]["steps"]
    assert two["minItems"] == 2
    one = narrowed_schema("tag notes/a.md done", entries, today)["properties"]["steps"]
    assert one["minItems"] == 0  # one thing asked, or nothing a file plan can do


def test_the_folders_a_plan_makes_are_entries_a_later_part_is_narrowed_to() -> None:
    today = dt.date(2026, 3, 1)
    entries = [ViewEntry("Documents", True, 0, today), ViewEntry("Documents/lease-agreement.pdf", False, 10, today),
               ViewEntry("Documents/car insurance policy.pdf", False, 10, today)]  # fmt: skip
    plan = {"version": 1, "steps": [
        {"op": "mkdir", "path": "Documents/house"}, {"op": "mkdir", "path": "Documents/house"},
        {"op": "move", "match": {"glob": "Documents/**"}, "to": "sorted/2026/"},
        {"op": "move", "from": "Documents/a.pdf", "to": "Documents/b.pdf"},  # a rename makes no folder
        {"op": "extract", "from": "x.zip", "to": "../out"},  # no plain name: left out
        "junk", {"op": "copy", "paths": ["Documents/lease-agreement.pdf"], "to": "Documents"},
    ]}  # fmt: skip
    made = made_entries(plan, entries, today)
    assert [(entry.path, entry.is_dir) for entry in made] == [
        ("Documents/house", True), ("sorted", True), ("sorted/2026", True)]  # fmt: skip
    assert made_entries("not a plan", entries, today) == []
    # The second part of "make Documents/house and Documents/car. Then put the lease in house ..."
    # may put files in the folders the first made, and only there.
    _, second = request_parts(
        "I'd like a Documents/house and a Documents/car folder. Then put the lease in house and the car "
        "insurance policy in car. Thanks!"
    )
    made = made_entries({"steps": [{"op": "mkdir", "path": "Documents/house"},
                                   {"op": "mkdir", "path": "Documents/car"}]}, entries, today)  # fmt: skip
    defs = narrowed_schema(second, [*entries, *made], today)["$defs"]
    assert "Documents/house" in defs["target"]["enum"]
    assert "Documents/car" in defs["target"]["enum"]
    alone = narrowed_schema(second, entries, today)["$defs"]
    assert "Documents/house" not in alone["target"].get("enum", [])


def test_a_plan_that_puts_a_file_in_a_missing_folder_makes_that_folder_first() -> None:
    today = dt.date(2026, 5, 1)
    entries = [ViewEntry("invoices/2026/a.pdf", False, 10, today), ViewEntry("empty", True, 0, today)]
    folders = existing_folders(entries)
    assert folders == {"invoices", "invoices/2026", "empty"}
    archive = {"op": "archive", "match": {"glob": "invoices/**"}, "to": "backups/2026/invoices.zip"}
    plan = {"version": 1, "goal": "g", "steps": [archive]}
    assert with_parents(plan, folders) == {**plan, "steps": [{"op": "mkdir", "path": "backups/2026"}, archive]}
    assert plan["steps"] == [archive]  # (a new plan: the answer itself is left as it was)
    # A folder there, or made by an earlier step, is not made again: the plan is itself.
    same = {"version": 1, "steps": [
        {"op": "move", "match": {"glob": "invoices/**"}, "to": "sorted/2026"},
        {"op": "write", "path": "sorted/2026/README.md", "content": "x"},
        {"op": "append", "path": "empty/log.txt", "content": "y"},
        {"op": "write", "path": "top.txt", "content": "z"},
    ]}  # fmt: skip
    assert with_parents(same, folders) is same
    # Each step that needs one gets it, once: a move or a copy of one file, an extraction.
    steps = [{"op": "move", "from": "invoices/2026/a.pdf", "to": "paid/2026/a.pdf"},
             {"op": "copy", "from": "invoices/2026/a.pdf", "to": "paid/2026/b.pdf"},
             {"op": "extract", "from": "x.zip", "to": "out/x"}]  # fmt: skip
    made = [step for step in with_parents({"steps": steps}, folders)["steps"] if step["op"] == "mkdir"]
    assert made == [{"op": "mkdir", "path": "paid/2026"}, {"op": "mkdir", "path": "out"}]
    # Anything but a plain relative folder is left for the dry run to refuse, and what is no plan.
    odd = {"steps": [{"op": "write", "path": "../x/y.txt", "content": "x"},
                     {"op": "write", "path": "./x/y.txt", "content": "x"},
                     {"op": "archive", "to": 3}, "junk"]}  # fmt: skip
    assert with_parents(odd, folders) is odd
    assert with_parents("not a plan", folders) == "not a plan"
