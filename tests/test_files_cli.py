"""``routeshell files find|duplicates|du``, as a user runs them: text, --json, hostile names and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.events import event_problem
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell, sparse, wait_until_caught
from tui.files_cli import size_text

HOSTILE_DIR = "\x1b[31m[red]x["
HOSTILE = f"{HOSTILE_DIR}/red]"  # a path that reads "ESC[31m[red]x[/red]"
SHOWN = "\\x1b[31m[red]x[/red]"
SHOWN_DIR = "\\x1b[31m[red]x["


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for path, data, mtime in [
        ("logs/big.log", b"x" * 3000, 1_700_000_000),
        ("logs/copy.log", b"x" * 3000, 1_700_000_100),
        ("logs/small.log", b"small", 1_700_000_000),
        ("docs/a.md", b"---\ntags: ['[red]x[/red]']\n---\n# A\n", 1_700_000_000),
        (HOSTILE, b"x" * 3000, 1_700_000_200),
    ]:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (mtime, mtime))
    return root


def files(ws: Path, *args: str) -> Any:
    return run_routeshell("files", *args, "--workspace", str(ws))


def events(result: Any) -> list[dict[str, Any]]:
    assert result.returncode == 0, result
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [event_problem(event) for event in found] == [None] * len(found)
    return found


def test_size_text_uses_binary_units() -> None:
    assert [size_text(n) for n in (0, 1023, 1024, 1229, 3565158, 1 << 30, 1023 * 1024 + 1000)] == [
        "0 B",
        "1023 B",
        "1.0 KB",
        "1.2 KB",
        "3.4 MB",
        "1.0 GB",
        "1.0 MB",
    ]


def test_find_prints_one_line_per_entry(ws: Path) -> None:
    result = files(ws, "find", "**/*.log", "--larger-than", "1KB")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        "   2.9 KB  2023-11-14 22:13  file  logs/big.log",
        "   2.9 KB  2023-11-14 22:15  file  logs/copy.log",
    ]
    assert result.stderr == ""
    tagged = files(ws, "find", "docs/*", "--ext", "MD", "--contains", "# a")
    assert tagged.stdout == "     35 B  2023-11-14 22:13  file  docs/a.md  tags: [red]x[/red]\n"


def test_find_json_is_one_found_event_per_entry(ws: Path) -> None:
    found = events(files(ws, "find", "**", "--smaller-than", "100B", "--json"))
    assert found == [
        {"type": "found", "path": "docs/a.md", "kind": "file", "size": 35, "mtime": 1_700_000_000.0,
         "tags": ["[red]x[/red]"]},
        {"type": "found", "path": "logs/small.log", "kind": "file", "size": 5, "mtime": 1_700_000_000.0, "tags": []},
    ]  # fmt: skip
    cut = events(files(ws, "find", "logs/*", "--limit", "1", "--json"))
    assert [event["type"] for event in cut] == ["found", "warning"]
    assert cut[1]["message"] == "showing 1 of 3 matches; raise --limit to see more"


def test_find_limits_and_counts_what_it_shows_a_folder_standing_for_its_contents(ws: Path) -> None:
    # 3 folders and the 5 files in them match; each folder stands for what is in it, so 3 are shown.
    cut = events(files(ws, "find", "**", "--type", "any", "--limit", "2", "--json"))
    assert [(event["type"], event.get("path")) for event in cut] == [
        ("found", HOSTILE_DIR), ("found", "docs"), ("warning", None)]  # fmt: skip
    assert cut[-1]["message"] == "showing 2 of 3 matches; raise --limit to see more"
    whole = events(files(ws, "find", "**", "--type", "any", "--limit", "3", "--json"))
    assert [event["path"] for event in whole] == [HOSTILE_DIR, "docs", "logs"]


def test_nothing_found_is_said_on_standard_error(ws: Path) -> None:
    result = files(ws, "find", "*.pdf")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "routeshell: nothing matches *.pdf\n"


def test_duplicates_text_and_json(ws: Path) -> None:
    result = files(ws, "duplicates")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        "3 files of 2.9 KB, 5.9 KB wasted (sha256 e1630f843370)",
        f"  2023-11-14 22:16  {SHOWN}",
        "  2023-11-14 22:15  logs/copy.log",
        "  2023-11-14 22:13  logs/big.log",
        "1 group(s) of duplicates, 5.9 KB wasted in all",
    ]
    (group,) = events(files(ws, "duplicates", "logs", "--json"))
    assert group["type"] == "duplicates"
    assert [item["path"] for item in group["files"]] == ["logs/copy.log", "logs/big.log"]
    assert (group["size"], group["wasted"]) == (3000, 3000)
    none = files(ws, "duplicates", "--min-size", "4KB")
    assert none.stdout == "no duplicate files under .\n"


def test_du_text_and_json(ws: Path) -> None:
    result = files(ws, "du")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        "     size      files  directory",
        "   5.9 KB          3  logs",
        f"   2.9 KB          1  {SHOWN_DIR}",
        "     35 B          1  docs",
        "   8.8 KB          5  .  (total)",
    ]
    rows = events(files(ws, "du", "logs", "--depth", "0", "--json"))
    assert rows == [{"type": "disk_usage", "path": "logs", "size": 6005, "files": 3, "depth": 0}]


def test_names_are_shown_escaped_and_round_trip_in_json(ws: Path) -> None:
    text = files(ws, "find", "**")
    assert "\x1b" not in text.stdout
    assert SHOWN in text.stdout
    found = events(files(ws, "find", "**", "--json"))
    assert HOSTILE in [event["path"] for event in found]
    assert "\x1b" not in files(ws, "find", "**", "--json").stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["find", "*", "--larger-than", "lots"], "--larger-than: 'lots' is not a size"),
        (["find", "*", "--name-regex", "("], "--name-regex: '(' is not a valid regular expression"),
        (["find", "/etc/*"], "GLOB: '/etc/*' is absolute"),
        (["find", "*", "--modified-after", "soon"], "--modified-after: 'soon' is not a date"),
        (["duplicates", "--min-size", "big"], "--min-size: 'big' is not a size"),
        (["du", "--depth", "-1"], "'-1' is not a whole number"),
        (["find", "*", "--type", "pipe"], "invalid choice: 'pipe'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ws: Path, args: list[str], needle: str) -> None:
    result = files(ws, *args)
    assert_one_line_error(result, 2, needle)
    assert result.stdout == ""


@pytest.mark.parametrize("action", ["du", "duplicates"])
@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("logs/big.log", "'logs/big.log': a file, not a directory; give a directory"),
        (".git", ".git/ is not looked into"),
        ("..", "'..' leads outside the workspace"),
        ("../outside", "'..' leads outside the workspace"),
        ("/etc", "absolute paths are refused"),
        ("nonexist", "'nonexist': nothing there"),
    ],
)
def test_a_path_that_is_not_a_directory_of_the_workspace_is_bad_input(
    ws: Path, action: str, path: str, needle: str
) -> None:
    result = files(ws, action, path)
    assert_one_line_error(result, 2, needle)
    assert result.stdout == ""


@pytest.mark.parametrize("action", ["du", "duplicates"])
def test_a_path_that_is_not_a_directory_says_what_it_is(ws: Path, action: str) -> None:
    os.mkfifo(ws / "pipe")
    (ws / "link").symlink_to("logs")
    for path, needle in (
        ("pipe", "'pipe': a FIFO, not a directory; give a directory"),
        ("logs/big.log", "'logs/big.log': a file, not a directory; give a directory"),
        ("link", "'link': a symlink, not a directory (a symlink is not followed); give a directory"),
    ):
        result = files(ws, action, path)
        assert_one_line_error(result, 2, needle)
        assert "symlink" not in result.stderr or path == "link"


@pytest.mark.parametrize("glob", ["link/*.log", "link/old/*", "link/**"])
def test_find_through_a_symlinked_directory_is_bad_input_naming_the_symlink(ws: Path, glob: str) -> None:
    (ws / "link").symlink_to("logs")
    for extra in ([], ["--json"]):
        result = files(ws, "find", glob, *extra)
        assert_one_line_error(
            result,
            2,
            "GLOB: 'link' is a symlink: a match never goes through one (a link is an entry, never a way in); glob the"
            " directory it leads to",
        )
        assert result.stdout == ""
    assert "logs/big.log" in files(ws, "find", "logs/*.log").stdout


def test_find_through_a_symlink_leading_outside_says_so_escaped(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("secret\n")
    os.symlink(tmp_path / "elsewhere", os.path.join(os.fsencode(ws), b"out\xff\x1b"))
    result = files(ws, "find", os.fsdecode(b"out\xff\x1b/*"))
    assert_one_line_error(
        result,
        2,
        "GLOB: 'out\\xff\\x1b' is a symlink leading outside the workspace: a match never goes through one, nor"
        " outside the workspace",
    )
    assert "secret" not in result.stdout + result.stderr


def test_a_missing_workspace_is_one_line(tmp_path: Path) -> None:
    result = run_routeshell("files", "du", "--workspace", str(tmp_path / "nope"))
    assert_one_line_error(result, 2, "is not a directory")


@pytest.mark.parametrize(
    "action", [["find", "--semantic", "tax documents"], ["duplicates"]], ids=["find-semantic", "duplicates"]
)
def test_sigterm_stops_a_long_files_action_with_one_line_and_143(tmp_path: Path, action: list[str]) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    for name in ("a.img", "b.img"):
        sparse(root / name, 1 << 40)  # read whole to compare them: hours, for a terabyte each
    argv = [ROUTESHELL, "files", *action, "--workspace", str(root)]
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:  # fmt: skip
        wait_until_caught(process, signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err == "routeshell: terminated\n"
    assert out == ""
