"""A file name in an error line is shown as the rest of the product shows names, escaped once: ``\\xff``
for a byte that is not UTF-8 (never Python's ``\\udcff``), ``\\x1b`` for an escape sequence, in
quotes. Real files with such names, the real commands, the exact line a user reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import assert_one_line_error, run_routeshell
from tests.scripted_llm import Reply, ScriptedLLM

#: Each name on disk (bytes), as a plan spells it (os.fsdecode), and as every message shows it.
NAMES = [
    (b"bad\xff.txt", "bad\udcff.txt", "bad\\xff.txt"),
    (b"esc\x1b[31m.txt", "esc\x1b[31m.txt", "esc\\x1b[31m.txt"),
]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    for raw, _, _ in NAMES:
        with open(os.path.join(os.fsencode(root), raw), "wb") as made:
            made.write(b"mine\n")
    return root


def write_plan(tmp_path: Path, *steps: dict[str, Any]) -> str:
    path = tmp_path / f"plan-{len(list(tmp_path.glob('plan-*')))}.json"
    path.write_text(json.dumps({"version": 1, "goal": "names", "steps": list(steps)}), encoding="utf-8")
    return str(path)


def test_a_refused_write_names_the_file_as_it_is_shown(ws: Path, tmp_path: Path) -> None:
    for _, name, shown in NAMES:
        plan = write_plan(tmp_path, {"op": "write", "path": name, "content": "x"})
        refused = f"'{shown}' already exists (set \"overwrite\": true to replace it)"
        result = run_routeshell("plan", "apply", plan, "--yes", "--workspace", str(ws))
        assert_one_line_error(result, 1, f"step 1 (write) would fail: {refused}; nothing was changed")
        assert f"    would fail: {refused}\n" in result.stdout
        assert "\\udc" not in result.stdout + result.stderr
        assert "\x1b" not in result.stdout + result.stderr
        as_json = run_routeshell("plan", "apply", plan, "--yes", "--json", "--workspace", str(ws))
        [*_, error] = [json.loads(line) for line in as_json.stdout.splitlines()]
        assert error["message"] == f"step 1 (write) would fail: {refused}; nothing was changed"


def test_an_undo_blocked_by_a_later_change_names_the_file_as_it_is_shown(ws: Path, tmp_path: Path) -> None:
    # (Undo walks the steps backwards and its error line names the first it meets: the last step's file.)
    steps = [{"op": "write", "path": name, "content": "plan's\n", "overwrite": True} for _, name, _ in NAMES[::-1]]
    applied = run_routeshell("plan", "apply", write_plan(tmp_path, *steps), "--yes", "--workspace", str(ws))
    assert applied.returncode == 0, applied
    for raw, _, _ in NAMES:
        with open(os.path.join(os.fsencode(ws), raw), "wb") as changed:
            changed.write(b"changed since\n")
    dry = run_routeshell("plan", "undo", "--dry-run", "--workspace", str(ws))
    assert dry.returncode == 1, dry
    for _, _, shown in NAMES:
        assert f"  ! blocked: '{shown}' changed after the plan was applied\n" in dry.stdout
    undo = run_routeshell("plan", "undo", "--workspace", str(ws))
    assert_one_line_error(undo, 1, f": '{NAMES[0][2]}' changed after the plan was applied (and 1 more: ")
    assert "\\udc" not in dry.stdout + undo.stderr


@pytest.mark.parametrize(
    ("glob", "refused"),
    [
        ("gone\udcff*.txt", "/steps/0/match: selects nothing: no file matches 'gone\\xff*.txt' and its filters"),
        ("/abs\udcff/*", "/steps/0/match/glob: '/abs\\xff/*' is absolute; patterns are relative to the workspace"),
        ("up\udcff/../*", "/steps/0/match/glob: 'up\\xff/../*': '..' leads outside the workspace"),
    ],
    ids=["selects-nothing", "absolute", "climbs"],
)
def test_a_refused_glob_is_named_as_it_is_shown(ws: Path, tmp_path: Path, glob: str, refused: str) -> None:
    plan = write_plan(tmp_path, {"op": "delete", "match": {"glob": glob}})
    result = run_routeshell("plan", "apply", plan, "--yes", "--workspace", str(ws))
    assert_one_line_error(result, 2, refused)
    assert "\\udc" not in result.stdout + result.stderr


def test_a_folder_that_is_not_there_is_named_as_typed(ws: Path) -> None:
    for raw, _, shown in NAMES:
        missing = os.fsdecode(raw.replace(b".txt", b""))
        result = run_routeshell("files", "du", missing, "--workspace", str(ws))
        assert_one_line_error(result, 2, f"'{shown.replace('.txt', '')}': nothing there; give a directory")


def test_a_model_plan_refused_by_the_dry_run_names_the_file_as_it_is_shown(
    ws: Path, scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # no line of the transcript is wrapped
    for _, name, _ in NAMES:  # each reply writes over a file that is there; the third is the last try
        scripted_llm.enqueue(Reply({"version": 1, "steps": [{"op": "write", "path": name, "content": "x"}]}))
    scripted_llm.enqueue(Reply({"version": 1, "steps": [{"op": "write", "path": NAMES[0][1], "content": "x"}]}))
    result = run_routeshell("run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws),
                            "--topology", "single", "--approve", "all", "write the files")  # fmt: skip
    refused = [f"/steps/0: '{shown}' already exists (set \"overwrite\": true to replace it)" for _, _, shown in NAMES]
    assert f"  reply 1 rejected ({refused[0]}); asking again\n" in result.stdout
    assert f"  reply 2 rejected ({refused[1]}); asking again\n" in result.stdout
    assert f"\nerror: the builder gave no valid reply after 3 attempts: {refused[0]}\n" in result.stdout
    assert_one_line_error(result, 1, f"the builder gave no valid reply after 3 attempts: {refused[0]}")
    assert "\\udc" not in result.stdout
    assert "\x1b" not in result.stdout
    # The model is told of the file the same way: the name as it reads it in the workspace's list.
    assert refused[0] in scripted_llm.requests[1]["messages"][-1]["content"]
