"""The command line as a user meets it: real subprocesses, exit codes and stderr."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import profiles
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell
from tui.cli import build_parser, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_routeshell(*args)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "routeshell 0.1.0"


def test_help_tells_what_exists() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "profiles" in result.stdout
    assert "\n    plan " in result.stdout
    assert "\n    run " in result.stdout
    assert "\n    train " in result.stdout
    assert "\n    serve " in result.stdout
    assert "\n    generate " in result.stdout
    assert "\n    eval " in result.stdout
    assert "\n    route " in result.stdout
    assert "\n    export " in result.stdout
    assert "exit codes:" in result.stdout


def commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The words of every command and action of ``parser``, ``()`` for routeshell itself."""
    yield words
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*words, name))


def test_every_command_lists_its_exit_codes_one_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    # route and export ran their list together into one paragraph, and listed the codes of the
    # whole program (3 for an endpoint) though they never give them.
    listed = {}
    for words in commands(build_parser()):
        with pytest.raises(SystemExit) as ended:
            main([*words, "--help"])
        assert ended.value.code == 0
        text = capsys.readouterr().out
        if len(words) > 1 and "\nexit codes" not in text:
            continue  # an action: the list of its command holds for it
        header, *lines = text.partition("\nexit codes")[2].split("\n")
        assert header.endswith(":"), (words, header)
        codes = []
        for line in lines[: lines.index("")]:
            code = re.match(r"  (\d+) {2,}\S", line)
            if code:
                codes.append(int(code[1]))
            else:  # the meaning goes on under the one before
                assert re.match(r" {7}\S", line), (words, line)
        assert codes == sorted(set(codes)), (words, codes)
        assert {0, 2} <= set(codes), (words, codes)
        listed[" ".join(words)] = codes
    assert {"profiles", "run", "sessions", "plan", "trash", "audit", "files", "train", "serve", "generate", "eval",
            "route", "export"} <= set(listed)  # fmt: skip
    assert listed["route"] == listed["export"] == [0, 1, 2, 130]
    assert listed["plan"] == listed["files"] == listed["trash"] == listed["audit"] == [0, 1, 2, 130, 143]
    # eval stops on SIGTERM as the workspace commands do, each action too.
    assert all(143 in listed[name] for name in ("eval", "eval judge", "eval router", "eval planner")), listed


def test_every_help_fits_a_terminal_of_100_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Descriptions shown as written (not reflowed) were single lines of up to 295 characters.
    monkeypatch.setenv("COLUMNS", "100")
    for words in commands(build_parser()):
        with pytest.raises(SystemExit):
            main([*words, "--help"])
        for line in capsys.readouterr().out.splitlines():
            assert len(line) <= 100, (words, line)


def test_unknown_option_is_one_line_and_exit_2() -> None:
    assert_one_line_error(run("--bogus"), 2, "unrecognized arguments: --bogus")


def test_profiles_list() -> None:
    result = run("profiles", "list")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["ci", "files", "local", "ollama", "openai", "vllm"]
    rows = json.loads(run("profiles", "list", "--json").stdout)
    assert {row["origin"] for row in rows} == {"shipped"}


def test_profiles_show_masks_secrets() -> None:
    os.environ["OPENAI_API_KEY"] = "sk-test-secret-value-7890"
    try:
        result = run("profiles", "show", "openai")
        as_json = json.loads(run("profiles", "show", "openai", "--json").stdout)
    finally:
        del os.environ["OPENAI_API_KEY"]
    assert result.returncode == 0
    assert "secret" not in result.stdout
    assert 'api_key = "****7890"' in result.stdout
    assert "[llm.default]" in result.stdout
    assert as_json["llm"]["default"]["api_key"] == "****7890"
    assert Path(as_json["workspace"]).is_absolute()


def test_broken_profile_gives_file_and_key_and_exit_2() -> None:
    directory = profiles.user_dir()
    directory.mkdir(parents=True)
    broken = directory / "broken.toml"
    broken.write_text('extends = "local"\n[sandbox]\ncpu_s = "forever"\n')
    assert_one_line_error(run("profiles", "show", "broken"), 2, str(broken), "sandbox.cpu_s", "integer")
    assert_one_line_error(run("--profile", "broken"), 2, str(broken), "sandbox.cpu_s")
    listing = run("profiles", "list")
    assert listing.returncode == 2
    assert "broken" in listing.stdout
    assert "INVALID" in listing.stdout
    assert_one_line_error(listing, 2, str(broken))


def test_invalid_toml_exit_2() -> None:
    directory = profiles.user_dir()
    directory.mkdir(parents=True)
    (directory / "bad.toml").write_text("workspace = [\n")
    assert_one_line_error(run("profiles", "show", "bad"), 2, "bad.toml", "invalid TOML")


def test_unknown_profile() -> None:
    assert_one_line_error(run("--profile", "nope"), 2, "unknown profile 'nope'")


def test_missing_workspace_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run("--workspace", str(tmp_path / "missing")), 2, "is not a directory")


def test_shell_needs_a_terminal(workspace: Path) -> None:
    assert_one_line_error(run("--workspace", str(workspace)), 2, "needs an interactive terminal")


@pytest.mark.parametrize("args", [["profiles"], ["profiles", "show"], ["profiles", "frob"]])
def test_incomplete_commands_are_usage_errors(args: list[str]) -> None:
    result = run(*args)
    assert_one_line_error(result, 2)


# -- which directory becomes a workspace ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--workspace", "", "sessions"],
        ["sessions", "--workspace", ""],
        ["plan", "history", "--workspace", ""],
        ["run", "--workspace", "", "a task"],
        ["--workspace", "", "--plain"],
    ],
    ids=["top-level", "sessions", "plan", "run", "plain"],
)
def test_an_empty_workspace_is_refused(tmp_path: Path, args: list[str]) -> None:
    result = run_routeshell("--profile", "ci", *args, cwd=tmp_path)
    assert_one_line_error(result, 2, "--workspace is empty")
    assert list(tmp_path.iterdir()) == []


def with_home(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([ROUTESHELL, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize("where", ["root", "home", "outside"])
def test_an_unusual_workspace_needs_yes_without_a_terminal(tmp_path: Path, where: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "outside").mkdir()
    directory = {"root": Path("/"), "home": home, "outside": tmp_path / "outside"}[where]
    for args in (["sessions", "--workspace", str(directory)], ["--workspace", str(directory), "plan", "history"]):
        result = with_home(home, *args)
        assert_one_line_error(result, 2, f"not adopting {directory} as a workspace", "pass --yes: routeshell --yes ")
        assert not (directory / ".routeshell").exists()
    # The command it gives works when pasted: --yes where every command takes it.
    pasted = result.stderr.strip().split("pass --yes: ", 1)[1].replace("routeshell", shlex.quote(ROUTESHELL), 1)
    env = {**os.environ, "HOME": str(home)}
    again = subprocess.run(["bash", "-c", pasted], capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again
    assert with_home(home, "--yes", "sessions", "--workspace", str(directory)).returncode == 0
    assert with_home(home, "sessions", "--yes", "--workspace", str(directory)).returncode == 0


def test_a_workspace_adopted_before_or_inside_home_needs_no_yes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    outside = tmp_path / "outside"
    (outside / ".routeshell").mkdir(parents=True)
    assert with_home(home, "sessions", "--workspace", str(home / "project")).returncode == 0
    assert with_home(home, "sessions", "--workspace", str(outside)).returncode == 0
    # The profile's workspace (./workspace) follows the same rule, and a command that only reads creates nothing.
    result = with_home(home, "--profile", "ci", "--plain", cwd=tmp_path)
    assert_one_line_error(result, 2, "pass --yes")
    assert not (tmp_path / "workspace").exists()
    result = with_home(home, "--profile", "ci", "sessions", cwd=tmp_path)
    assert result.returncode == 0, result
    assert result.stdout.startswith("no sessions in ")
    assert not (tmp_path / "workspace").exists()


@pytest.mark.parametrize(("answer", "code"), [("y", 0), ("n", 2)])
def test_an_unusual_workspace_is_asked_for_at_a_terminal(tmp_path: Path, answer: str, code: int) -> None:
    import pexpect

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    child = pexpect.spawn(ROUTESHELL, ["sessions", "--workspace", "/"], env=env, encoding="utf-8", timeout=30)
    child.expect_exact("use / (the root directory) as a workspace?")
    child.expect_exact("[y/N] ")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code


def test_the_undo_hint_of_plan_apply_works_when_pasted(tmp_path: Path) -> None:
    import shlex

    ws = tmp_path / "a 'quoted' $HOME ws"
    ws.mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "steps": [{"op": "write", "path": "new.txt", "content": "x\n"}]}))
    applied = run_routeshell("--profile", "ci", "plan", "apply", str(plan), "--yes", "--workspace", str(ws))
    assert applied.returncode == 0, applied
    hint = applied.stdout.strip().split("undo with: ", 1)[1]
    words = shlex.split(hint)
    assert words[:3] == ["routeshell", "--profile", "ci"]
    undone = subprocess.run([ROUTESHELL, *words[1:]], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert undone.returncode == 0, undone
    assert not (ws / "new.txt").exists()


def test_an_error_naming_hostile_text_reaches_stderr_escaped(tmp_path: Path) -> None:
    plan = tmp_path / "plan\x1b]0;pwned\x07\x1b[2J.json"
    result = run("plan", "validate", str(plan))
    assert result.returncode == 2
    assert "\x1b" not in result.stderr
    assert "\x07" not in result.stderr
    assert "\\x1b]0;pwned\\x07" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
