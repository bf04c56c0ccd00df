"""The command line with standard streams it cannot use: closed, on a full device, or a pipe whose
reader went away. Each is one line on stderr and a documented exit code, never a traceback."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

from tests.helpers import ROUTESHELL, assert_one_line_error
from tests.run_cli.support import BUILD
from tests.scripted_llm import Reply, ScriptedLLM

TASK = "move the notes into old"
#: ``eval planner`` with no model and no file: the rule-based planner on two generated cases.
EVAL_PLANNER = ("eval", "planner", "--data", "held-out", "--count", "2", "--predictor", "rules")


def routeshell(
    *args: str, stdout: int | IO[Any] = subprocess.PIPE, closing: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``routeshell ARGS`` with the file descriptors ``closing`` closed, and ``stdout`` where it goes."""

    def close() -> None:
        for fd in closing:
            os.close(fd)

    return subprocess.run(
        [ROUTESHELL, *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=close if closing else None,
        timeout=120,
        check=False,
    )


def run_args(llm: ScriptedLLM, ws: Path, *args: str) -> tuple[str, ...]:
    return ("run", "--profile", "ci", "--base-url", llm.base_url, "--workspace", str(ws), "--topology", "single",
            "--approve", "all", *args)  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("VALUE = 1\n")
    return root


# -- a closed standard input ----------------------------------------------------------------------


def test_a_closed_stdin_with_a_task_argument_runs_unattended(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    result = routeshell(*run_args(scripted_llm, ws, "--json", "--yes", TASK), closing=(0,))
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    assert (ws / "app.py").read_text() == "VALUE = 2\n"


def test_a_closed_stdin_for_the_task_dash_is_exit_2(scripted_llm: ScriptedLLM, ws: Path) -> None:
    result = routeshell(*run_args(scripted_llm, ws, "-"), closing=(0,))
    assert_one_line_error(result, 2, "TASK is '-' but standard input is closed")
    assert scripted_llm.requests == []


# -- standard output that cannot be written -------------------------------------------------------


@pytest.mark.parametrize("json", [True, False], ids=["json", "transcript"])
def test_run_on_a_full_stdout_is_one_line_and_exit_1(scripted_llm: ScriptedLLM, ws: Path, json: bool) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    with open("/dev/full", "w") as full:
        result = routeshell(*run_args(scripted_llm, ws, *(["--json"] if json else []), TASK), stdout=full)
    assert_one_line_error(result, 1, "cannot write the output: No space left on device")
    # The first line of the report stopped the task before its plan: the line says so.
    assert result.stderr.strip().endswith("No space left on device; no plan was applied"), result.stderr
    assert (ws / "app.py").read_text() == "VALUE = 1\n"


def test_a_change_whose_report_cannot_be_written_is_said_with_the_error(tmp_path: Path) -> None:
    """plan apply, plan undo and trash restore on a full stdout: the one line says what was done (and
    how to take it back) or that nothing was, as the workspace shows."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "gone.txt").write_text("gone\n")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "gone.txt"}]}))
    where = ("--workspace", str(ws))

    def full(*args: str) -> str:
        with open("/dev/full", "w") as device:
            result = routeshell(*args, *where, stdout=device)
        assert_one_line_error(result, 1, "cannot write the output: No space left on device; ")
        return result.stderr.strip().partition("No space left on device; ")[2]

    # --json writes the preview first, and stops there.
    assert full("plan", "apply", str(plan), "--yes", "--json") == "nothing was applied"
    assert (ws / "gone.txt").exists()
    said = full("plan", "apply", str(plan), "--yes")
    assert not (ws / "gone.txt").exists()
    journal = json.loads(routeshell("plan", "history", "--json", *where).stdout.splitlines()[0])["id"]
    undo = f"routeshell plan undo {journal} --workspace {ws}"
    assert said == f"plan {journal} was applied (1 step(s)); undo with: {undo}"
    # The command it gives works when pasted.
    assert subprocess.run([ROUTESHELL, *shlex.split(undo)[1:], "--dry-run"], capture_output=True, timeout=120,
                          check=False).returncode == 0  # fmt: skip
    assert full("plan", "undo") == f"plan {journal} was undone"
    assert (ws / "gone.txt").read_text() == "gone\n"
    # An error whose event cannot be written is still said, with its own exit code.
    with open("/dev/full", "w") as device:
        result = routeshell("plan", "undo", "--json", *where, stdout=device)
    assert_one_line_error(result, 2, "nothing to undo in ")
    full("plan", "apply", str(plan), "--yes")
    [item] = [f"{held.name}/{item.name}" for held in (ws / ".routeshell" / "trash").iterdir()
              for item in held.iterdir()]  # fmt: skip
    assert full("trash", "restore", item) == f"{item} was restored to gone.txt"
    assert (ws / "gone.txt").read_text() == "gone\n"


@pytest.mark.parametrize("json", [True, False], ids=["json", "table"])
def test_eval_planner_on_a_full_stdout_is_one_line_and_exit_1(json: bool) -> None:
    with open("/dev/full", "w") as full:
        result = routeshell(*EVAL_PLANNER, *(["--json"] if json else []), stdout=full)
    assert_one_line_error(result, 1, "cannot write the output: No space left on device")


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("profiles", "list")], ids=lambda a: " ".join(a))
def test_a_closed_or_full_stdout_is_reported_for_any_command(args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        assert_one_line_error(routeshell(*args, stdout=full), 1, "cannot write the output: No space left on device")
    # Closed, it stays closed for writing (nothing else may land on its descriptor): a write fails.
    assert_one_line_error(routeshell(*args, closing=(1,)), 1, "cannot write the output: Bad file descriptor")


def unread(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``routeshell ARGS`` with standard output a pipe whose reader went away before the first write."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return routeshell(*args, stdout=writer)
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args", [("--help",), ("profiles", "list", "--json"), (*EVAL_PLANNER, "--json")], ids=["help", "profiles", "eval"]
)
def test_a_reader_that_went_away_ends_it_quietly(args: tuple[str, ...]) -> None:
    result = unread(*args)
    assert result.returncode == 0, result
    assert result.stderr == ""


def test_a_reader_that_went_away_stops_no_change_halfway(tmp_path: Path) -> None:
    """The output is a report: apply, undo and trash restore finish what they change (exit 0, quietly),
    never roll it back because nobody reads."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("a.log", "b.log", "gone.txt"):
        (ws / name).write_text(name)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "steps": [
        {"op": "mkdir", "path": "logs"}, {"op": "move", "match": {"glob": "*.log"}, "to": "logs/"},
        {"op": "delete", "path": "gone.txt"}]}))  # fmt: skip
    where = ("--workspace", str(ws))
    for step in (("plan", "apply", str(plan), "--yes", *where), ("plan", "undo", "--json", *where),
                 ("plan", "apply", str(plan), "--yes", "--json", *where)):  # fmt: skip
        result = unread(*step)
        assert (result.returncode, result.stderr) == (0, ""), (step, result)
    assert sorted(p.name for p in ws.iterdir()) == [".routeshell", "logs"]
    assert sorted(p.name for p in (ws / "logs").iterdir()) == ["a.log", "b.log"]
    [item] = [
        f"{held.name}/{item.name}" for held in (ws / ".routeshell" / "trash").iterdir() for item in held.iterdir()
    ]
    result = unread("trash", "restore", item, *where)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert (ws / "gone.txt").read_text() == "gone.txt"
    history = routeshell("plan", "history", "--json", *where)
    assert [json.loads(line)["state"] for line in history.stdout.splitlines()] == ["undone", "applied"]
