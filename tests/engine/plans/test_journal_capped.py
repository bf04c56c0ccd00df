"""A journal's files are read with a bound: a link to ``/dev/zero``, a FIFO or a file past the limit
where ``plan.json``, ``state`` or ``log.jsonl`` should be makes that journal damaged (or its undo
refused) in one line, never a MemoryError, a hang or a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.plans import journal as journal_module
from engine.plans.apply import apply_plan, undo_last
from engine.plans.journal import history, journals
from engine.plans.model import parse_plan
from engine.workspace.state import StateError
from tests.helpers import assert_one_line_error, endless, fifo, run_routeshell

PLANTS = [pytest.param(endless, id="dev-zero"), pytest.param(fifo, id="fifo")]


def _plan(name: str) -> dict[str, Any]:
    document = {"version": 1, "goal": f"write {name}", "steps": [{"op": "write", "path": name, "content": "x\n"}]}
    return parse_plan(json.dumps(document))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with two applied plans."""
    root = tmp_path / "ws"
    root.mkdir()
    apply_plan(root, _plan("a.txt"))
    apply_plan(root, _plan("b.txt"))
    return root


@pytest.mark.parametrize("plant", PLANTS)
def test_plan_json(ws: Path, plant: Callable[[Path], None]) -> None:
    first, second = journals(ws)
    plant(first.dir / "plan.json")
    rows = history(ws)
    assert [(row.id, row.state) for row in rows] == [(first.id, "damaged"), (second.id, "applied")]
    assert f"plan.json is damaged (not a regular file); move it aside (mv '{first.dir}'" in (rows[0].problem or "")
    assert "\n" not in (rows[0].problem or "")


@pytest.mark.parametrize("plant", PLANTS)
def test_state(ws: Path, plant: Callable[[Path], None]) -> None:
    first, second = journals(ws)
    plant(first.dir / "state")
    assert first.state is None
    rows = history(ws)
    assert [(row.id, row.state) for row in rows] == [(first.id, "damaged"), (second.id, "applied")]
    assert "its state file is damaged" in (rows[0].problem or "")


@pytest.mark.parametrize("plant", PLANTS)
def test_log_jsonl(ws: Path, plant: Callable[[Path], None]) -> None:
    _, second = journals(ws)
    plant(second.dir / "log.jsonl")
    with pytest.raises(StateError, match=r"log\.jsonl cannot be read \(not a regular file\); move it aside"):
        second.records()
    with pytest.raises(StateError, match="not a regular file"):
        undo_last(ws)
    assert (ws / "b.txt").read_text() == "x\n"


def test_files_past_the_limits_are_damaged_too(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = journals(ws)
    monkeypatch.setattr(journal_module, "MAX_PLAN_JSON_BYTES", 64)
    monkeypatch.setattr(journal_module, "MAX_STATE_BYTES", 4)
    monkeypatch.setattr(journal_module, "MAX_LOG_BYTES", 16)
    assert "plan.json is damaged (longer than 64 bytes)" in (history(ws)[0].problem or "")
    (first.dir / "plan.json").unlink()
    (second.dir / "state").write_text("applied")
    assert second.state is None
    with pytest.raises(StateError, match=r"log\.jsonl cannot be read \(longer than 16 bytes\)"):
        second.records()


def test_plan_history_and_undo_on_the_command_line(ws: Path) -> None:
    first, second = journals(ws)
    endless(first.dir / "plan.json")
    result = run_routeshell("plan", "history", "--workspace", str(ws))
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    assert "MemoryError" not in result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[first.id, "damaged"], [second.id, "applied"]]
    assert "plan.json is damaged (not a regular file)" in lines[0]

    endless(second.dir / "log.jsonl")
    result = run_routeshell("plan", "undo", "--workspace", str(ws))
    assert_one_line_error(result, 1, f"journal {second.id}: ", "log.jsonl cannot be read (not a regular file)")
    assert "MemoryError" not in result.stderr
    assert (ws / "b.txt").read_text() == "x\n"
