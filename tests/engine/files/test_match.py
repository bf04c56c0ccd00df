"""Selecting files by a match object: every filter, and what a walk never does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.files.match import MatchError, glob_base, parse_match, parse_size, parse_when, select
from engine.workspace.sandbox import Workspace


def paths(root: Path, spec: dict[str, object]) -> list[str]:
    with Workspace(root) as ws:
        return [found.path for found in select(ws, spec).found]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "logs" / "old").mkdir(parents=True)
    (root / "archive").mkdir()
    (root / "docs").mkdir()
    (root / "logs" / "a.log").write_text("all fine\n")
    (root / "logs" / "old" / "b.log").write_text("ERROR: disk\n")
    (root / "logs" / "c.TXT").write_text("x" * 3000)
    (root / "archive" / "z.log").write_text("ERROR old\n")
    (root / "report-1.pdf").write_bytes(b"%PDF" + bytes(2048))
    (root / "report-x.pdf").write_bytes(b"%PDF")
    (root / "docs" / "notes.md").write_text("---\ntags: [draft, api]\n---\n# Notes\n")
    (root / "top.log").write_text("top\n")
    old = time.time() - 40 * 86400
    os.utime(root / "logs" / "a.log", (old, old))
    return root


def test_glob_at_the_top_and_at_any_depth(root: Path) -> None:
    assert paths(root, {"glob": "*.log"}) == ["top.log"]
    assert paths(root, {"glob": "**/*.log"}) == ["archive/z.log", "logs/a.log", "logs/old/b.log", "top.log"]
    assert paths(root, {"glob": "logs/**"}) == ["logs/a.log", "logs/c.TXT", "logs/old/b.log"]


def test_every_filter_must_hold(root: Path) -> None:
    assert paths(root, {"glob": "**/*.log", "exclude": ["archive/**"]}) == ["logs/a.log", "logs/old/b.log", "top.log"]
    assert paths(root, {"glob": "**", "ext": [".txt"]}) == ["logs/c.TXT"]  # extensions ignore case
    assert paths(root, {"glob": "*", "name_regex": r"^report-\d+"}) == ["report-1.pdf"]
    assert paths(root, {"glob": "**/*.log", "contains": "error"}) == ["archive/z.log", "logs/old/b.log"]
    assert paths(root, {"glob": "**", "larger_than": "2KB"}) == ["logs/c.TXT", "report-1.pdf"]
    assert paths(root, {"glob": "**", "larger_than": "2KB", "smaller_than": 3000}) == ["report-1.pdf"]
    assert paths(root, {"glob": "**/*.log", "modified_before": "30d"}) == ["logs/a.log"]
    assert "logs/a.log" not in paths(root, {"glob": "**/*.log", "modified_after": "30d"})
    assert paths(root, {"glob": "**", "tag": "api"}) == ["docs/notes.md"]
    assert paths(root, {"glob": "**/*.log", "limit": 2}) == ["archive/z.log", "logs/a.log"]


def test_type_selects_files_directories_or_both(root: Path) -> None:
    assert paths(root, {"glob": "logs*", "type": "dir"}) == ["logs"]
    # A directory selected with what is in it: the directory carries its contents.
    assert paths(root, {"glob": "logs/**", "type": "any"}) == ["logs/a.log", "logs/c.TXT", "logs/old"]


def test_a_walk_never_follows_links_nor_enters_git_or_state(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.log").write_text("ERROR secret\n")
    (root / "out").symlink_to(outside)
    (root / "loop").symlink_to(".")
    for git in (".git", "sub/.GIT"):
        (root / git).mkdir(parents=True)
        (root / git / "x.log").write_text("ERROR\n")
    (root / ".routeshell").mkdir()
    (root / ".routeshell" / "y.log").write_text("ERROR\n")
    os.mkfifo(root / "pipe.log")
    found = paths(root, {"glob": "**/*.log", "contains": "ERROR", "type": "any"})
    assert found == ["archive/z.log", "logs/old/b.log"]
    # The links themselves are entries (they can be moved), never ways in.
    assert paths(root, {"glob": "*", "type": "any", "name_regex": "^(out|loop)$"}) == ["loop", "out"]


THROUGH = (
    "glob: '{}' is a symlink: a match never goes through one (a link is an entry, never a way in); glob the"
    " directory it leads to"
)


@pytest.mark.parametrize(
    ("glob", "link"),
    [
        ("dlink/old/*.log", "dlink"),
        ("dlink/*.log", "dlink"),
        ("dlink/**", "dlink"),
        ("logs/again/*", "logs/again"),
        ("flink/*", "flink"),
        (os.fsdecode(b"\x1bbad\xff") + "/*", "\\x1bbad\\xff"),
    ],
    ids=["below", "whole", "every-depth", "deeper", "to-a-file", "hostile-name"],
)
def test_a_glob_whose_fixed_start_goes_through_a_symlink_is_refused_naming_it(
    root: Path, resolution: str, glob: str, link: str
) -> None:
    (root / "dlink").symlink_to("logs")
    (root / "logs" / "again").symlink_to("old")
    (root / "flink").symlink_to("top.log")
    os.symlink("logs", os.path.join(os.fsencode(root), b"\x1bbad\xff"))
    with Workspace(root) as ws, pytest.raises(MatchError) as caught:
        select(ws, {"glob": glob, "type": "any"})
    assert caught.value.key == "glob"
    assert str(caught.value) == THROUGH.format(link)


def test_a_glob_through_a_symlink_leading_outside_says_so(root: Path, resolution: str, tmp_path: Path) -> None:
    (tmp_path / "outside" / "deep").mkdir(parents=True)
    (tmp_path / "outside" / "deep" / "secret.log").write_text("secret\n")
    (root / "out").symlink_to(tmp_path / "outside")
    (root / "up").symlink_to("../outside")
    for link in ("out", "up"):
        with Workspace(root) as ws, pytest.raises(MatchError) as caught:
            select(ws, {"glob": f"{link}/deep/*.log"})
        assert str(caught.value) == (
            f"glob: '{link}' is a symlink leading outside the workspace: a match never goes through one, nor outside"
            " the workspace"
        )


def test_a_glob_with_no_fixed_start_passes_symlinks_as_entries(root: Path, resolution: str) -> None:
    (root / "dlink").symlink_to("logs")
    assert paths(root, {"glob": "**/*.log"}) == ["archive/z.log", "logs/a.log", "logs/old/b.log", "top.log"]
    assert paths(root, {"glob": "*", "type": "any", "name_regex": "link"}) == ["dlink"]
    assert paths(root, {"glob": "logs/old/*.log"}) == ["logs/old/b.log"]
    assert paths(root, {"glob": "missing/*.log"}) == []


def test_hostile_names_are_selected_as_they_are(root: Path) -> None:
    names = ["new\nline.log", "\x1b[31mred.log", "[red]x[red].log", os.fsdecode(b"bad\xff.log")]
    for name in names:
        (root / name).write_text("n\n")
    assert sorted(paths(root, {"glob": "*.log"})) == sorted([*names, "top.log"])


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"glob": "/etc/*"}, "glob"),
        ({"glob": "../*"}, "glob"),
        ({"glob": "*", "larger_than": "ten"}, "larger_than"),
        ({"glob": "*", "modified_after": "yesterday-ish"}, "modified_after"),
        ({"glob": "*", "name_regex": "("}, "name_regex"),
        ({"glob": "*", "type": "pipe"}, "type"),
        ({"glob": "*", "limit": 0}, "limit"),
    ],
)
def test_a_bad_match_names_its_key(spec: dict[str, object], key: str) -> None:
    with pytest.raises(MatchError) as caught:
        parse_match(spec)
    assert caught.value.key == key
    assert "\n" not in str(caught.value)


def test_sizes_dates_and_bases() -> None:
    assert parse_size("1MB") == 1 << 20
    assert parse_size("1.5 KiB") == 1536
    assert parse_size(10) == 10
    now = 1_000_000_000.0
    assert parse_when("30d", now=now) == now - 30 * 86400
    assert parse_when("2025-01-01T00:00:00Z") == 1735689600.0
    assert glob_base("logs/2025/**/*.log") == "logs/2025"
    assert glob_base("**/*.log") == "."
    assert glob_base("a*/b.txt") == "."


@pytest.mark.parametrize(
    "spec",
    [
        {"glob": "**", "name_regex": "((a|a)+)+$"},
        {"glob": "**", "contains": "x", "name_regex": "(a|aa)+$"},
    ],
)
def test_a_backtracking_regex_gives_up_in_one_line(tmp_path: Path, spec: dict[str, object]) -> None:
    from engine.workspace.globs import PatternTooSlow

    root = tmp_path / "ws"
    root.mkdir()
    (root / ("a" * 200 + "!")).write_text("x")
    with pytest.raises(PatternTooSlow) as caught:
        paths(root, spec)
    assert "took over" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_globs_with_many_double_stars_match_without_backtracking(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / ("a" * 250)).write_text("x")
    assert paths(root, {"glob": "**a**a**a**a**a**a**a**b"}) == []
    assert paths(root, {"glob": "**a**a**a**a**a**a**a**a"}) == ["a" * 250]


def test_a_leading_dot_slash_is_the_workspace_itself(root: Path) -> None:
    assert paths(root, {"glob": "./*.log"}) == paths(root, {"glob": "*.log"}) == ["top.log"]
    spec = {"glob": "./**/*.log", "exclude": ["./archive/**"]}
    assert paths(root, spec) == ["logs/a.log", "logs/old/b.log", "top.log"]
