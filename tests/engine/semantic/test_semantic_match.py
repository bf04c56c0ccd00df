"""A ``semantic`` match: ranked after every other filter, checked like any match, and applied as a plan."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest

from engine.files.match import MatchError, parse_match, select
from engine.plans.apply import PreviewChanged, apply_plan
from engine.plans.dry_run import preview_and_seen, preview_plan
from engine.plans.expand import expand_plan
from engine.plans.model import parse_plan, plan_problems
from engine.plans.undo import undo_journal
from engine.semantic.index import BATCH, TextEmbedder
from engine.workspace.sandbox import Workspace
from tests.helpers import tree
from tests.test_import_hygiene import HEAVY, loaded_after


def ranked(root: Path, spec: dict[str, Any]) -> list[str]:
    with Workspace(root) as ws:
        selection = select(ws, spec)
    assert selection.warnings == []
    assert [found.path for found in selection.found] == sorted(path for path, _ in selection.ranked)
    scores = [score for _, score in selection.ranked]
    assert scores == sorted(scores, reverse=True)
    return [path for path, _ in selection.ranked]


def test_the_relevant_file_comes_first(library: Path, embedder: TextEmbedder) -> None:
    best = ranked(library, {"semantic": "tax documents", "top_k": 3})
    assert len(best) == 3
    assert best[0] == "finance/tax-return-2024.pdf"
    assert ranked(library, {"semantic": "holiday pictures at the sea", "top_k": 1}) == ["photos/beach.jpg"]
    assert ranked(library, {"semantic": "how to cook breakfast", "top_k": 1}) == ["recipes/pancakes.md"]
    # The default keeps 20: here, every file, the tax return still first.
    assert ranked(library, {"semantic": "tax documents"})[0] == "finance/tax-return-2024.pdf"


def test_every_other_filter_selects_before_the_ranking(library: Path, embedder: TextEmbedder) -> None:
    assert ranked(library, {"semantic": "tax documents", "glob": "photos/**"}) == ["photos/beach.jpg"]
    code_and_text = ranked(library, {"semantic": "tax documents", "ext": [".md", ".py"], "top_k": 5})
    assert sorted(code_and_text) == ["recipes/pancakes.md", "src/server.py"]
    only_text = ranked(library, {"semantic": "tax documents", "exclude": ["finance/**"], "top_k": 4})
    assert "finance/tax-return-2024.pdf" not in only_text
    assert len(only_text) == 4
    # limit and top_k both bound what is kept: the best one.
    assert ranked(library, {"semantic": "tax documents", "top_k": 3, "limit": 1}) == ["finance/tax-return-2024.pdf"]


def test_hostile_names_rank_without_errors(tmp_path: Path, embedder: TextEmbedder) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    for name in (b"new\nline tax return.txt", b"esc\x1b[31mred.txt", b"caf\xe9 tax invoice.txt", b"[red]x[bold].md"):
        with open(os.path.join(os.fsencode(root), name), "wb") as handle:
            handle.write(b"figures \x1b]0;title\x07\n")
    found = ranked(root, {"semantic": "[bold]tax\x1b[0m", "top_k": 4})
    assert sorted(map(os.fsencode, found)) == sorted(
        [b"new\nline tax return.txt", b"esc\x1b[31mred.txt", b"caf\xe9 tax invoice.txt", b"[red]x[bold].md"]
    )


def plan_of(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "goal": "file the tax return", "steps": list(steps)}))


def test_a_semantic_match_becomes_concrete_steps_that_apply_and_undo(library: Path, embedder: TextEmbedder) -> None:
    plan = plan_of({"op": "move", "match": {"semantic": "tax documents", "top_k": 1}, "to": "taxes"})
    expanded = expand_plan(library, plan)
    assert [(step["op"], step.get("path"), step.get("from"), step.get("to")) for step in expanded["steps"]] == [
        ("mkdir", "taxes", None, None),
        ("move", None, "finance/tax-return-2024.pdf", "taxes/tax-return-2024.pdf"),
    ]
    assert "finance/tax-return-2024.pdf" in json.dumps([str(step) for step in preview_plan(library, plan)])
    before = tree(library)
    result = apply_plan(library, expanded)
    assert (library / "taxes" / "tax-return-2024.pdf").is_file()
    assert not (library / "finance" / "tax-return-2024.pdf").exists()
    undo_journal(library, result.journal_id)
    assert tree(library) == before


def test_a_semantic_delete_lists_every_file_it_selects(library: Path, embedder: TextEmbedder) -> None:
    plan = plan_of({"op": "delete", "match": {"semantic": "food and cooking", "glob": "**/*.md", "top_k": 2}})
    assert expand_plan(library, plan)["steps"] == [{"op": "delete", "path": "recipes/pancakes.md"}]


def test_a_later_semantic_step_ranks_what_the_earlier_steps_leave(library: Path, embedder: TextEmbedder) -> None:
    # The tax return ranks first, but the first step deletes it: the second keeps the best of the rest.
    best = ranked(library, {"semantic": "tax documents", "top_k": 2})
    assert best[0] == "finance/tax-return-2024.pdf"
    plan = plan_of(
        {"op": "delete", "paths": ["finance/tax-return-2024.pdf"]},
        {"op": "move", "match": {"semantic": "tax documents", "top_k": 1}, "to": "taxes"},
    )
    steps = expand_plan(library, plan)["steps"]
    assert steps[-1] == {"op": "move", "from": best[1], "to": f"taxes/{best[1].rpartition('/')[2]}"}


@pytest.mark.parametrize(
    ("match", "pointer", "reason"),
    [
        ({"glob": "**", "top_k": 3}, "/steps/0/match/top_k", 'add "semantic"'),
        ({"top_k": 3}, "/steps/0/match/top_k", 'add "semantic"'),
        ({}, "/steps/0/match/glob", "or a semantic description"),
        ({"semantic": "tax", "top_k": 0}, "/steps/0/match/top_k", "at least 1"),
        ({"semantic": "tax", "top_k": 1001}, "/steps/0/match/top_k", "at most 1000"),
        ({"semantic": ""}, "/steps/0/match/semantic", "at least 1 characters"),
        ({"semantic": "x" * 501}, "/steps/0/match/semantic", "at most 500 characters"),
        ({"semantic": "tax", "type": "dir"}, "/steps/0/match/type", "regular files only"),
    ],
)
def test_bad_semantic_matches_are_plan_problems(match: dict[str, Any], pointer: str, reason: str) -> None:
    problems = plan_problems({"version": 1, "steps": [{"op": "delete", "match": match}]})
    assert [problem.pointer for problem in problems] == [pointer]
    assert reason in problems[0].reason


def test_a_semantic_match_needs_no_glob_and_keeps_20_by_default() -> None:
    assert plan_problems({"version": 1, "steps": [{"op": "delete", "match": {"semantic": "old logs"}}]}) == []
    match = parse_match({"semantic": "old logs"})
    assert (match.glob, match.top_k, match.type) == ("**", 20, "file")
    assert parse_match({"glob": "*.log"}).top_k is None
    with pytest.raises(MatchError, match="semantic"):
        parse_match({"semantic": "   "})


def test_matching_and_the_index_load_no_model_library() -> None:
    code = "import engine.files.match, engine.plans.expand, engine.semantic.index, engine.semantic.search"
    assert not loaded_after(code) & set(HEAVY)


def test_a_file_edited_while_the_preview_ranks_it_stops_the_apply(tmp_path: Path, embedder: TextEmbedder) -> None:
    root = tmp_path / "ws"
    (root / "notes").mkdir(parents=True)
    count = 2 * BATCH + 1  # embedded in three batches, each written to the index as it is done
    for n in range(count):
        (root / "notes" / f"{n:03}.txt").write_text(f"Note {n}: book the train to Lyon.\n")
    # Every note is kept, however it ranks: the selection made again by the apply is the one shown.
    plan = plan_of({"op": "delete", "match": {"glob": "notes/*.txt", "semantic": "train journeys", "top_k": count}})
    edited = root / "notes" / "000.txt"
    done = threading.Event()
    ranking: list[bool] = []  # whether the ranking was still going on when the note was edited

    def edit_while_ranking() -> None:
        index = root / ".routeshell" / "index.sqlite"
        while not done.is_set():
            with suppress(sqlite3.Error), closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as conn:
                rows = conn.execute("SELECT count(*) FROM files").fetchone()[0]
                if rows >= BATCH:  # the notes were walked, and some embedded: the ranking is under way
                    edited.write_text("Keep: the signed lease.\n")
                    ranking.append(conn.execute("SELECT count(*) FROM files").fetchone()[0] < count)
                    return

    watcher = threading.Thread(target=edit_while_ranking)
    watcher.start()
    try:
        _, seen = preview_and_seen(root, plan)
    finally:
        done.set()
        watcher.join()
    if ranking != [True]:
        pytest.skip("the ranking ended before the note could be edited")
    with pytest.raises(PreviewChanged, match=re.escape("'notes/000.txt' was changed since the preview")):
        apply_plan(root, plan, seen=seen)
    assert edited.read_text() == "Keep: the signed lease.\n"
