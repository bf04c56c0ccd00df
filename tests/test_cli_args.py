"""Arguments no command can use, refused when they are read: one line, exit code 2, nothing replaced
by a default and nothing printed raw. Real subprocesses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, run_routeshell
from tests.scripted_llm import ScriptedLLM

#: Keys no HTTP header can carry, and the character each is refused for.
BAD_KEYS = {"ab\ncd": "a line break", "cl\u00e9": "not ASCII", "k\x1b[31m": "an escape", " sk-7f3a": "a space"}


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert_one_line_error(result, 2, *needles)
    assert result.stderr.strip().isprintable(), result


@pytest.mark.parametrize("key", BAD_KEYS, ids=["newline", "non-ascii", "escape", "space"])
def test_an_api_key_no_header_can_carry_is_refused_and_never_shown(tmp_path: Path, key: str) -> None:
    # A server started with such a key answered every client 401 (or failed on a key not ASCII).
    for command in (["serve", "--model", str(tmp_path)],
                    ["eval", "judge", "--data", str(tmp_path), "--model-endpoint", "http://127.0.0.1:9/v1",
                     "--judge-endpoint", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "out")]):  # fmt: skip
        result = run_routeshell(*command, "--api-key", key)
        assert_refused(result, "argument --api-key", BAD_KEYS[key])
        assert key.strip() not in result.stderr


def test_an_empty_api_key_is_refused(tmp_path: Path) -> None:
    assert_refused(run_routeshell("serve", "--model", str(tmp_path), "--api-key", ""), "--api-key", "is empty")


@pytest.mark.parametrize("key", BAD_KEYS, ids=["newline", "non-ascii", "escape", "space"])
def test_an_api_key_from_the_environment_no_header_can_carry_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("ROUTESHELL_API_KEY", key)
    result = run_routeshell("serve", "--model", str(tmp_path), "--host", "0.0.0.0")
    assert_refused(result, "the API key in $ROUTESHELL_API_KEY", BAD_KEYS[key])
    monkeypatch.delenv("ROUTESHELL_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", key)
    teacher = ("--labeler", "teacher", "--teacher-endpoint", "http://127.0.0.1:9/v1")
    result = run_routeshell("train", "labels", "--source", "files", "--count", "1", *teacher, "--out",
                            str(tmp_path / "labels.jsonl"))  # fmt: skip
    assert_refused(result, "the API key in $OPENAI_API_KEY", BAD_KEYS[key])
    assert not (tmp_path / "labels.jsonl").exists()


@pytest.mark.parametrize("key", BAD_KEYS, ids=["newline", "non-ascii", "escape", "space"])
def test_a_profile_api_key_no_header_can_carry_is_refused_before_any_request(
    scripted_llm: ScriptedLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    # A key that is not ASCII ended run in a traceback; one with a line break in "unreachable".
    monkeypatch.setenv("OPENAI_API_KEY", key)
    result = run_routeshell("--profile", "ci", "run", "--workspace", str(tmp_path), "--base-url",
                            scripted_llm.base_url, "add a README")  # fmt: skip
    assert_refused(result, "the API key in profile ci's llm.default.api_key", BAD_KEYS[key])
    assert scripted_llm.requests == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--name", ""], "argument --name: the model name is empty"),
        (["--name", " \t"], "argument --name: the model name is empty"),
        (["--name", "tiny\x1b[31m"], "argument --name: the model name holds an escape"),
        (["--name", " tiny"], "has white space at an end"),
        (["--adapter", "\x1b[2J=adapter"], "argument --adapter: the model name holds an escape"),
    ],
    ids=["empty", "white-space", "escape", "padded", "adapter"],
)
def test_a_model_name_serve_cannot_offer_is_refused(tmp_path: Path, args: list[str], needle: str) -> None:
    # An empty --name was replaced by the directory's name without a word.
    assert_refused(run_routeshell("serve", "--model", str(tmp_path), *args), needle)


def test_an_empty_model_for_run_is_refused_not_replaced_by_the_profile_one(tmp_path: Path) -> None:
    result = run_routeshell("--profile", "ci", "run", "--workspace", str(tmp_path), "--model", "", "add a README")
    assert_refused(result, "argument --model: the model name is empty")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "sft", "--out", ""],
        ["serve", "--model", ""],
        ["route", "--router", "", "add a README"],
        ["export", "--merge", "--adapter", "", "--out", "merged"],
        ["eval", "router", "--data", ""],
    ],
    ids=["train-out", "serve-model", "route-router", "export-adapter", "eval-data"],
)
def test_an_empty_path_is_refused_not_taken_for_the_current_directory(tmp_path: Path, args: list[str]) -> None:
    # "" was Path(""), the current directory: train wrote into it, serve loaded it as a model.
    result = run_routeshell(*args, cwd=tmp_path)
    assert_refused(result, "the path is empty")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_preset_is_refused_not_replaced_by_the_default(tmp_path: Path) -> None:
    result = run_routeshell("train", "tokenizer", "--preset", "", "--out", str(tmp_path / "tok"))
    assert_refused(result, "argument --preset: the name is empty")
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [("--lora-dropout", "nan", "not a dropout rate"), ("--lora-dropout", "1", "not a dropout rate"),
     ("--weight-decay", "nan", "0 or more"), ("--weight-decay", "-1", "0 or more")],
)  # fmt: skip
def test_a_training_rate_that_is_no_rate_is_refused_before_training(
    tmp_path: Path, option: str, value: str, needle: str
) -> None:
    # They went on to the trainer: a dropout of NaN or 1, a negative or NaN weight decay.
    (tmp_path / "labels.jsonl").write_text("")
    result = run_routeshell("train", "router", "--kind", "lora", "--data", str(tmp_path / "labels.jsonl"),
                            "--out", str(tmp_path / "out"), option, value)  # fmt: skip
    assert_refused(result, f"argument {option}", needle)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["labels.jsonl"]


#: A command of each kind that takes --seed, run in an empty directory.
SEED_COMMANDS = {
    "train pretrain": ["train", "pretrain", "--preset", "nano", "--max-steps", "1", "--out", "out"],
    "train sft": ["train", "sft", "--max-steps", "1", "--out", "out"],
    "train planner": ["train", "planner", "--max-steps", "1", "--out", "out"],
    "eval router": ["eval", "router"],
    "eval planner": ["eval", "planner"],
    "generate": ["generate", "--model", "model", "def hello"],
}


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", "4294967296"])
@pytest.mark.parametrize("command", SEED_COMMANDS)
def test_a_seed_the_trainer_cannot_take_is_refused_before_anything_is_written(
    tmp_path: Path, command: str, seed: str
) -> None:
    # Such a seed went on to the trainer, which failed after OUT was marked as holding a run.
    result = run_routeshell(*SEED_COMMANDS[command], "--seed", seed, cwd=tmp_path)
    assert_refused(result, "argument --seed", "not a whole number from 0 to 4294967295")
    assert list(tmp_path.iterdir()) == []
