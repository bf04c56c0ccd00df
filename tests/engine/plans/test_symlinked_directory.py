"""A step that would make something in a directory through the symlink that names it is refused, and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.model import parse_plan
from tests.helpers import tree


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "real").mkdir(parents=True)
    (root / "link_in").symlink_to("real")
    return root


@pytest.mark.parametrize(
    "step",
    [
        {"op": "write", "path": "link_in/new.txt", "content": ""},
        {"op": "mkdir", "path": "link_in/new"},
        {"op": "copy", "from": "real", "to": "link_in/copy"},
    ],
    ids=["write", "mkdir", "copy"],
)
def test_the_refusal_names_the_symlink(ws: Path, step: dict[str, Any]) -> None:
    before = tree(ws)
    with pytest.raises(StepFailed) as info:
        apply_plan(ws, parse_plan(json.dumps({"version": 1, "steps": [step]})))
    message = str(info.value)
    assert "'link_in' is a symlink: nothing is made in a directory through the symlink that names it" in message
    assert "not a directory" not in message
    assert "\n" not in message
    assert tree(ws) == before
