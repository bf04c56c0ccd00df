"""The rule-based baseline parser: right on common phrasings, never an invalid plan, never an exception."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from engine.planner.cases import generate_cases
from engine.planner.effect import plan_effect, reply_problems
from engine.planner.fixtures import FileSpec, Fixture
from engine.planner.prompt import entries_from_fixture
from engine.planner.rules import parse_request

TODAY = dt.date(2026, 3, 15)
KB, MB = 1024, 1024 * 1024
IMAGES = [".jpg", ".png", ".heic"]


def _note(path: str, text: str, age: float, tags: tuple[str, ...] = ()) -> FileSpec:
    if tags:
        text = "---\ntags: [" + ", ".join(tags) + "]\n---\n" + text
    return FileSpec(path, size=len(text), age_days=age, text=text, tags=tags)


WORKSPACE = Fixture(
    (
        _note("docs/architecture.md", "# Architecture\n\nThe service layout.\n", 3),
        _note("docs/budget-plan.md", "# Plan\n\nThe budget for the third quarter.\n", 50, ("draft",)),
        _note("docs/roadmap.md", "# Roadmap\n\nWhat ships next, and its budget.\n", 12, ("draft", "work")),
        _note("docs/todo.txt", "budget review\n", 4),
        FileSpec("docs/spec.pdf", size=200 * KB, age_days=20),
        FileSpec("docs/old/manual.pdf", size=300 * KB, age_days=500),
        _note("logs/app-2026-03-13.log", "INFO started\n", 2),
        _note("logs/app-2026-02-28.log", "INFO started\n", 15),
        _note("logs/app-2025-02-01.log", "ERROR stopped\n", 407),
        FileSpec("logs/app.log.tmp", size=100, age_days=1),
        FileSpec("photos/2025/beach-1.jpg", size=500 * KB, age_days=200),
        FileSpec("photos/2025/beach-2.png", size=400 * KB, age_days=230),
        FileSpec("photos/2024/paris.JPG", size=600 * KB, age_days=500),
        FileSpec("media/trip.mp4", size=40 * MB, age_days=30),
        FileSpec("media/clip.mp4", size=1 * MB, age_days=60),
        FileSpec("downloads/report.pdf", size=100 * KB, age_days=8),
        FileSpec("downloads/setup.tmp", size=200, age_days=2),
        FileSpec("downloads/site-backup.zip", members={"site/index.txt": "index\n"}, age_days=40),
    )
)

#: Requests in everyday wording (not the generator's templates) and the plans that do what they ask.
REPRESENTATIVE: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "move all the PDFs in docs to archive",
        [{"op": "move", "match": {"glob": "docs/**", "ext": [".pdf"]}, "to": "archive"}],
    ),
    (
        "please delete the logs older than a week",
        [{"op": "delete", "match": {"glob": "**", "ext": [".log"], "modified_before": "7d"}}],
    ),
    (
        "copy downloads/report.pdf into backup thanks in advance",
        [{"op": "copy", "paths": ["downloads/report.pdf"], "to": "backup"}],
    ),
    ("move report.pdf from downloads to docs", [{"op": "move", "paths": ["downloads/report.pdf"], "to": "docs"}]),
    (
        "mirror photos into backup/photos",
        [{"op": "copy", "match": {"glob": "photos/**"}, "to": "backup/photos", "keep_tree": True}],
    ),
    ("rename docs/spec.pdf to final-spec.pdf", [{"op": "move", "from": "docs/spec.pdf", "to": "docs/final-spec.pdf"}]),
    ("trash every .tmp file", [{"op": "delete", "match": {"glob": "**", "ext": [".tmp"]}}]),
    (
        "put the photos from 2025 into photos/best",
        [
            {
                "op": "move",
                "match": {
                    "glob": "photos/**",
                    "ext": IMAGES,
                    "modified_after": "2025-01-01",
                    "modified_before": "2026-01-01",
                },
                "to": "photos/best",
            }
        ],
    ),
    (
        "move files bigger than 10 MB from media to media/large",
        [{"op": "move", "match": {"glob": "media/**", "larger_than": "10MB"}, "to": "media/large"}],
    ),
    (
        "remove the draft tag from everything in docs",
        [{"op": "untag", "match": {"glob": "docs/**", "tag": "draft"}, "tags": ["draft"]}],
    ),
    (
        "tag the notes in docs that mention budget as finance",
        [{"op": "tag", "match": {"glob": "docs/**", "ext": [".md"], "contains": "budget"}, "tags": ["finance"]}],
    ),
    (
        "Zip logs into old-logs.zip and delete the originals.",
        [{"op": "archive", "match": {"glob": "logs/**"}, "to": "old-logs.zip", "remove": True}],
    ),
    (
        "could you unzip downloads/site-backup.zip into restore/site",
        [
            {"op": "mkdir", "path": "restore"},
            {"op": "extract", "from": "downloads/site-backup.zip", "to": "restore/site"},
        ],
    ),
    (
        "make a folder called inbox/later and inbox/now",
        [{"op": "mkdir", "path": "inbox/later"}, {"op": "mkdir", "path": "inbox/now"}],
    ),
    (
        "create docs/shopping.md with the text 'buy milk'",
        [{"op": "write", "path": "docs/shopping.md", "content": "buy milk\n"}],
    ),
    (
        "add a line 'call bob' to docs/todo.txt thanks",
        [{"op": "append", "path": "docs/todo.txt", "content": "call bob\n"}],
    ),
    (
        "move the pdfs in downloads to archive, then delete the temp files in downloads",
        [
            {"op": "move", "match": {"glob": "downloads/**", "ext": [".pdf"]}, "to": "archive"},
            {"op": "delete", "match": {"glob": "downloads/**", "ext": [".tmp"]}},
        ],
    ),
    (
        "Archive the logs from the last month as recent.zip. Then remove them",
        [
            {
                "op": "archive",
                "match": {"glob": "**", "ext": [".log"], "modified_after": "30d"},
                "to": "recent.zip",
                "remove": True,
            }
        ],
    ),
]

NOT_FILE_REQUESTS = [
    "write a function that reverses a string",
    "what's the weather tomorrow",
    "send an email to bob about the budget",
    "fix the failing test in parser.py",
    "hello there",
    "",
    "move it",
    "delete everything",
    "remove ' copy' from the naems of the files in downloads",
    "move 'nothing like this' to docs",
    "file the markdown in docs: budget notes into docs/budget and roadmap notes into docs/roadmap",
]

HOSTILE = [
    "move \n docs \x1b[31m to \x00 x",
    "\ud800\udfff move docs/spec.pdf to \udc80 and \ud83d",
    "delete docs/spec.pdf\udcff",
    "a" * 100_000,
    "move " * 5000 + "docs to x",
    "delete " + "docs/" * 2000,
    "rename docs/spec.pdf to ../../etc/passwd",
    "move docs/spec.pdf to /etc",
    "tag docs/spec.pdf as #,bad",
    "tag docs/spec.pdf as \x7f",
    "mkdir " + "x/" * 3000,
    "mkdir .git/hooks and .routeshell",
    "create docs/a.md with the text '\ud800'",
    "zip docs into docs.zip, then " * 300,
    "sort docs by type: " + "pdfs into x, " * 500,
    "'" * 3000 + "move docs/spec.pdf to x",
    "move the pdfs in docs to x" + ". then" * 1000,
]


def _effect_tree(plan: dict[str, Any]) -> dict[str, Any]:
    effect = plan_effect(WORKSPACE, TODAY, plan)
    assert effect.valid
    assert effect.refused is None
    return effect.tree


@pytest.mark.parametrize(("request_text", "steps"), REPRESENTATIVE, ids=[text[:40] for text, _ in REPRESENTATIVE])
def test_a_common_request_has_exactly_the_effect_of_its_gold_plan(
    request_text: str, steps: list[dict[str, Any]]
) -> None:
    gold = {"version": 1, "goal": "gold", "steps": steps}
    plan = parse_request(request_text, entries_from_fixture(WORKSPACE, TODAY), TODAY)
    assert reply_problems(plan) == []
    assert _effect_tree(plan) == _effect_tree(gold)
    assert _effect_tree(gold) != plan_effect(WORKSPACE, TODAY, {"version": 1, "steps": []}).tree


@pytest.mark.parametrize("request_text", NOT_FILE_REQUESTS)
def test_what_file_operations_cannot_do_or_the_rules_cannot_read_gets_no_steps(request_text: str) -> None:
    plan = parse_request(request_text, entries_from_fixture(WORKSPACE, TODAY), TODAY)
    assert plan["steps"] == []
    assert plan["goal"].startswith("not understood")
    assert reply_problems(plan) == []


@pytest.mark.parametrize("request_text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_never_raises_and_always_gives_a_valid_reply(request_text: str) -> None:
    plan = parse_request(request_text, entries_from_fixture(WORKSPACE, TODAY), TODAY)
    assert reply_problems(plan) == []


def test_hostile_names_in_the_workspace_never_break_it() -> None:
    names = [
        "line\nbreak.txt",
        "esc\x1b[31mred.log",
        "caf\udce9.txt",
        "-rf.txt",
        "[red]markup[/red].txt",
        "日本語.txt",
        "file with spaces.pdf",
    ]
    fixture = Fixture(tuple(FileSpec(f"misc/{name}", size=10, age_days=3) for name in names))
    entries = entries_from_fixture(fixture, TODAY)
    for name in names:
        for verb in ("delete", "move", "rename"):
            plan = parse_request(f"{verb} misc/{name} to misc/x", entries, TODAY)
            assert reply_problems(plan) == []
    plan = parse_request("delete misc/caf\udce9.txt", entries, TODAY)
    assert plan["steps"] == [{"op": "delete", "path": "misc/caf\udce9.txt"}]
    plan = parse_request("delete 'misc/file with spaces.pdf'", entries, TODAY)
    assert plan["steps"] == [{"op": "delete", "path": "misc/file with spaces.pdf"}]


def test_every_plan_for_generated_cases_is_a_valid_reply() -> None:
    for case in generate_cases(300, seed=5):
        plan = parse_request(case.request, entries_from_fixture(case.fixture, case.today), case.today)
        assert reply_problems(plan) == [], (case.id, case.request, plan)
