"""``routeshell train``: every bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_routeshell


def refused(*args: str) -> str:
    """Run ``routeshell train ARGS``; check it failed with one error line and exit code 2; return that line.

    What the progress display printed before the error (the cleaning report) may come first.
    """
    result = run_routeshell("train", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("routeshell: error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(errors[0]), result.stderr
    return errors[0]


def test_a_missing_data_file(tmp_path: Path) -> None:
    line = refused("pretrain", "--preset", "nano", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"))
    assert "data file not found" in line
    assert "nope.txt" in line


def test_an_empty_corpus(tmp_path: Path) -> None:
    (tmp_path / "tiny.txt").write_text("too short\n")
    line = refused("pretrain", "--preset", "nano", "--data", str(tmp_path / "tiny.txt"), "--out", str(tmp_path / "o"))
    assert "empty" in line
    assert "--data" in line


def test_an_unknown_preset(tmp_path: Path) -> None:
    line = refused("pretrain", "--preset", "huge", "--out", str(tmp_path / "o"))
    assert "unknown preset 'huge'" in line
    assert "nano" in line


def test_an_output_directory_that_holds_something_else(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    line = refused("tokenizer", "--preset", "nano", "--out", str(tmp_path / "mine"))
    assert "not a routeshell training run" in line
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["thesis.tex"]


def test_an_output_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "is a file" in refused("tokenizer", "--preset", "nano", "--out", str(tmp_path / "f"))


def test_a_corrupt_base_checkpoint(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 100}))
    (base / "model.safetensors").write_bytes(b"\x00garbage\x1b[31m")
    line = refused("sft", "--base", str(base), "--out", str(tmp_path / "o"))
    assert "cannot load the model" in line
    assert "\x1b" not in line


def test_a_corrupt_checkpoint_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    (out / "routeshell-train.json").write_text(json.dumps({"stage": "pretrain", "status": "interrupted"}))
    (out / "checkpoints" / "checkpoint-5" / "trainer_state.json").write_text("{not json")
    line = refused("pretrain", "--preset", "nano", "--out", str(out), "--resume")
    assert "checkpoint-5" in line
    assert "corrupt" in line
    assert "mv " in line


def test_an_output_path_that_is_not_utf8(tmp_path: Path) -> None:
    line = refused("tokenizer", "--preset", "nano", "--out", str(tmp_path) + "/caf\udce9")
    assert "not a UTF-8 path" in line
    assert "caf\\xe9" in line
    assert not any(tmp_path.iterdir())


def test_sft_without_a_base(tmp_path: Path) -> None:
    assert "--base" in refused("sft", "--out", str(tmp_path / "o"))


@pytest.mark.parametrize(
    ("option", "value"), [("--max-steps", "0"), ("--lr", "nan"), ("--batch-size", "-1"), ("--epochs", "x")]
)
def test_bad_numbers_are_usage_errors(tmp_path: Path, option: str, value: str) -> None:
    line = refused("pretrain", "--out", str(tmp_path / "o"), option, value)
    assert option in line


def test_help_names_every_stage_and_the_exit_codes() -> None:
    result = run_routeshell("train", "--help")
    assert result.returncode == 0
    for word in ("tokenizer", "pretrain", "sft", "reasoning", "all", "--resume", "torchrun", "130"):
        assert word in result.stdout


def test_a_corpus_whose_only_document_is_held_out(tmp_path: Path) -> None:
    # One long file whose hash put it in a held-out split was refused as "too short for one
    # training sequence", which more text in the same file would not have changed.
    from engine.tinyllm.corpus import text_hash

    lines = [f"def handler_{i}(event):\n    return event.get('key_{i}', {i})\n" for i in range(200)]
    text = next(
        text
        for salt in range(100)
        if int.from_bytes(text_hash(text := f"# module {salt}\n" + "".join(lines)), "big") % 10 >= 8
    )
    (tmp_path / "one.py").write_text(text)
    line = refused("pretrain", "--preset", "nano", "--data", str(tmp_path / "one.py"), "--out", str(tmp_path / "o"))
    assert "training split is empty" in line
    assert "the 1 document(s) given all went to the held-out splits" in line
    assert "give at least 3 document(s) with --data" in line
