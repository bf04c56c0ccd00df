"""How generated requests name folders and files: the way people do, and never ambiguously."""

from __future__ import annotations

import datetime as dt
import random

from engine.planner.cases import generate_cases
from engine.planner.described import file_mention, folder_mention, mentioned
from engine.planner.fixtures import FileSpec
from engine.planner.requests import Scene

TODAY = dt.date(2026, 5, 12)


def scene(paths: list[str], seed: int) -> Scene:
    return Scene(random.Random(seed), TODAY, [FileSpec(path, size=10, age_days=3.0) for path in paths])


def test_a_name_that_two_files_share_is_never_used_alone() -> None:
    paths = ["docs/budget-summary.md", "docs/budget-plan.md", "work/notes.md", "home/notes.md", "a/rental contract.pdf"]
    said = {file_mention(scene(paths, seed), "docs/budget-summary.md") for seed in range(300)}
    # "budget" fits both Markdown files: the description needs its second word.
    assert not any(s.startswith("the budget ") and not s.startswith("the budget summary ") for s in said), said
    assert any(s.startswith("the budget summary ") for s in said), said
    assert "budget-summary.md" in said
    assert "docs/budget-summary.md" in said
    shared = {file_mention(scene(paths, seed), "work/notes.md") for seed in range(300)}
    assert "notes.md" not in shared, shared
    assert "work/notes.md" in shared, shared
    spaced = {file_mention(scene(paths, seed), "a/rental contract.pdf") for seed in range(300)}
    assert any(s.startswith("the rental ") for s in spaced), spaced


def test_a_descriptions_words_are_in_that_files_name_only() -> None:
    paths = ["exports/crm-export-2026.tar.gz", "exports/crm-notes.md", "backups/site-backup.zip"]
    said = {file_mention(scene(paths, seed), "exports/crm-export-2026.tar.gz") for seed in range(300)}
    described = {s for s in said if s.startswith("the ")}
    assert described
    assert all(s.startswith("the crm ") for s in described), described
    # The .md file is another kind: "the crm archive" still names one file.
    assert any(s in ("the crm archive", "the crm backup", "the crm tarball") for s in described), described


def test_a_folders_last_part_is_used_alone_only_when_no_other_folder_ends_so() -> None:
    paths = ["trips/kyoto/a.jpg", "trips/porto/b.jpg", "old/porto/c.jpg", "Downloads/d.pdf"]
    kyoto = {folder_mention(scene(paths, seed), "trips/kyoto") for seed in range(300)}
    assert "kyoto" in kyoto
    assert "the kyoto folder" in kyoto
    porto = {folder_mention(scene(paths, seed), "trips/porto") for seed in range(300)}
    assert not porto & {"porto", "the porto folder", "porto/"}, porto
    downloads = {folder_mention(scene(paths, seed), "Downloads") for seed in range(300)}
    assert "downloads" in downloads
    assert "Downloads/" in downloads


def test_only_what_exists_is_reworded() -> None:
    paths = ["docs/plan-a.md", "docs/plan-b.md"]
    for seed in range(50):
        out = mentioned(scene(paths, seed), {"src": "nowhere", "path": "docs/new.md", "dst": "keep/2026"})
        assert out == {"src": "nowhere", "path": "docs/new.md", "dst": "keep/2026"}


def test_generated_requests_name_folders_in_more_ways_than_their_paths() -> None:
    requests = [case.request for case in generate_cases(300, seed=4)]
    assert sum(" folder" in r for r in requests) > 5
    assert sum("->" in r for r in requests) > 3
    assert any("'s " in r and ("week" in r or "month" in r) for r in requests)
