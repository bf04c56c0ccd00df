"""The Train pane's job helpers: the form check, the command, reading event lines, endings, models and cards."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tui.train_job import (
    MAX_CARD,
    FormError,
    TrainRequest,
    ending_line,
    event_summary,
    find_models,
    parse_event_line,
    parse_form,
    read_model_card,
)

STEP = {"type": "train_step", "stage": "pretrain", "step": 3, "max_steps": 30, "loss": 4.5, "lr": 0.001,
        "tokens_per_s": 1234.5, "elapsed_s": 2.0, "eta_s": 18.0}  # fmt: skip


def test_the_form_builds_the_command(tmp_path: Path) -> None:
    request = parse_form("pretrain", "nano", "a.txt 'my corpus/b.txt'", " 30 ", "out", base=tmp_path)
    assert request == TrainRequest(
        "pretrain", "nano", tmp_path / "out", (str(tmp_path / "a.txt"), str(tmp_path / "my corpus/b.txt")), 30
    )
    argv = request.argv(resume=True)
    # Through the orphan guard: the job gets SIGINT (checkpoint, then stop) when the app is gone.
    assert argv[:5] == [sys.executable, "-m", "tui.orphan_guard", "SIGINT", "train"]
    assert argv[5:] == [
        "pretrain", "--out", str(tmp_path / "out"), "--preset", "nano", "--data", str(tmp_path / "a.txt"),
        "--data", str(tmp_path / "my corpus/b.txt"), "--max-steps", "30", "--resume", "--events",
    ]  # fmt: skip
    assert shlex.split(request.shown())[:2] == ["routeshell", "train"]
    assert parse_form("all", "tiny", "stdlib", "", "/abs", base=tmp_path).argv()[5:] == [
        "all", "--out", "/abs", "--preset", "tiny", "--data", "stdlib", "--events"
    ]  # fmt: skip


def test_the_command_shown_is_one_printable_line_bash_reads_back(tmp_path: Path) -> None:
    # A folder named with an escape sequence and a line break: the line shown (the Train pane's log,
    # the model card's command) moves no cursor and pastes back as the same words.
    out = "out\x1b[2J\nrun's"
    request = parse_form("pretrain", "nano", "", "", out, base=tmp_path)
    shown = request.shown()
    assert shown.isprintable()
    read = subprocess.run(["bash", "-c", f'printf "%s\\0" {shown}'], capture_output=True, check=True).stdout
    assert read.split(b"\0")[:-1] == [word.encode() for word in ["routeshell", *request.words()]]


@pytest.mark.parametrize(
    ("steps", "out", "data", "says"),
    [
        ("30", "  ", "", "the output directory is empty"),
        ("0", "out", "", "max steps must be a positive whole number, not '0'"),
        ("-3", "out", "", "not '-3'"),
        ("ten", "out", "", "not 'ten'"),
        ("1.5", "out", "", "not '1.5'"),
        ("3", "out", "'unclosed", "the data paths do not parse"),
    ],
)
def test_bad_form_input_is_one_line(tmp_path: Path, steps: str, out: str, data: str, says: str) -> None:
    with pytest.raises(FormError) as caught:
        parse_form("pretrain", "nano", data, steps, out, base=tmp_path)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_event_lines() -> None:
    assert parse_event_line(json.dumps(STEP)) == (STEP, None)
    assert parse_event_line("Some warning from a library") == (None, None)
    assert parse_event_line("{not json") == (None, None)
    assert parse_event_line("[1, 2]") == (None, None)
    event, problem = parse_event_line(json.dumps({"type": "plan", "plan": {}}))
    assert event is None
    assert problem is not None
    assert "not a training event" in problem
    event, problem = parse_event_line(json.dumps({**STEP, "loss": "high"}))
    assert event is None
    assert problem is not None
    assert "train_step" in problem
    assert "step 3/30 loss 4.5000" in event_summary(STEP)


def test_data_with_no_validation_split_says_training_runs_without_validation() -> None:
    ready = {"type": "data_ready", "stage": "sft", "documents": {"train": 2, "validation": 0, "test": 0},
             "tokens": {"train": 60, "validation": 0, "test": 0}, "cached": False, "seconds": 0.1}  # fmt: skip
    assert event_summary(ready).endswith("so training runs without validation")
    ready["tokens"] = {"train": 60, "validation": 30, "test": 0}
    assert "without validation" not in event_summary(ready)


def test_endings() -> None:
    assert ending_line(0, None, None, False) == "done"
    assert ending_line(130, None, None, True).startswith("interrupted (exit 130)")
    assert ending_line(2, "no such file: 'x.txt'", "routeshell: error: ...", False) == (
        "stopped on bad input (exit 2): no such file: 'x.txt'"
    )
    assert ending_line(1, None, "routeshell: error: out of memory", False) == (
        "failed (exit 1): routeshell: error: out of memory"
    )
    assert ending_line(-9, None, None, False) == "the job died: killed by SIGKILL (exit code -9)"
    assert ending_line(139, None, "Segmentation fault", False) == "the job died with exit code 139: Segmentation fault"


def test_finished_models_and_their_cards(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for name in ("pretrain", "sft", "tokenizer", "checkpoint-10"):
        (out / name).mkdir(parents=True)
    for name in ("pretrain", "sft"):
        (out / name / "config.json").write_text("{}")
        (out / name / "model.safetensors").write_bytes(b"")
    (out / "junk").write_bytes(b"\xff")
    assert find_models(out) == [out / "pretrain", out / "sft"]
    assert find_models(tmp_path / "missing") == []
    assert read_model_card(out / "sft").startswith("(no model card")
    (out / "sft" / "README.md").write_bytes(b"# card \xff\n" + b"x" * MAX_CARD)
    card = read_model_card(out / "sft")
    assert card.startswith("# card \udcff\n")
    assert card.endswith("… (cut)")
