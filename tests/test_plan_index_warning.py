"""A plan that selects files by meaning says, once, why the file index was not used as it is.

``files find --semantic`` warns when the index in ``.routeshell/`` cannot be used (here a symlink:
never followed, the index is kept in memory); a plan step with a semantic match reads the same
index, and says the same line wherever a plan is expanded: ``plan apply`` and its dry run, the
engine's apply and dry run, the rename and classify dialogs' preview, and ``routeshell run``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.events import event_problem
from engine.plans.apply import apply_plan
from engine.plans.dry_run import preview_plan
from engine.plans.model import normalise
from engine.plans.policy import Policy
from tests.helpers import run_routeshell
from tests.run_cli.support import events, journals, of_type, run
from tests.scripted_llm import Reply, ScriptedLLM
from tui.cli import main
from tui.screens.plan_preview import expand_preview

#: The workspace's name: the warning names the index by its path, shown escaped.
NAME = "ws\x1b[31m"
SHOWN = "ws\\x1b[31m"
TAX = {"op": "move", "match": {"semantic": "income tax return", "top_k": 1}, "to": "taxes"}
GROCERIES = {"op": "delete", "match": {"semantic": "shopping list", "top_k": 1}}
PLAN = {"version": 1, "goal": "file the tax return", "steps": [TAX]}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """Three notes, and an index that is a symlink to a file outside the workspace (not there)."""
    root = tmp_path / NAME
    root.mkdir()
    (root / "tax-return-2024.txt").write_text("income tax return for 2024\n")
    (root / "holiday.txt").write_text("photos from the beach\n")
    (root / "groceries.txt").write_text("milk, eggs, bread\n")
    (root / ".routeshell").mkdir()
    (root / ".routeshell" / "index.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
    return root


def plan_file(tmp_path: Path, document: dict[str, Any] = PLAN) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    return str(path)


def assert_untouched_index(ws: Path) -> None:
    """The symlink is still there, and nothing was written through it."""
    assert (ws / ".routeshell" / "index.sqlite").is_symlink()
    assert not (ws.parent / "elsewhere.sqlite").exists()


def assert_index_warning(message: str) -> None:
    assert "index.sqlite is not a regular file (a symlink)" in message
    assert message.endswith("the file index is kept in memory this time")


def test_plan_apply_says_it_once_on_stderr_and_applies(ws: Path, tmp_path: Path) -> None:
    result = run_routeshell("plan", "apply", plan_file(tmp_path), "--workspace", str(ws), "--yes")
    assert result.returncode == 0, result
    [line] = result.stderr.splitlines()
    assert line.startswith(f"routeshell: warning: {tmp_path}/{SHOWN}/.routeshell/index.sqlite ")
    assert_index_warning(line)
    assert line.isprintable()
    assert "applied 2 step(s)" in result.stdout
    assert (ws / "taxes" / "tax-return-2024.txt").is_file()
    assert_untouched_index(ws)


@pytest.mark.parametrize("as_json", [True, False])
def test_the_dry_run_says_it_once_and_changes_nothing(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    two = {**PLAN, "steps": [TAX, GROCERIES]}  # two selections read one unusable index: one line
    command = ["plan", "apply", plan_file(tmp_path, two), "--workspace", str(ws), "--dry-run"]
    assert main(command + (["--json"] if as_json else [])) == 0
    out, err = capsys.readouterr()
    if as_json:
        found = [json.loads(line) for line in out.splitlines()]
        assert [event_problem(event) for event in found] == [None] * len(found)
        assert [event["type"] for event in found] == ["warning", "preview", "preview", "preview"]
        assert_index_warning(found[0]["message"])
        assert found[0]["message"].startswith(f"{ws}/.routeshell/")  # the event carries the name as it is
        assert err == ""
    else:
        [line] = err.splitlines()
        assert line.startswith("routeshell: warning: ")
        assert SHOWN in line
        assert_index_warning(line)
        assert "nothing was changed" in out
    assert not (ws / "taxes").exists()
    assert (ws / "groceries.txt").is_file()
    assert_untouched_index(ws)


def test_the_engine_s_apply_dry_run_and_dialog_preview_pass_it_on(ws: Path) -> None:
    plan = normalise({**PLAN, "steps": [TAX, GROCERIES]})
    warned: list[str] = []
    previews = preview_plan(ws, plan, warn=warned.append)
    assert [p.problem for p in previews] == [None, None, None]
    [warning] = warned
    assert_index_warning(warning)
    # The rename and classify dialogs expand what their fields write, as the apply will.
    preview = expand_preview(ws, Policy(), plan, lambda problem: problem.reason)
    assert preview.problems == []
    assert preview.warnings == [warning]
    # Given a plan still to expand, the apply says it as a warning event, and applies.
    sent: list[dict[str, Any]] = []
    result = apply_plan(ws, plan, on_event=sent.append)
    assert result.steps == 3
    assert [event for event in sent if event["type"] == "warning"] == [{"type": "warning", "message": warning}]
    assert [event_problem(event) for event in sent] == [None] * len(sent)
    assert (ws / "taxes" / "tax-return-2024.txt").is_file()
    assert not (ws / "groceries.txt").exists()
    assert_untouched_index(ws)


def test_a_run_whose_plan_selects_by_meaning_shows_the_warning(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(PLAN))
    # The builder's plan is expanded to check it and again to keep it: the warning is one event.
    result = run(scripted_llm, ws, "--json", "--topology", "single", "--approve", "all", "file the tax return")
    assert result.returncode == 0, result
    found = events(result.stdout)
    assert [event_problem(event) for event in found] == [None] * len(found)
    [warning] = of_type(found, "warning")
    assert_index_warning(warning["message"])
    kinds = [event["type"] for event in found]
    assert kinds.index("warning") < kinds.index("plan") < kinds.index("applied")
    assert found[-1]["ok"] is True
    assert len(journals(ws)) == 1
    assert (ws / "taxes" / "tax-return-2024.txt").is_file()
    assert_untouched_index(ws)
