"""The workspace's state on hostile ground, as a user meets it: the real CLI on read-only, full and
cluttered workspaces; undo by id, undo --dry-run, plan show, the trash, --wait and Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.workspace.state import workspace_lock
from tests.helpers import (
    ROUTESHELL,
    assert_one_line_error,
    fill_disk,
    read_only_view,
    run_as_a_user,
    run_routeshell,
    small_disk,
)


def write_plan(directory: Path, *steps: dict[str, Any], goal: str = "a test plan") -> str:
    path = directory / f"plan-{len(list(directory.glob('plan-*')))}.json"
    path.write_text(json.dumps({"version": 1, "goal": goal, "steps": list(steps)}), encoding="utf-8")
    return str(path)


def apply(ws: Path, plan: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_routeshell("plan", "apply", plan, "--yes", "--workspace", str(ws), *args)


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_text("b\n")
    return root


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    directory = tmp_path / "plans"
    directory.mkdir()
    return directory


def test_read_only_commands_create_nothing(ws: Path) -> None:
    for args in (("plan", "history"), ("plan", "show", "1"), ("trash", "list"), ("plan", "undo", "--dry-run")):
        result = run_routeshell(*args, "--workspace", str(ws))
        assert "Traceback" not in result.stderr, args
    assert not (ws / ".routeshell").exists()
    assert "no plans applied" in run_routeshell("plan", "history", "--workspace", str(ws)).stdout
    assert_one_line_error(run_routeshell("plan", "show", "1", "--workspace", str(ws)), 2, "no plan '1'")


def test_undo_by_id_dry_run_show_and_trash(ws: Path, plans: Path) -> None:
    first = events(apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}, goal="drop a"), "--json").stdout)
    first_id = first[-1]["journal"]
    second = apply(ws, write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"}, goal="add c"))
    assert second.returncode == 0
    # The printed hint works when pasted, and undoes this plan even after another is applied.
    assert "undo with: routeshell plan undo 00002-" in second.stdout
    assert f" --workspace {ws}\n" in second.stdout

    shown = run_routeshell("plan", "show", first_id[:5], "--workspace", str(ws))
    assert shown.returncode == 0, shown
    assert f"plan {first_id}: applied" in shown.stdout
    assert "from cli" in shown.stdout
    assert "[1] delete a.txt" in shown.stdout
    assert "files: a.txt" in shown.stdout

    listed = run_routeshell("trash", "list", "--workspace", str(ws))
    assert f"{first_id}/0" in listed.stdout
    assert "2 B" in listed.stdout
    assert "a.txt" in listed.stdout

    dry = run_routeshell("plan", "undo", first_id, "--dry-run", "--workspace", str(ws))
    assert dry.returncode == 0, dry
    assert "put 'a.txt' back from the trash" in dry.stdout
    (ws / "a.txt").write_text("new a\n")
    blocked = run_routeshell("plan", "undo", first_id, "--dry-run", "--workspace", str(ws))
    assert blocked.returncode == 1
    assert "blocked: 'a.txt' exists again" in blocked.stdout
    assert_one_line_error(
        run_routeshell("plan", "undo", first_id, "--workspace", str(ws)), 1, "'a.txt' exists again", "move your changes"
    )
    os.unlink(ws / "a.txt")

    undone = run_routeshell("plan", "undo", first_id, "--workspace", str(ws))
    assert undone.returncode == 0, undone
    assert (ws / "a.txt").read_text() == "a\n"
    assert (ws / "c.txt").read_text() == "c\n"  # the later plan was left alone
    states = [
        row["state"] for row in events(run_routeshell("plan", "history", "--json", "--workspace", str(ws)).stdout)
    ]
    assert states == ["undone", "applied"]


def test_trash_restore_and_empty(ws: Path, plans: Path) -> None:
    result = events(apply(ws, write_plan(plans, {"op": "delete", "path": "sub"}), "--json").stdout)
    item = f"{result[-1]['journal']}/0"
    (ws / "sub").mkdir()
    assert_one_line_error(run_routeshell("trash", "restore", item, "--workspace", str(ws)), 2, "'sub' exists",
                          "move it aside")  # fmt: skip
    (ws / "sub").rmdir()
    restored = run_routeshell("trash", "restore", item, "--workspace", str(ws))
    assert restored.returncode == 0, restored
    assert (ws / "sub" / "b.txt").read_text() == "b\n"

    apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}))
    assert_one_line_error(run_routeshell("trash", "empty", "--workspace", str(ws)), 2, "without --yes")
    emptied = run_routeshell("trash", "empty", "--yes", "--workspace", str(ws))
    assert "1 item(s), 2 B freed" in emptied.stdout
    assert "is empty" in run_routeshell("trash", "list", "--workspace", str(ws)).stdout
    assert_one_line_error(run_routeshell("plan", "undo", "--workspace", str(ws)), 1, "no longer in the trash")


def test_a_read_only_workspace_fails_in_one_line(ws: Path, plans: Path, tmp_path: Path) -> None:
    apply(ws, write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"}, goal="before"))
    with read_only_view(ws, tmp_path / "ro") as ro:
        result = apply(ro, write_plan(plans, {"op": "delete", "path": "a.txt"}))
        assert_one_line_error(result, 1, "Read-only file system", "not writable")
        assert_one_line_error(run_routeshell("plan", "undo", "--workspace", str(ro)), 1, "Read-only file system")
        history = run_routeshell("plan", "history", "--workspace", str(ro))
        assert history.returncode == 0
        assert "before" in history.stdout
    assert not [p for p in (ws / ".routeshell").rglob("*") if ".tmp-" in p.name]


def test_a_fresh_read_only_workspace_refuses_without_a_traceback(tmp_path: Path, plans: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    with read_only_view(source, tmp_path / "ro") as ro:
        result = apply(ro, write_plan(plans, {"op": "delete", "path": "a.txt"}))
        assert_one_line_error(result, 1, "cannot create the state directory", "Read-only file system")


def test_a_full_disk_fails_in_one_line_and_a_delete_still_works(tmp_path: Path, plans: Path) -> None:
    with small_disk(tmp_path / "disk", "512k") as disk:
        ws = disk / "ws"
        ws.mkdir()
        (ws / "big.bin").write_bytes(bytes(100_000))
        assert apply(ws, write_plan(plans, {"op": "mkdir", "path": "fill"})).returncode == 0
        fill_disk(ws / "fill")
        result = apply(ws, write_plan(plans, {"op": "write", "path": "n.txt", "content": "n" * 20_000}))
        assert_one_line_error(result, 1, "No space left on device")
        assert apply(ws, write_plan(plans, {"op": "delete", "path": "big.bin"})).returncode == 0
        emptied = run_routeshell("trash", "empty", "--yes", "--workspace", str(ws))
        assert emptied.returncode == 0, emptied
        assert apply(ws, write_plan(plans, {"op": "write", "path": "n.txt", "content": "n" * 20_000})).returncode == 0
        assert not [p for p in (ws / ".routeshell").rglob("*") if ".tmp-" in p.name]


def test_stray_files_in_the_state_directory(ws: Path, plans: Path) -> None:
    assert apply(ws, write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"})).returncode == 0
    state = ws / ".routeshell"
    (state / "journal" / ".DS_Store").write_bytes(b"\0junk")
    (state / "journal" / "00009-damaged").mkdir()
    (state / "journal" / "00009-damaged" / "notes.txt").write_text("not a journal's\n")
    history = run_routeshell("plan", "history", "--workspace", str(ws))
    assert history.returncode == 0, history
    assert "00009-damaged  damaged" in history.stdout
    assert "has no plan.json" in history.stdout
    (state / "lock").unlink()
    (state / "lock").mkdir()
    result = apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}))
    assert_one_line_error(result, 1, f"mv '{state / 'lock'}' '{state / 'lock'}.broken'")
    (state / "lock").rmdir()
    # A FIFO or a device is no lock (a second routeshell would not see this one's): refused, not
    # waited on, nothing applied.
    for make in (os.mkfifo, lambda path: os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))):
        make(state / "lock")
        result = apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}))
        assert_one_line_error(result, 1, "lock is not a regular file (a ", f"mv '{state / 'lock'}' ")
        assert (ws / "a.txt").exists()
        (state / "lock").unlink()
    (state / "sessions.sqlite").write_bytes(b"this is not a database, just junk" * 10)
    result = run_routeshell("sessions", "--workspace", str(ws))
    assert_one_line_error(result, 1, "is not a routeshell session database", "sessions.sqlite.broken")
    os.unlink(state / "sessions.sqlite")
    os.rename(state, ws / "moved")
    (ws / ".routeshell").write_text("a file where the state directory goes")
    result = apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}))
    assert_one_line_error(result, 1, "is not a directory", "mv ")
    assert (ws / "a.txt").exists()


def test_a_step_that_fails_names_its_path(ws: Path, plans: Path, tmp_path: Path) -> None:
    with read_only_view(ws / "sub", ws / "sub"):
        result = apply(ws, write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"},
                                      {"op": "delete", "path": "sub/b.txt"}))  # fmt: skip
        assert_one_line_error(result, 1, "step 2 (delete 'sub/b.txt') failed: ",
                              "the 1 earlier steps were rolled back")  # fmt: skip
    assert not (ws / "c.txt").exists()


def test_a_filesystem_mounted_inside_the_workspace_is_refused_by_the_dry_run_too(ws: Path, plans: Path) -> None:
    with small_disk(ws / "mounted", "1m") as mounted:
        (mounted / "b.txt").write_text("b\n")
        for step in ({"op": "move", "from": "a.txt", "to": "mounted/a.txt"}, {"op": "delete", "path": "mounted/b.txt"},
                     {"op": "write", "path": "mounted/c.txt", "content": "c\n"}):  # fmt: skip
            plan = write_plan(plans, {"op": "mkdir", "path": "made"}, step)
            dry = apply(ws, plan, "--dry-run")
            assert dry.returncode == 1, dry
            assert "on another filesystem mounted inside the workspace" in dry.stdout + dry.stderr
            assert_one_line_error(apply(ws, plan), 1, "on another filesystem mounted inside the workspace",
                                  "nothing was changed")  # fmt: skip
            assert not (ws / "made").exists()
        assert (ws / "a.txt").read_text() == "a\n"
        assert sorted(p.name for p in mounted.iterdir()) == ["b.txt"]


def test_emptying_the_trash_stops_at_a_mount_point_in_it(ws: Path, plans: Path) -> None:
    assert apply(ws, write_plan(plans, {"op": "delete", "path": "sub"})).returncode == 0
    [item] = (ws / ".routeshell" / "trash").glob("*/0")
    with small_disk(item / "mounted", "1m") as mounted:
        (mounted / "precious.txt").write_text("only copy\n")
        result = run_routeshell("trash", "empty", "--yes", "--workspace", str(ws))
        assert_one_line_error(result, 1, f"holds {mounted}, where another filesystem is mounted",
                              f"umount {mounted}", "nothing was deleted")  # fmt: skip
        assert (mounted / "precious.txt").read_text() == "only copy\n"
        assert (item / "b.txt").exists()


def test_wait_for_the_workspace_lock(ws: Path, plans: Path) -> None:
    plan = write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"})
    with workspace_lock(ws):
        assert_one_line_error(apply(ws, plan), 1, "another routeshell is changing", "--wait")
        waited = apply(ws, plan, "--wait", "0.3")
        assert_one_line_error(waited, 1, "another routeshell is changing")
        assert "add --wait" not in waited.stderr  # it did wait
        waiting = subprocess.Popen([ROUTESHELL, "plan", "apply", plan, "--yes", "--wait", "--workspace", str(ws)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert (ws / "c.txt").read_text() == "c\n"


def test_a_file_changed_after_the_preview_is_not_written_and_leaves_no_journal(ws: Path, plans: Path) -> None:
    read = hashlib.sha256(b"a\n").hexdigest()
    plan = write_plan(plans, {"op": "write", "path": "a.txt", "content": "edited\n", "overwrite": True,
                              "if_sha256": read})  # fmt: skip
    with workspace_lock(ws):
        # The preview passes; the apply then waits for the lock, and meanwhile something else writes.
        waiting = subprocess.Popen(
            [ROUTESHELL, "plan", "apply", plan, "--yes", "--json", "--wait", "--workspace", str(ws)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert waiting.stdout is not None
        preview = json.loads(waiting.stdout.readline())
        assert (preview["type"], preview["problem"]) == ("preview", None)
        (ws / "a.txt").write_text("someone else's\n")
    out, err = waiting.communicate(timeout=120)
    refused = ("step 1 (write 'a.txt') failed: 'a.txt' no longer holds the content it was changed from (something "
               "else changed it); nothing was changed")  # fmt: skip
    assert_one_line_error(subprocess.CompletedProcess(waiting.args, waiting.returncode, out, err), 1, refused)
    assert events(out)[-1] == {"type": "error", "message": refused, "exit_code": 1}
    assert (ws / "a.txt").read_text() == "someone else's\n"
    assert list((ws / ".routeshell").glob("journal/*")) == []
    assert "no plans applied" in run_routeshell("plan", "history", "--workspace", str(ws)).stdout


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "-inf", "soon"])
@pytest.mark.parametrize("command", [("plan", "undo"), ("plan", "apply", "-"), ("trash", "restore", "x/0"),
                                     ("trash", "empty", "--yes")])  # fmt: skip
def test_wait_takes_only_a_number_of_seconds(ws: Path, command: tuple[str, ...], value: str) -> None:
    result = run_routeshell(*command, f"--wait={value}", "--workspace", str(ws), stdin_text="")
    assert_one_line_error(result, 2, "--wait", f"{value!r} is not a number of seconds")
    assert not (ws / ".routeshell").exists()


def test_apply_recovers_before_it_previews(ws: Path, plans: Path) -> None:
    result = events(apply(ws, write_plan(plans, {"op": "write", "path": "a.txt", "content": "new\n",
                                                 "overwrite": True}), "--json").stdout)  # fmt: skip
    # What a kill just before the state write leaves: the step done, the state still "applying".
    (ws / ".routeshell" / "journal" / result[-1]["journal"] / "state").write_text("applying")
    patch = write_plan(plans, {"op": "patch", "path": "a.txt", "find": "a", "replace": "z"})
    dry = run_routeshell("plan", "apply", patch, "--dry-run", "--workspace", str(ws))
    assert dry.returncode == 0, dry
    assert "recovered plan" in dry.stdout
    assert "-a\n" in dry.stdout
    assert "+z" in dry.stdout
    assert (ws / "a.txt").read_text() == "a\n"


def test_ctrl_c_during_apply_json_ends_with_a_final_event(ws: Path, plans: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(20)"]
    plan = write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"}, {"op": "run", "argv": sleeper})
    child = subprocess.Popen([ROUTESHELL, "plan", "apply", plan, "--yes", "--json", "--workspace", str(ws)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    log = ws / ".routeshell" / "journal"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any('"op": "run"' in p.read_text() for p in log.glob("*/log.jsonl")):
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    final = events(out)[-1]
    assert (final["type"], final["exit_code"]) == ("error", 130)
    assert "rolled back" in final["message"]
    assert not (ws / "c.txt").exists()


def test_show_undo_dry_run_and_trash_speak_json(ws: Path, plans: Path) -> None:
    applied = events(apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}, goal="drop a"), "--json").stdout)
    journal = applied[-1]["journal"]
    [shown] = events(run_routeshell("plan", "show", journal, "--json", "--workspace", str(ws)).stdout)
    assert (shown["type"], shown["id"], shown["via"], shown["files"]) == ("journal", journal, "cli", ["a.txt"])
    assert shown["plan_steps"] == [{"op": "delete", "path": "a.txt"}]
    [preview] = events(run_routeshell("plan", "undo", "--dry-run", "--json", "--workspace", str(ws)).stdout)
    assert preview == {"type": "undo_preview", "journal": journal, "actions": ["put 'a.txt' back from the trash"],
                       "blocked": []}  # fmt: skip
    [item] = events(run_routeshell("trash", "list", "--json", "--workspace", str(ws)).stdout)
    assert (item["type"], item["id"], item["origin"], item["size"]) == ("trash", f"{journal}/0", "a.txt", 2)


def test_the_restore_hint_of_trash_list_works_when_pasted(ws: Path, plans: Path) -> None:
    apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}))
    listed = run_routeshell("trash", "list", "--workspace", str(ws))
    hint = listed.stdout.strip().splitlines()[-1].split("put one back with: ", 1)[1]
    command = shlex.split(hint)
    assert command[0] == "routeshell"
    restored = run_routeshell(*command[1:], cwd=Path("/"))
    assert restored.returncode == 0, restored.stderr
    assert (ws / "a.txt").exists()


def test_the_hint_of_an_unknown_plan_id_works_when_pasted(ws: Path, plans: Path) -> None:
    apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}))
    result = run_routeshell("plan", "undo", "999", "--workspace", str(ws))
    assert_one_line_error(result, 2, "no plan '999'")
    for args in (("undo", "--dry-run", "999"), ("show", "999")):
        assert_one_line_error(run_routeshell("plan", *args, "--workspace", str(ws)), 2, "no plan '999'")
    hint = result.stderr.split("; ", 1)[1].removesuffix(" lists them\n")
    listed = run_routeshell(*shlex.split(hint)[1:], cwd=Path("/"))
    assert listed.returncode == 0, listed.stderr
    assert "applied" in listed.stdout


HOSTILE_ID = "00001-\x1b[31mX\x07"


def assert_no_control(result: subprocess.CompletedProcess[str]) -> None:
    """Nothing in the output moves the cursor or sets a title: every control character is escaped."""
    for text in (result.stdout, result.stderr):
        assert not [ch for ch in text if not ch.isprintable() and ch != "\n"], text


def test_names_from_the_state_directory_are_shown_escaped(ws: Path, plans: Path) -> None:
    """A journal's or a trash folder's name is a directory's name, and anything may be in it."""
    applied = events(apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"}, goal="drop a"), "--json").stdout)
    state = ws / ".routeshell"
    os.rename(state / "journal" / applied[-1]["journal"], state / "journal" / HOSTILE_ID)
    os.rename(state / "trash" / applied[-1]["journal"], state / "trash" / HOSTILE_ID)
    (state / "trash" / "evil\x1b]0;T\x07").mkdir()
    (state / "trash" / "evil\x1b]0;T\x07" / "\x1b[31m0").write_text("x")
    shown = "00001-\\x1b[31mX\\x07"
    for args, needle in (
        (("plan", "history"), f"{shown}  applied"),
        (("plan", "show", "1"), f"plan {shown}: applied"),
        (("plan", "undo", "--dry-run"), f"undoing plan {shown} would"),
        (("trash", "list"), f"{shown}/0 "),
    ):
        result = run_routeshell(*args, "--workspace", str(ws))
        assert result.returncode == 0, result
        assert needle in result.stdout
        assert_no_control(result)
    listed = run_routeshell("trash", "list", "--workspace", str(ws))
    assert "evil\\x1b]0;T\\x07/\\x1b[31m0 " in listed.stdout
    raw = {item["id"] for item in events(run_routeshell("trash", "list", "--json", "--workspace", str(ws)).stdout)}
    assert raw == {f"{HOSTILE_ID}/0", "evil\x1b]0;T\x07/\x1b[31m0"}  # JSON escapes them itself
    piped = run_routeshell("--plain", "--workspace", str(ws), stdin_text="/history\n/undo\n")
    assert f"{shown}  applied" in piped.stdout
    assert f"undid plan {shown} (1 step(s))" in piped.stdout
    assert_no_control(piped)
    assert (ws / "a.txt").read_text() == "a\n"


def test_the_move_aside_hint_of_a_damaged_journal_with_an_odd_name_works_when_pasted(ws: Path) -> None:
    damaged = ws / ".routeshell" / "journal" / "00009-\x1b[31mX"
    damaged.mkdir(parents=True)
    (damaged / "junk").write_text("not a journal's\n")
    for args in (("plan", "history"), ("plan", "show", "9")):
        result = run_routeshell(*args, "--workspace", str(ws))
        assert result.returncode == 0, result
        assert_no_control(result)
        [line] = [line for line in result.stdout.splitlines() if "move it aside" in line]
        assert "00009-\\x1b[31mX  damaged" in line or "plan 00009-\\x1b[31mX: damaged" in line
        hint = line.split("move it aside (", 1)[1].removesuffix(") and try again")
        assert hint.startswith("mv ")
        subprocess.run(["bash", "-c", hint], check=True)
        assert not damaged.exists()
        assert (damaged.parent / f"{damaged.name}.broken").is_dir()
        os.rename(damaged.parent / f"{damaged.name}.broken", damaged)


def test_the_readme_names_wait_where_the_command_takes_it() -> None:
    """Each ``routeshell plan|trash VERB`` line of the README's usage block shows ``--wait`` exactly
    when that command takes it; a command that only reads refuses it in one line."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    usage = readme.split("## Using it", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [
        line.split("#", 1)[0]
        for line in usage.splitlines()
        if line.startswith(("routeshell plan ", "routeshell trash "))
    ]
    checked = set()
    for line in lines:
        words = line.split()
        helped = run_routeshell(words[1], words[2], "--help")
        assert helped.returncode == 0, helped
        assert ("--wait" in line) == ("--wait" in helped.stdout), line
        checked.add((words[1], words[2], "--wait" in line))
    assert {("trash", "list", False), ("trash", "restore", True), ("trash", "empty", True)} <= checked
    refused = run_routeshell("trash", "list", "--wait", "--workspace", "/")
    assert_one_line_error(refused, 2, "unrecognized arguments: --wait")


def test_with_json_standard_output_is_json_whatever_stops_the_command(ws: Path, plans: Path) -> None:
    """Apply and undo end their stream with one error event; the exit code and the one line on stderr
    are what they are without --json."""
    fine = write_plan(plans, {"op": "write", "path": "c.txt", "content": "c\n"})

    def ends_with_an_error(result: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
        assert_one_line_error(result, code, needle)
        found = events(result.stdout)
        assert [event["type"] for event in found].count("error") == 1, found
        assert (found[-1]["type"], found[-1]["exit_code"]) == ("error", code), found
        assert needle in found[-1]["message"]

    ends_with_an_error(apply(ws, write_plan(plans, {"op": "write", "path": "../x", "content": ""}), "--json"), 2,
                       "outside the workspace")  # fmt: skip
    ends_with_an_error(apply(ws, str(plans / "missing.json"), "--json"), 2, "cannot read")
    ends_with_an_error(run_routeshell("plan", "apply", fine, "--json", "--workspace", str(ws)), 2, "without --yes")
    ends_with_an_error(run_routeshell("plan", "undo", "--json", "--workspace", str(ws)), 2, "nothing to undo")
    with workspace_lock(ws):
        ends_with_an_error(apply(ws, fine, "--json"), 1, "another routeshell is changing")
    validated = run_routeshell("plan", "validate", "--json", str(plans / "missing.json"))
    assert_one_line_error(validated, 2, "cannot read")
    assert [problem["pointer"] for problem in json.loads(validated.stdout)] == ["/"]
    emptied = run_routeshell("trash", "empty", "--yes", "--json", "--workspace", str(ws))
    assert (emptied.returncode, events(emptied.stdout)) == (0, [{"type": "trash_emptied", "items": 0, "bytes": 0}])
    assert not (ws / "c.txt").exists()


def test_with_json_the_question_goes_to_the_terminal_not_standard_output(ws: Path, plans: Path, tmp_path: Path) -> None:
    import pexpect

    assert apply(ws, write_plan(plans, {"op": "delete", "path": "a.txt"})).returncode == 0
    out = tmp_path / "out.jsonl"
    delete_sub = shlex.quote(write_plan(plans, {"op": "delete", "path": "sub"}))
    # The apply's stream ends with its error event; the trash's is empty (its line is on the terminal).
    asked = ((f"plan apply {delete_sub}", "Apply 1 step(s)", ["preview", "error"]),
             ("trash empty", "Delete 1 item(s)", []))  # fmt: skip
    for command, question, printed in asked:
        line = (
            f"{shlex.quote(ROUTESHELL)} {command} --json --workspace {shlex.quote(str(ws))} > {shlex.quote(str(out))}"
        )
        child = pexpect.spawn("sh", ["-c", line], encoding="utf-8", timeout=30)
        child.expect_exact(question)
        child.sendline("n")
        child.expect_exact("not")  # applied, emptied: said on the terminal
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 1, child.before
        found = [event["type"] for event in events(out.read_text())]
        assert found == printed
    assert (ws / "sub").is_dir()
    assert len(list((ws / ".routeshell" / "trash").iterdir())) == 1


def test_emptying_deletes_read_only_folders_and_one_stopped_halfway_is_never_put_back(ws: Path, plans: Path) -> None:
    """As a user, not as root: a deleted folder holding a read-only folder of this user's is
    emptied whole. One holding a folder of another user's, which this one may not empty, stops the
    emptying halfway: what is left is out of undo's and restore's reach (undo says it is no longer
    in the trash, rather than put part of the folder back as if whole), and the next emptying ends it."""
    (ws / "sub" / "ro").mkdir()
    for index in range(30):
        (ws / "sub" / "ro" / f"f{index}").write_text(f"{index}\n")
    (ws / "sub" / "ro").chmod(0o555)
    where = ("--workspace", str(ws))
    applied = run_as_a_user("plan", "apply", write_plan(plans, {"op": "delete", "path": "sub"}), "--yes", *where)
    assert applied.returncode == 0, applied
    emptied = run_as_a_user("trash", "empty", "--yes", *where)
    assert emptied.returncode == 0, emptied
    assert not list((ws / ".routeshell" / "trash").rglob("*.txt"))
    assert "is empty" in run_routeshell("trash", "list", *where).stdout

    (ws / "other").mkdir()
    for index in range(30):
        (ws / "other" / f"f{index}").write_text(f"{index}\n")
    (ws / "other" / "theirs").mkdir()
    (ws / "other" / "theirs" / "kept").write_text("k\n")
    os.chown(ws / "other" / "theirs", 65534, 65534)
    (ws / "other" / "theirs").chmod(0o755)
    applied = run_as_a_user("plan", "apply", write_plan(plans, {"op": "delete", "path": "other"}), "--yes", *where)
    assert applied.returncode == 0, applied
    stopped = run_as_a_user("trash", "empty", "--yes", *where)
    assert stopped.returncode == 1, stopped
    assert_one_line_error(stopped, 1, "from the trash ('kept' in it): Permission denied; it holds what this user may")
    listed = run_routeshell("trash", "list", "--json", *where)
    [item] = events(listed.stdout)
    assert item["id"].endswith("/.emptying-0")
    assert item["origin"] is None
    assert "partly deleted" in item["why"]
    assert_one_line_error(run_routeshell("plan", "undo", *where), 1, "no longer in the trash")
    assert not (ws / "other").exists()
    restore = run_routeshell("trash", "restore", item["id"], *where)
    assert_one_line_error(restore, 2, "partly deleted", "copy it out of")
    assert not (ws / "other").exists()
    assert run_routeshell("trash", "empty", "--yes", *where).returncode == 0  # as root: it may
    assert "is empty" in run_routeshell("trash", "list", *where).stdout


def test_a_failed_apply_rolls_back_a_copy_that_holds_a_read_only_folder(ws: Path, plans: Path) -> None:
    """As a user: the copy keeps the folder's mode (read-only), and the rollback of the plan, when a
    later step fails, still removes the whole copy."""
    (ws / "sub" / "ro").mkdir()
    (ws / "sub" / "ro" / "f").write_text("f\n")
    (ws / "sub" / "ro").chmod(0o555)
    plan = write_plan(plans, {"op": "copy", "from": "sub", "to": "copy"}, {"op": "run", "argv": ["false"]})
    result = run_as_a_user("plan", "apply", plan, "--yes", "--workspace", str(ws))
    assert_one_line_error(result, 1, "step 2 (run) failed", "the 1 earlier steps were rolled back")
    assert not (ws / "copy").exists()
    assert "rolled-back" in run_routeshell("plan", "history", "--workspace", str(ws)).stdout
    assert "is empty" in run_routeshell("trash", "list", "--workspace", str(ws)).stdout


def test_a_state_directory_that_cannot_be_read_is_said_once(ws: Path) -> None:
    """plan history and plan show recover first, and read what is there when that fails; when the
    reading fails too, for the same reason, that reason is one line, not a warning and an error."""
    (ws / ".routeshell").mkdir()
    (ws / ".routeshell" / "journal").write_text("junk\n")
    for command in (("plan", "history"), ("plan", "show", "1")):
        result = run_routeshell(*command, "--workspace", str(ws))
        assert_one_line_error(result, 1, "journal is not a directory (a symlink or a file); move it aside")


def test_a_plan_whose_deleted_file_was_restored_can_still_be_undone(ws: Path, plans: Path) -> None:
    """trash restore put a.txt back: undoing the plan undoes the rest (b.txt) and leaves a.txt as it
    is, saying so in its dry run. A note of a restore planted in the trash, as a cloned repository
    could carry one, means nothing while the item is still there: the undo puts it back."""
    where = ("--workspace", str(ws))
    plan = write_plan(plans, {"op": "write", "path": "b.txt", "content": "b\n"}, {"op": "delete", "path": "a.txt"})
    journal = events(apply(ws, plan, "--json").stdout)[-1]["journal"]
    assert run_routeshell("trash", "restore", f"{journal}/1", *where).returncode == 0
    (ws / "a.txt").write_text("a, edited since\n")
    dry = run_routeshell("plan", "undo", "--dry-run", *where)
    assert dry.returncode == 0, dry
    assert "nothing for 'a.txt': it was put back from the trash already" in dry.stdout
    undone = run_routeshell("plan", "undo", *where)
    assert undone.returncode == 0, undone
    assert not (ws / "b.txt").exists()
    assert (ws / "a.txt").read_text() == "a, edited since\n"
    listed = events(run_routeshell("trash", "list", "--json", *where).stdout)
    assert [item["id"] for item in listed] == [f"{journal}/undo-0"]  # b.txt, which undo moved aside; no note

    journal = events(apply(ws, plan, "--json").stdout)[-1]["journal"]
    (ws / ".routeshell" / "trash" / journal / ".restored-1").write_text("")
    assert run_routeshell("plan", "undo", *where).returncode == 0
    assert (ws / "a.txt").read_text() == "a, edited since\n"
    assert not (ws / "b.txt").exists()
