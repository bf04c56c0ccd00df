"""``routeshell files find --semantic``, as a user runs it: best first with scores, --json, and bad input."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from engine.events import event_problem
from tests.engine.semantic.library import build_library
from tests.helpers import assert_one_line_error, run_routeshell
from tui.cli import main

HOSTILE = "\x1b[31m[red]tax[bold] receipts.txt"
SHOWN = "\\x1b[31m[red]tax[bold] receipts.txt"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = build_library(tmp_path / "ws")
    (root / "finance" / HOSTILE).write_text("receipts for the tax office\n")
    return root


def files(ws: Path, *args: str) -> Any:
    return run_routeshell("files", "find", *args, "--workspace", str(ws))


def test_the_closest_files_come_first_with_their_scores(ws: Path) -> None:
    # A process of its own: loading the model prints nothing (no progress bar, no advice).
    result = files(ws, "--semantic", "tax documents", "--top-k", "2")
    assert result.returncode == 0, result
    assert result.stderr == ""
    rows = result.stdout.splitlines()
    assert len(rows) == 2
    assert {row.rsplit("  ", 1)[1] for row in rows} == {"finance/tax-return-2024.pdf", f"finance/{SHOWN}"}
    scores = [float(row.split()[0]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert "\x1b" not in result.stdout
    assert (ws / ".routeshell" / "index.sqlite").is_file()


def test_json_lists_found_events_with_scores(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # In this process: the model loads once for every test here.
    assert main(["files", "find", "finance/*", "--semantic", "tax documents", "--json", "--workspace", str(ws)]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [event_problem(event) for event in found] == [None, None]
    assert {event["path"] for event in found} == {"finance/tax-return-2024.pdf", f"finance/{HOSTILE}"}
    assert found[0]["score"] >= found[1]["score"]
    assert all(-1 <= event["score"] <= 1 for event in found)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ((), ["give a GLOB", "--semantic TEXT"]),
        (("*", "--top-k", "3"), ["--top-k", "add --semantic"]),
        (("--semantic", "tax", "--top-k", "1001"), ["--top-k", "from 1 to 1000"]),
        (("--semantic", "tax", "--top-k", "0"), ["--top-k", "'0' is not a whole number from 1 to 1000"]),
        (("--semantic", "tax", "--top-k", "-3"), ["--top-k", "'-3' is not a whole number from 1 to 1000"]),
        (("*", "--limit", "-3"), ["--limit", "'-3' is not a whole number of 1 or more"]),
        (("--semantic", "tax", "--type", "dir"), ["--type", "regular files only"]),
        (("--semantic", "x" * 501), ["--semantic", "1 to 500 characters"]),
    ],
)
def test_bad_options_are_one_line_and_exit_2(ws: Path, args: tuple[str, ...], needles: list[str]) -> None:
    assert_one_line_error(files(ws, *args), 2, *needles)
    assert not (ws / ".routeshell").exists()


def test_an_index_with_values_of_the_wrong_type_is_set_aside(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    find = ["files", "find", "--semantic", "tax documents", "--workspace", str(ws)]
    assert main(find) == 0
    first = capsys.readouterr().out
    index = ws / ".routeshell" / "index.sqlite"
    with closing(sqlite3.connect(index)) as conn, conn:
        conn.execute("UPDATE files SET size = 'big'")
    assert main(find) == 0
    again = capsys.readouterr()
    assert again.out == first
    [warning] = again.err.splitlines()
    assert warning.startswith(f"routeshell: warning: {index} ")
    assert warning.endswith("moved it to index.sqlite.broken and made a new one")
    # A semantic match in a plan reads the same index.
    with closing(sqlite3.connect(index)) as conn, conn:
        conn.execute("UPDATE files SET path = CAST(path AS TEXT)")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "steps": [{"op": "delete", "match": {"semantic": "tax", "top_k": 1}}]}))
    assert main(["plan", "apply", str(plan), "--dry-run", "--workspace", str(ws)]) == 0
    shown = capsys.readouterr()
    assert "would be applied" in shown.out
    [warning] = shown.err.splitlines()  # said as files find says it
    assert warning.startswith(f"routeshell: warning: {index} ")
    assert warning.endswith("moved it to index.sqlite.broken.2 and made a new one")
    assert (ws / ".routeshell" / "index.sqlite.broken.2").is_file()
