"""File names are bytes: a non-UTF-8 name travels as surrogateescape text through plan, journal and undo.

Text that is written (content, find, replace, goal) must be real text: a lone surrogate is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import apply_plan, undo_last
from engine.plans.dry_run import preview_plan
from engine.plans.journal import journals
from engine.plans.model import InvalidPlan, parse_plan
from engine.workspace.sandbox import SandboxError, check_relpath
from tests.helpers import tree

LATIN1 = os.fsdecode(b"caf\xe9.txt")  # "caf\udce9.txt": not UTF-8, so not text


def plan_text(*steps: dict[str, Any], goal: str = "") -> str:
    # json.dumps writes a lone surrogate as its \u escape, as a plan file on disk would hold it.
    return json.dumps({"version": 1, "goal": goal, "steps": list(steps)})


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as file:
        file.write(b"bytes named in latin-1\n")
    (root / "dir").mkdir()
    return root


@pytest.mark.parametrize(
    "steps",
    [
        [{"op": "move", "from": LATIN1, "to": "dir/" + LATIN1}],
        [{"op": "delete", "path": LATIN1}],
        [{"op": "copy", "from": LATIN1, "to": "copy-" + LATIN1}, {"op": "append", "path": LATIN1, "content": "more"}],
        [{"op": "write", "path": "new-" + LATIN1, "content": "new"}, {"op": "mkdir", "path": "d\udcff/e"}],
    ],
)
def test_a_plan_naming_a_non_utf8_file_applies_and_undoes(ws: Path, steps: list[dict[str, Any]]) -> None:
    before = tree(ws)
    document = parse_plan(plan_text(*steps))
    assert [p.problem for p in preview_plan(ws, document)] == [None] * len(steps)
    result = apply_plan(ws, document)
    assert tree(ws) != before
    [journal] = journals(ws)
    assert journal.meta["plan"]["steps"][0] == document["steps"][0]
    assert journal.records()[0]["op"] == steps[0]["op"]
    assert undo_last(ws).id == result.journal_id
    assert tree(ws) == before


def test_escaped_bytes_that_spell_utf8_name_the_same_file() -> None:
    assert check_relpath(os.fsdecode("café".encode())) == check_relpath("caf\udcc3\udca9") == "café"


@pytest.mark.parametrize("path", ["a\ud800b", "\udc41", "x/\udfff"])
def test_other_lone_surrogates_in_paths_are_refused(path: str) -> None:
    with pytest.raises(SandboxError, match="lone surrogate"):
        check_relpath(path)
    with pytest.raises(InvalidPlan, match="lone surrogate"):
        parse_plan(plan_text({"op": "delete", "path": path}))


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ({"op": "write", "path": "a.txt", "content": "half an emoji \ud83d"}, "/steps/0/content"),
        ({"op": "append", "path": "a.txt", "content": "caf\udce9"}, "/steps/0/content"),
        ({"op": "patch", "path": "a.txt", "find": "\udce9", "replace": "e"}, "/steps/0/find"),
        ({"op": "patch", "path": "a.txt", "find": "e", "replace": "\udce9"}, "/steps/0/replace"),
        ({"op": "run", "argv": ["echo", "\ud800"]}, "/steps/0/argv"),
    ],
)
def test_a_lone_surrogate_in_text_is_refused_at_validation(step: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidPlan) as info:
        parse_plan(plan_text(step))
    assert f"invalid plan at {where}: " in str(info.value)
    assert "lone surrogate" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_lone_surrogate_in_the_goal_is_refused_at_validation() -> None:
    with pytest.raises(InvalidPlan, match="/goal: holds a lone surrogate"):
        parse_plan(plan_text({"op": "mkdir", "path": "d"}, goal="caf\udce9"))
