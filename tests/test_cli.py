"""The command line as a user meets it: real subprocesses, exit codes and stderr."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from engine.config import profiles
from tests.helpers import assert_one_line_error, run_routeshell


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
    assert "exit codes:" in result.stdout
    # Commands arrive with the features that make them work; none is listed before.
    for future in ("route", "train", "eval", "serve"):
        assert f"\n    {future} " not in result.stdout


def test_unknown_option_is_one_line_and_exit_2() -> None:
    assert_one_line_error(run("--bogus"), 2, "unrecognized arguments: --bogus")


def test_profiles_list() -> None:
    result = run("profiles", "list")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ci", "local", "ollama", "openai", "vllm"]
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
