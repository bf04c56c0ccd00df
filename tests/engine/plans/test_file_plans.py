"""The Files pane's bulk rename as a plan: the edited list of names is split on newlines alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plans.apply import apply_plan
from engine.plans.file_plans import bulk_rename
from engine.workspace.sandbox import STATE_DIR, SandboxError
from tests.helpers import tree

#: Characters ``str.splitlines`` takes for line ends that may be part of a file name.
NOT_LINE_ENDS = ["\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def names_in(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if path.name != STATE_DIR)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    (root / "b.txt").write_text("b\n")
    return root


@pytest.mark.parametrize("char", NOT_LINE_ENDS, ids=[f"U+{ord(c):04X}" for c in NOT_LINE_ENDS])
def test_names_holding_what_splitlines_splits_on_are_renamed(ws: Path, char: str) -> None:
    odd = f"odd{char}name.txt"
    (ws / odd).write_text("odd\n")
    names = ["a.txt", "b.txt", odd]
    plan = bulk_rename(".", names, f"a.txt\nb{char}2.txt\nodd{char}renamed.txt\n")
    assert plan is not None
    apply_plan(ws, plan)
    assert names_in(ws) == sorted(["a.txt", f"b{char}2.txt", f"odd{char}renamed.txt"])
    assert (ws / f"odd{char}renamed.txt").read_text() == "odd\n"


def test_crlf_line_ends_from_the_editor_are_not_part_of_the_names(ws: Path) -> None:
    plan = bulk_rename(".", ["a.txt", "b.txt"], "c.txt\r\nd.txt\r\n")
    assert plan is not None
    apply_plan(ws, plan)
    assert names_in(ws) == ["c.txt", "d.txt"]


def test_the_last_line_needs_no_newline(ws: Path) -> None:
    plan = bulk_rename(".", ["a.txt", "b.txt"], "b.txt\na.txt")
    assert plan is not None
    apply_plan(ws, plan)
    assert (ws / "a.txt").read_text() == "b\n"
    assert (ws / "b.txt").read_text() == "a\n"


@pytest.mark.parametrize("edited", ["c\r.txt\nd.txt\n", "c.txt\r\nd.txt\n"], ids=["inside", "mixed-ends"])
def test_a_carriage_return_that_is_not_a_crlf_ending_is_refused(ws: Path, edited: str) -> None:
    before = tree(ws)
    with pytest.raises(SandboxError, match="carriage return; nothing renamed"):
        bulk_rename(".", ["a.txt", "b.txt"], edited)
    assert tree(ws) == before


@pytest.mark.parametrize("edited", ["", "a.txt\n", "a.txt\nb.txt\n\n"], ids=["empty", "short", "blank-line"])
def test_a_wrong_line_count_is_refused(ws: Path, edited: str) -> None:
    with pytest.raises(SandboxError, match="expected 2 names, one per line"):
        bulk_rename(".", ["a.txt", "b.txt"], edited)
