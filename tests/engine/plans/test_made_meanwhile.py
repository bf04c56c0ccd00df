"""A path a plan makes that someone else makes first, after the plan was checked, stays theirs.

The plan's step then fails and the plan is rolled back, and what is at that path is neither
replaced, removed nor moved to the trash: the plan never put anything there.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.model import parse_plan
from engine.plans.trash import list_trash
from tests.helpers import tree


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "m.py").write_text("x = 1\n")
    (root / "notes.txt").write_text("notes\n")
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        archive.writestr("inner/a.txt", "a\n")
    return root


def meanwhile(make: Callable[[], None]) -> Callable[[], bool]:
    """A ``cancel`` check that, polled after the step was checked and journaled and before it is
    carried out, makes something at the step's path instead of cancelling."""

    def poll() -> bool:
        make()
        return False

    return poll


CASES = {
    "write": ({"op": "write", "path": "new.txt", "content": "the plan's"}, "new.txt"),
    "copy": ({"op": "copy", "from": "notes.txt", "to": "new.txt"}, "new.txt"),
    "archive": ({"op": "archive", "paths": ["notes.txt"], "to": "new.zip"}, "new.zip"),
    "extract": ({"op": "extract", "from": "bundle.zip", "to": "unpacked"}, "unpacked"),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_a_path_made_meanwhile_is_neither_replaced_nor_taken_away(ws: Path, op: str) -> None:
    step, path = CASES[op]
    target = ws / path

    def make() -> None:
        if op == "extract":
            target.mkdir()
            (target / "mine.txt").write_text("someone's\n")
        else:
            target.write_text("someone's\n")

    with pytest.raises(StepFailed, match="File exists; nothing was changed"):
        apply_plan(ws, plan(step), cancel=meanwhile(make))
    mine = target / "mine.txt" if op == "extract" else target
    assert mine.read_text() == "someone's\n"
    assert list_trash(ws) == []
    assert not [p for p in ws.iterdir() if p.name not in {"src", "notes.txt", "bundle.zip", path, ".routeshell"}]


def test_a_write_that_replaces_a_file_still_replaces_it(ws: Path) -> None:
    before = tree(ws)
    replacing = plan({"op": "write", "path": "notes.txt", "content": "new\n", "overwrite": True})
    apply_plan(ws, replacing, cancel=lambda: False)
    assert (ws / "notes.txt").read_text() == "new\n"
    assert set(tree(ws)) == set(before)
