"""What ``routeshell run`` shows: --json events, the transcript, a plan's steps and diffs, hints that paste.

Each test starts the installed ``routeshell`` script against a :class:`ScriptedLLM` on loopback, on a
small workspace, and checks what a user (or a script reading ``--json``) sees.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROUTESHELL, tree
from tests.run_cli.support import (
    BUILD,
    HOSTILE,
    PYTHON,
    TEST_PASSES,
    events,
    journals,
    of_type,
    plan,
    run,
)
from tests.scripted_llm import Reply, ScriptedLLM

# -- --json ---------------------------------------------------------------------------------------


def test_json_events_of_a_single_run(scripted_llm: ScriptedLLM, ws: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    result = run(scripted_llm, ws, "--json", "--topology", "single", "--approve", "all", "set VALUE to 2 in app.py")
    assert result.returncode == 0, result
    found = events(result.stdout)
    kinds = [event["type"] for event in found]
    wanted = ["route", "role_start", "usage", "role_end", "plan", "applied", "reviewed", "final"]
    positions = [kinds.index(kind) for kind in wanted]
    assert positions == sorted(positions), kinds
    assert kinds[0] == "route"
    assert kinds[-1] == "final"
    route, final = found[0], found[-1]
    assert route["topology"] == "single"
    assert route["roles"] == ["builder"]
    (applied,) = of_type(found, "applied")
    assert final["ok"] is True
    assert "set VALUE to 2" in final["summary"]
    assert final["undo"] == applied["journal"]
    assert final["thread"] == route["thread"]
    assert journals(ws) == [applied["journal"]]
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    assert "app.py" in scripted_llm.requests[0]["messages"][1]["content"]
    assert scripted_llm.unexpected == 0


# -- the human transcript -------------------------------------------------------------------------


def test_transcript_shows_route_apply_and_done(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    hostile = plan(
        {"op": "write", "path": "app.py", "content": f"VALUE = 2  # {HOSTILE}\n", "overwrite": True}, goal=HOSTILE
    )
    scripted_llm.enqueue(Reply(hostile))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "set VALUE to 2 in app.py")
    assert result.returncode == 0, result
    out = result.stdout
    assert "route  single: builder" in out
    assert "applied 1 step" in out
    assert "as journal" in out
    assert "done: " in out
    assert "\x1b" not in out
    assert "[red]x[/red]" in out
    assert "\\x1b[31mEVIL" in out
    assert (ws / "app.py").read_text() == f"VALUE = 2  # {HOSTILE}\n"
    assert result.stderr == ""


@pytest.mark.parametrize("columns", [None, "60"], ids=["no-columns", "columns-60"])
def test_a_piped_transcript_wraps_no_line_unless_columns_asks(
    scripted_llm: ScriptedLLM, ws: Path, monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    goal = "set VALUE to 2 in app.py, " * 5 + "and nothing else"
    scripted_llm.enqueue(Reply(plan(*BUILD["steps"], goal=goal)))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "set VALUE to 2 in app.py")
    assert result.returncode == 0, result
    (journal,) = journals(ws)
    lines = result.stdout.splitlines()
    if columns is None:
        assert any(goal in line and f"(undo: journal {journal})" in line for line in lines), result.stdout
    else:
        # (The undo hint is written whole whatever the width: it is a command to paste.)
        wrapped = [line for line in lines if not line.startswith("undo the last plan with: ")]
        assert max(map(len, wrapped)) <= 60, result.stdout
        assert not any(goal in line for line in lines)


def test_transcript_shows_a_hostile_diff_literally(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    # A plan with a run step waits for approval under --approve auto, and its diff is shown.
    hostile = plan(
        {"op": "write", "path": "notes.txt", "content": f"{HOSTILE}\n"},
        {"op": "run", "argv": [PYTHON, "-c", "pass"]},
        goal=HOSTILE,
    )
    scripted_llm.enqueue(Reply(hostile))
    before = tree(ws)
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "auto", "write the notes")
    assert result.returncode == 1, result
    out = result.stdout
    assert "waits for approval" in out
    assert "\x1b" not in out + result.stderr
    assert "+[red]x[/red] \\x1b[31mEVIL" in out
    assert tree(ws) == before


@pytest.mark.parametrize("diffs", [(), ("--show-diff",)], ids=["plain", "show-diff"])
def test_a_plan_waiting_for_approval_lists_its_steps_once(
    scripted_llm: ScriptedLLM, ws: Path, wide: None, diffs: tuple[str, ...]
) -> None:
    # Under --approve auto a plan with a run step waits: its approval shows the steps and diffs.
    waiting = plan({"op": "write", "path": "notes.txt", "content": "first note\n"},
                   {"op": "run", "argv": [PYTHON, "-c", "pass"]}, goal="write the notes")  # fmt: skip
    scripted_llm.enqueue(Reply(waiting))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "auto", *diffs, "write the notes")
    assert result.returncode == 1, result
    out = result.stdout
    assert out.count("plan p1 from the builder, 2 steps: write the notes\n") == 1
    assert out.count("waits for approval") == 1
    assert out.count("  - [1] write notes.txt\n") == 1
    assert out.count("  - [2] ") == 1
    assert out.count("+first note\n") == 1
    # The steps come after the line saying the plan waits, so they read as what is to be approved.
    assert out.index("waits for approval") < out.index("  - [1] write notes.txt")


def test_transcript_shows_a_streamed_reply_and_tabs_literally(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    # Raw escapes in the reply around the plan; escapes and a tab in the file the plan writes.
    hostile = plan(
        {"op": "write", "path": "notes.txt", "content": "\x1b[2J\x1b]0;pwned\x07\n\tindented\n"},
        {"op": "run", "argv": [PYTHON, "-c", "pass"]},
        goal=HOSTILE,
    )
    scripted_llm.enqueue(Reply(f"\x1b[2J\x1b]0;pwned\x07 {HOSTILE}:\n```json\n{json.dumps(hostile)}\n```\n"))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "auto", "--show-stream", "write the notes")
    assert result.returncode == 1, result
    out = result.stdout
    for raw in ("\x1b", "\x07", "\t"):
        assert raw not in out + result.stderr
    # The streamed text keeps its lines; its escapes and markup are shown as text.
    assert "\\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red] \\x1b[31mEVIL:\n```json\n" in out
    assert "+\\x1b[2J\\x1b]0;pwned\\x07\n" in out
    assert "+       indented\n" in out  # a tab goes to the next stop of 8, never "\\t"


# -- what a plan contains -------------------------------------------------------------------------

HOSTILE_PLAN = plan(
    {"op": "write", "path": "app.py", "content": "VALUE = 2\n", "overwrite": True},
    {"op": "write", "path": "notes\x1b[2J.txt", "content": f"{HOSTILE}\n"},
    goal="two writes",
)


def test_a_plan_shown_but_not_applied_lists_its_steps(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    scripted_llm.enqueue(Reply(HOSTILE_PLAN))
    # The ci profile only shows plans (approval "never").
    result = run(scripted_llm, ws, "--topology", "single", "set VALUE to 2")
    assert result.returncode == 0, result
    out = result.stdout
    assert "  - [1] write app.py\n" in out
    assert "  - [2] write notes\\x1b[2J.txt\n" in out
    assert "\x1b" not in out
    assert "+VALUE = 2" not in out  # diffs only with --show-diff


def test_show_diff_adds_the_diffs_of_an_applied_plan(scripted_llm: ScriptedLLM, ws: Path, wide: None) -> None:
    scripted_llm.enqueue(Reply(HOSTILE_PLAN))
    result = run(scripted_llm, ws, "--topology", "single", "--approve", "all", "--show-diff", "set VALUE to 2")
    assert result.returncode == 0, result
    out = result.stdout
    assert "  - [1] write app.py\n" in out
    assert "-VALUE = 1" in out
    assert "+VALUE = 2" in out
    assert "+[red]x[/red] \\x1b[31mEVIL" in out
    assert "\x1b" not in out


def test_json_plan_event_holds_the_steps_whatever_the_approval(scripted_llm: ScriptedLLM, ws: Path) -> None:
    for approve in ("never", "all"):
        scripted_llm.enqueue(Reply(HOSTILE_PLAN))
        result = run(scripted_llm, ws, "--json", "--topology", "single", "--approve", approve, "set VALUE to 2")
        assert result.returncode == 0, result
        (shown,) = of_type(events(result.stdout), "plan")
        assert [step["path"] for step in shown["plan"]["steps"]] == ["app.py", "notes\x1b[2J.txt"]


# -- hints work when pasted -----------------------------------------------------------------------


def paste(hint: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed ``routeshell ...`` line as a shell would, from ``cwd``."""
    words = shlex.split(hint)
    assert words[0] == "routeshell", hint
    return subprocess.run([ROUTESHELL, *words[1:]], cwd=cwd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip


@pytest.fixture
def spaced(tmp_path: Path) -> Path:
    """A workspace whose path needs quoting, and nothing in the directory the hints are pasted in."""
    root = tmp_path / "my 'work' space"
    root.mkdir()
    (root / "app.py").write_text("VALUE = 1\n")
    (tmp_path / "elsewhere").mkdir()
    return root


def test_the_undo_hint_works_when_pasted(scripted_llm: ScriptedLLM, spaced: Path, wide: None) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    result = run(scripted_llm, spaced, "--topology", "single", "--approve", "all", "set VALUE to 2")
    assert result.returncode == 0, result
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("undo the last plan with: ")]
    hint = line.removeprefix("undo the last plan with: ").rsplit("  (journal ", 1)[0]
    elsewhere = spaced.parent / "elsewhere"
    undone = paste(hint, elsewhere)
    assert undone.returncode == 0, undone
    assert (spaced / "app.py").read_text() == "VALUE = 1\n"
    assert list(elsewhere.iterdir()) == []


def test_the_resume_hint_works_when_pasted(scripted_llm: ScriptedLLM, spaced: Path) -> None:
    scripted_llm.enqueue(Reply(BUILD), Reply(TEST_PASSES))
    result = run(scripted_llm, spaced, "--topology", "loop", "--approve", "auto", "set VALUE to 2")
    assert result.returncode == 1, result
    hint = result.stderr.strip().split("waits for approval; ", 1)[1]
    elsewhere = spaced.parent / "elsewhere"
    resumed = paste(hint, elsewhere)
    assert resumed.returncode == 0, resumed
    assert (spaced / "test_app.py").exists()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("shown", [("--json",), ()], ids=["json", "transcript"])
def test_a_reader_that_went_away_stops_no_task_halfway(
    scripted_llm: ScriptedLLM, ws: Path, shown: tuple[str, ...]
) -> None:
    scripted_llm.enqueue(Reply(BUILD))
    reader, writer = os.pipe()
    os.close(reader)  # as `routeshell run ... | head -0` leaves it
    try:
        result = subprocess.run(
            [ROUTESHELL, "run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(ws),
             *shown, "--topology", "single", "--approve", "all", "set VALUE to 2 in app.py"],
            stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert (ws / "app.py").read_text() == "VALUE = 2\n"
    assert len(journals(ws)) == 1
