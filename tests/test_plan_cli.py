"""``routeshell plan`` as a user meets it: real subprocesses on a real workspace, exit codes and files on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.workspace.sandbox import STATE_DIR
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell, tree

PYTHON = sys.executable


def run(*args: str, stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_routeshell(*args, stdin_text=stdin_text)


def plan_cmd(action: str, workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("plan", action, "--workspace", str(workspace), *args)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    directory = tmp_path / "plans"
    directory.mkdir()
    return directory


def write_plan(directory: Path, name: str, document: Any) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def plan(*steps: dict[str, Any], goal: str = "a test plan") -> dict[str, Any]:
    return {"version": 1, "goal": goal, "steps": list(steps)}


PATCH_README = {"op": "patch", "path": "README.md", "find": "A sample workspace.", "replace": "A patched workspace."}

PLAN_A = plan(
    {"op": "write", "path": "notes.txt", "content": "first\n"},
    PATCH_README,
    {"op": "mkdir", "path": "build/out"},
    goal="plan A",
)
PLAN_B = plan(
    {"op": "delete", "path": "docs/guide.md"},
    {"op": "move", "from": "data.bin", "to": "build/data.bin"},
    {"op": "copy", "from": "src", "to": "src-copy"},
    {"op": "append", "path": "notes.txt", "content": "second\n"},
    goal="plan B",
)
FAILING_LAST = plan(
    {"op": "write", "path": "new.txt", "content": "new\n"},
    PATCH_README,
    {"op": "mkdir", "path": "x/y"},
    {"op": "move", "from": "data.bin", "to": "moved.bin"},
    {"op": "copy", "from": "src", "to": "src2"},
    {"op": "delete", "path": ".hidden"},
    {"op": "append", "path": "docs/guide.md", "content": "more\n"},
    {"op": "write", "path": "src/pkg/hello.py", "content": "replaced\n", "overwrite": True},
    {"op": "run", "argv": [PYTHON, "-c", "import sys; print('failing on purpose'); sys.exit(1)"]},
    goal="fails at the end",
)


# -- schema and validate ------------------------------------------------------------------------


def test_schema_is_json_schema_2020_12() -> None:
    from jsonschema import Draft202012Validator

    result = run("plan", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert Draft202012Validator(schema).is_valid(PLAN_A)


def test_validate_a_valid_plan(plans: Path) -> None:
    path = write_plan(plans, "a", PLAN_A)
    result = run("plan", "validate", str(path))
    assert result.returncode == 0
    assert "valid plan, 3 step(s)" in result.stdout
    assert result.stderr == ""
    as_json = run("plan", "validate", "--json", str(path))
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == []


def test_validate_reads_standard_input() -> None:
    result = run("plan", "validate", "-", stdin_text=json.dumps(PLAN_B))
    assert result.returncode == 0
    assert "valid plan, 4 step(s)" in result.stdout
    bad = run("plan", "validate", "-", stdin_text=json.dumps({"version": 1, "steps": []}))
    assert bad.returncode == 2
    assert "/steps" in bad.stderr


def validate_problems(path: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    text = run("plan", "validate", str(path))
    as_json = run("plan", "validate", "--json", str(path))
    assert as_json.returncode == 2
    return text, json.loads(as_json.stdout)


def assert_problems_listed(text: subprocess.CompletedProcess[str], pointers: list[str]) -> None:
    assert text.returncode == 2
    assert "Traceback" not in text.stderr
    lines = text.stderr.splitlines()
    assert lines[0].startswith("routeshell: error: ")
    assert f"{len(pointers)} problem(s)" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == pointers


def test_validate_lists_every_schema_problem(plans: Path) -> None:
    document = {
        "version": 2,
        "steps": [
            {"op": "write", "path": "/etc/passwd", "content": "x"},
            {"op": "frobnicate", "path": "a"},
            {"op": "patch", "path": "a", "find": ""},
        ],
    }
    text, problems = validate_problems(write_plan(plans, "bad", document))
    pointers = ["/steps/0/path", "/steps/1/op", "/steps/2/find", "/steps/2/replace", "/version"]
    assert_problems_listed(text, pointers)
    assert [problem["pointer"] for problem in problems] == pointers
    assert all(problem["reason"] for problem in problems)


def test_validate_lists_every_sandbox_problem(plans: Path) -> None:
    document = plan(
        {"op": "mkdir", "path": "a/../../escape"},
        {"op": "write", "path": ".git/hooks/pre-commit", "content": "x"},
        {"op": "delete", "path": f"{STATE_DIR}/lock"},
        {"op": "copy", "from": "ok.txt", "to": "ok2.txt"},
        {"op": "move", "from": "ok.txt", "to": "sub/../../out.txt"},
    )
    text, problems = validate_problems(write_plan(plans, "bad", document))
    pointers = ["/steps/0/path", "/steps/1/path", "/steps/2/path", "/steps/4/to"]
    assert_problems_listed(text, pointers)
    assert [problem["pointer"] for problem in problems] == pointers
    assert "'..' leads outside the workspace" in problems[0]["reason"]
    assert ".git/ is protected" in problems[1]["reason"]


def test_validate_lists_schema_and_sandbox_problems_together(plans: Path) -> None:
    document = {
        "version": 2,
        "steps": [
            {"op": "write", "path": "/abs/path", "content": "x"},
            {"op": "mkdir", "path": "a/../../escape"},
            {"op": "write", "path": ".git/config", "content": "x"},
        ],
    }
    text, problems = validate_problems(write_plan(plans, "bad", document))
    assert text.returncode == 2
    assert {problem["pointer"] for problem in problems} == {
        "/version",
        "/steps/0/path",
        "/steps/1/path",
        "/steps/2/path",
    }


@pytest.mark.parametrize("text", ['{"version": 1, "steps": [', "not json at all", ""])
def test_validate_malformed_json(plans: Path, text: str) -> None:
    path = plans / "broken.json"
    path.write_text(text)
    result = run("plan", "validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"routeshell: error: {path}: invalid plan")
    assert "not JSON" in result.stderr
    as_json = run("plan", "validate", "--json", str(path))
    assert as_json.returncode == 2
    assert [problem["pointer"] for problem in json.loads(as_json.stdout)] == ["/"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "[" * 100_000,
            id="deeply-nested",
        ),
        pytest.param(
            '{"version": 1, "steps": [{"op": "mkdir", "path": "\\ud800"}]}',
            id="lone-surrogate",
        ),
    ],
)
def test_validate_hostile_json_is_a_usage_error(plans: Path, text: str) -> None:
    path = plans / "hostile.json"
    path.write_text(text)
    result = run("plan", "validate", str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith("routeshell: error: ")


def test_a_number_too_long_to_read_is_a_usage_error(plans: Path, tmp_path: Path) -> None:
    path = plans / "huge.json"
    path.write_text('{"version": 1, "steps": [{"op": "mkdir", "path": "a"}], "goal": 1' + "0" * 4300 + "}")
    validated = run("plan", "validate", str(path))
    assert (validated.returncode, validated.stderr.splitlines()[1:]) == (
        2,
        ["  /: not JSON: a number of more than 4300 digits"],
    )
    applied = run("plan", "apply", "--workspace", str(tmp_path), "--yes", str(path))
    assert_one_line_error(applied, 2, "invalid plan at /: not JSON: a number of more than 4300 digits")
    assert not (tmp_path / "a").exists()


def test_a_key_named_twice_in_one_object_is_refused(plans: Path, tmp_path: Path) -> None:
    """Python's reader would keep the last "path" (and delete important.txt); another reader, or the
    person who wrote it, the first: which is meant is not said, so nothing is done."""
    (tmp_path / "tmp.log").write_text("log\n")
    (tmp_path / "important.txt").write_text("keep\n")
    path = plans / "twice.json"
    path.write_text('{"version": 1, "steps": [{"op": "delete", "path": "tmp.log", "path": "important.txt"}]}')
    validated = run("plan", "validate", str(path))
    assert (validated.returncode, validated.stderr.splitlines()[1:]) == (
        2,
        ["  /: an object names the key 'path' twice, and which value is meant is not said"],
    )
    applied = run("plan", "apply", "--workspace", str(tmp_path), "--yes", str(path))
    assert_one_line_error(applied, 2, "invalid plan at /: an object names the key 'path' twice")
    assert (tmp_path / "important.txt").read_text() == "keep\n"
    assert (tmp_path / "tmp.log").exists()


def test_validate_unreadable_plan_files(plans: Path) -> None:
    assert_one_line_error(run("plan", "validate", str(plans / "missing.json")), 2, "missing.json", "cannot read")
    (plans / "latin1.json").write_bytes(b'{"goal": "caf\xe9"}')
    assert_one_line_error(run("plan", "validate", str(plans / "latin1.json")), 2, "not UTF-8")
    assert_one_line_error(run("plan", "validate", str(plans)), 2, "cannot read")


def test_an_endless_plan_is_read_no_further_than_64_mib(workspace: Path) -> None:
    assert_one_line_error(run("plan", "validate", "/dev/zero"), 2, "the plan /dev/zero is longer than 64 MiB")
    with open("/dev/zero", "rb") as zeros:
        argv = [ROUTESHELL, "plan", "apply", "-", "--yes", "--workspace", str(workspace)]
        endless = subprocess.run(argv, capture_output=True, text=True, stdin=zeros, timeout=120)
    assert_one_line_error(endless, 2, "the plan on standard input is longer than 64 MiB")


# -- apply: dry run, confirmation, events ---------------------------------------------------


def test_dry_run_shows_a_diff_and_changes_nothing(workspace: Path, plans: Path) -> None:
    path = write_plan(plans, "a", PLAN_A)
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "--- a/README.md" in result.stdout
    assert "+++ b/README.md" in result.stdout
    assert "-A sample workspace." in result.stdout
    assert "+A patched workspace." in result.stdout
    assert "--- /dev/null" in result.stdout
    assert "+++ b/notes.txt" in result.stdout
    assert "nothing was changed" in result.stdout
    assert tree(workspace) == before
    assert not (workspace / STATE_DIR).exists()


def test_dry_run_json_prints_previews(workspace: Path, plans: Path) -> None:
    path = write_plan(plans, "a", PLAN_A)
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(path), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert [event["type"] for event in events] == ["preview"] * 3
    assert [event["op"] for event in events] == ["write", "patch", "mkdir"]
    assert "+A patched workspace." in events[1]["diff"]
    assert tree(workspace) == before


HOSTILE_TEXT = "\x1b[2J\x1b]0;pwned\x07 [red]x[/red]\n\tindented\n"


def test_dry_run_shows_file_text_literally(workspace: Path, plans: Path) -> None:
    (workspace / "hostile.txt").write_text(HOSTILE_TEXT)
    document = plan(
        {"op": "patch", "path": "hostile.txt", "find": "indented", "replace": "INDENTED"},
        {"op": "write", "path": "new.txt", "content": HOSTILE_TEXT},
    )
    result = run_routeshell_bytes("plan", "apply", "--workspace", str(workspace),
                                  str(write_plan(plans, "hostile", document)), "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for raw in (b"\x1b", b"\x07", b"\t"):
        assert raw not in result.stdout + result.stderr
    out = result.stdout.decode()
    assert " \\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red]" in out  # a context line
    assert "+\\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red]" in out
    # A tab goes to the next stop of 8 after the diff's marker, as a terminal shows it; never "\\t".
    assert "-       indented" in out
    assert "+       INDENTED" in out
    assert "\\t" not in out


def test_a_newline_in_a_name_adds_no_line_to_the_diff(workspace: Path, plans: Path) -> None:
    document = plan({"op": "write", "path": "notes.txt\n@@ -0,0 +1 @@\n+hello world", "content": "curl x | sh\n"})
    path = str(write_plan(plans, "forged", document))
    name = "notes.txt\\n@@ -0,0 +1 @@\\n+hello world"
    diff = f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+curl x | sh\n"
    shown = plan_cmd("apply", workspace, path, "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:5] == ["    " + line for line in diff.splitlines()]
    # The diff as data: a consumer that prints it line by line gets the same four lines.
    (event,) = json_lines(plan_cmd("apply", workspace, path, "--dry-run", "--json").stdout)
    assert event["diff"] == diff


def test_run_step_output_is_shown_literally(workspace: Path, plans: Path) -> None:
    code = "import sys; sys.stdout.write('\\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red] done')"
    document = plan({"op": "run", "argv": [PYTHON, "-c", code]})
    result = run_routeshell_bytes("plan", "apply", "--workspace", str(workspace),
                                  str(write_plan(plans, "run", document)), "--yes")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout + result.stderr
    assert "\\x1b[2J\\x1b]0;pwned\\x07 [red]x[/red] done" in result.stdout.decode()


def run_routeshell_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The real command; stdout and stderr as the bytes a terminal would get."""
    return subprocess.run([ROUTESHELL, *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_apply_without_yes_and_no_terminal_changes_nothing(workspace: Path, plans: Path) -> None:
    path = write_plan(plans, "a", PLAN_A)
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(path))
    assert_one_line_error(result, 2, "--yes")
    assert tree(workspace) == before
    assert not (workspace / STATE_DIR).exists()


@pytest.mark.parametrize(
    ("step", "edited"),
    [
        pytest.param({"op": "write", "path": "README.md", "content": "plan\n", "overwrite": True}, "README.md",
                     id="overwrite"),
        # The file stops matching the selection while the question is open: it must not be deleted.
        pytest.param({"op": "delete", "match": {"glob": "docs/*.md", "contains": "read me"}}, "docs/guide.md",
                     id="selection"),
    ],
)  # fmt: skip
def test_what_changed_while_the_question_was_open_is_never_overwritten(
    workspace: Path, plans: Path, step: dict[str, Any], edited: str
) -> None:
    import pexpect

    path = write_plan(plans, "p", plan(step))
    child = pexpect.spawn(ROUTESHELL, ["plan", "apply", str(path), "--workspace", str(workspace)],
                          encoding="utf-8", timeout=30)  # fmt: skip
    child.expect_exact("[y/N] ")
    (workspace / edited).write_text("USER EDIT\n")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1, child.before
    assert f"routeshell: error: {edited!r} was changed since the preview; nothing was applied" in child.before
    assert (workspace / edited).read_text() == "USER EDIT\n"


def test_apply_yes_applies(workspace: Path, plans: Path) -> None:
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(write_plan(plans, "a", PLAN_A)), "--yes")
    assert result.returncode == 0, result.stderr
    assert "applied 3 step(s) as plan " in result.stdout
    assert "routeshell plan undo" in result.stdout
    assert (workspace / "notes.txt").read_text() == "first\n"
    assert (workspace / "README.md").read_text() == "# Sample\n\nA patched workspace.\n"
    assert (workspace / "build" / "out").is_dir()
    after = tree(workspace)
    assert set(after) - set(before) == {"notes.txt", "build", "build/out"}


def test_apply_reads_the_plan_from_standard_input(workspace: Path) -> None:
    result = run(
        "plan", "apply", "-", "--yes", "--workspace", str(workspace), stdin_text=json.dumps(plan(PATCH_README))
    )
    assert result.returncode == 0, result.stderr
    assert "A patched workspace." in (workspace / "README.md").read_text()


def test_apply_json_prints_events(workspace: Path, plans: Path) -> None:
    document = plan(
        {"op": "write", "path": "notes.txt", "content": "first\n"},
        {"op": "run", "argv": [PYTHON, "-c", "print(open('notes.txt').read().strip(), 'seen by run')"]},
    )
    result = plan_cmd("apply", workspace, str(write_plan(plans, "run", document)), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert all("type" in event for event in events)
    assert [event["type"] for event in events] == ["preview", "preview", "step", "step", "applied"]
    run_event = events[3]
    assert run_event["op"] == "run"
    assert run_event["exit_code"] == 0
    assert "first seen by run" in run_event["tail"]
    journal = events[-1]["journal"]
    assert events[-1]["steps"] == 2
    assert (workspace / STATE_DIR / "journal" / journal).is_dir()
    history = json_lines(plan_cmd("history", workspace, "--json").stdout)
    assert [(row["id"], row["state"]) for row in history] == [(journal, "applied")]


# -- failure and rollback -------------------------------------------------------------------


def test_failing_last_step_rolls_everything_back(workspace: Path, plans: Path) -> None:
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(write_plan(plans, "fail", FAILING_LAST)), "--yes")
    assert_one_line_error(result, 1, "step 9 (run) failed", "exited with 1", "rolled back")
    assert tree(workspace) == before
    history = json_lines(plan_cmd("history", workspace, "--json").stdout)
    assert [row["state"] for row in history] == ["rolled-back"]


def test_failing_last_step_json_rolls_everything_back(workspace: Path, plans: Path) -> None:
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(write_plan(plans, "fail", FAILING_LAST)), "--yes", "--json")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    events = json_lines(result.stdout)
    assert [event["type"] for event in events].count("step") == 8
    assert "applied" not in [event["type"] for event in events]
    assert tree(workspace) == before


def test_delete_of_a_missing_file_fails_before_changing_anything(workspace: Path, plans: Path) -> None:
    document = plan(
        {"op": "write", "path": "new.txt", "content": "new\n"},
        PATCH_README,
        {"op": "delete", "path": "no-such-file.txt"},
    )
    before = tree(workspace)
    result = plan_cmd("apply", workspace, str(write_plan(plans, "fail", document)), "--yes")
    assert_one_line_error(result, 1, "step 3 (delete) would fail", "no-such-file.txt", "nothing was changed")
    assert tree(workspace) == before


def test_writing_through_a_symlink_out_of_the_workspace_is_refused(workspace: Path, plans: Path) -> None:
    target = Path("/etc") / "routeshell-escape-test.txt"
    document = plan({"op": "write", "path": "outside-link/routeshell-escape-test.txt", "content": "escaped\n"})
    before = tree(workspace)
    try:
        result = plan_cmd("apply", workspace, str(write_plan(plans, "escape", document)), "--yes")
        assert not target.exists()
    finally:
        if target.exists():
            target.unlink()
    assert_one_line_error(result, 1, "would fail", "outside the workspace")
    assert tree(workspace) == before


@pytest.mark.parametrize(
    ("step", "link"),
    [
        ({"op": "delete", "match": {"glob": "src-link/*.py"}}, "src-link"),
        ({"op": "copy", "match": {"glob": "src-link/pkg/*.py"}, "to": "out"}, "src-link"),
        ({"op": "delete", "match": {"glob": "src/pkg-link/*"}}, "src/pkg-link"),
    ],
    ids=["whole-start", "copy-below", "deeper"],
)
def test_a_match_through_a_symlinked_directory_is_refused_naming_it(
    workspace: Path, plans: Path, step: dict[str, Any], link: str
) -> None:
    (workspace / "src-link").symlink_to("src")
    (workspace / "src" / "pkg-link").symlink_to("pkg")
    before = tree(workspace)
    path = str(write_plan(plans, "through", plan(step)))
    expected = (
        f"/steps/0/match/glob: '{link}' is a symlink: a match never goes through one (a link is an entry, never a"
        " way in); glob the directory it leads to"
    )
    for args in (["--dry-run"], ["--yes"]):
        result = plan_cmd("apply", workspace, path, *args)
        assert_one_line_error(result, 2, expected)
    assert tree(workspace) == before


def test_a_match_through_a_symlink_leading_outside_is_refused_as_one(workspace: Path, plans: Path) -> None:
    document = plan({"op": "delete", "match": {"glob": "outside-link/*"}})
    result = plan_cmd("apply", workspace, str(write_plan(plans, "out", document)), "--yes")
    assert_one_line_error(
        result,
        2,
        "'outside-link' is a symlink leading outside the workspace: a match never goes through one, nor outside the"
        " workspace",
    )


# -- undo and history -----------------------------------------------------------------------


def test_missing_workspace_is_a_usage_error(tmp_path: Path, plans: Path) -> None:
    path = write_plan(plans, "a", PLAN_A)
    assert_one_line_error(plan_cmd("apply", tmp_path / "missing", str(path), "--yes"), 2, "is not a directory")
    assert_one_line_error(plan_cmd("history", tmp_path / "missing"), 2, "is not a directory")


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([{"op": "write", "path": ".git/x", "content": "a"}], id="invalid-as-written"),
        pytest.param([{"op": "rename", "paths": ["a.txt", "b.txt"], "template": "same.txt"}], id="rename-conflict"),
        pytest.param([{"op": "delete", "match": {"glob": "*.nothing"}}], id="selects-nothing"),
    ],
)
def test_an_invalid_plan_is_named_by_its_file_whatever_finds_it(
    tmp_path: Path, plans: Path, steps: list[dict[str, Any]]
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a\n")
    (ws / "b.txt").write_text("b\n")
    path = write_plan(plans, "rename_git", plan(*steps))
    for args in (("--dry-run",), ("--yes",)):
        result = plan_cmd("apply", ws, *args, str(path))
        assert_one_line_error(result, 2, f"routeshell: error: {path}: invalid plan at /steps/0")
    piped = run("plan", "apply", "--workspace", str(ws), "--yes", "-", stdin_text=path.read_text())
    assert_one_line_error(piped, 2, "routeshell: error: <stdin>: invalid plan at /steps/0")
    assert sorted(p.name for p in ws.iterdir() if p.name != STATE_DIR) == ["a.txt", "b.txt"]
