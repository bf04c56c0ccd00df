"""--resume continues only a run of the same stage and model shape; anything else is refused in one
line, exit code 2, with OUT as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.engine.tinyllm.training_support import TrainRun, run_train
from tests.helpers import assert_one_line_error, run_routeshell


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def copy_run(pretrained: tuple[Path, TrainRun], to: Path, *, stage: str | None = None) -> Path:
    """A copy of the finished nano pretraining run; its marker says ``stage`` when given."""
    shutil.copytree(pretrained[0], to)
    if stage is not None:
        marker = json.loads((to / "routeshell-train.json").read_text())
        (to / "routeshell-train.json").write_text(json.dumps({**marker, "stage": stage}))
    return to


def test_a_tokenizer_never_resumes_into_a_pretraining_run(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    out = copy_run(pretrained, tmp_path / "mixT")
    before = snapshot(out)
    result = run_routeshell("train", "tokenizer", "--preset", "nano", "--data", str(corpus_dir), "--resume",
                            "--out", str(out))  # fmt: skip
    assert_one_line_error(result, 2, "holds a 'train pretrain' run, not a 'train tokenizer' run")
    assert snapshot(out) == before


def test_pretraining_never_resumes_an_sft_run(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    out = copy_run(pretrained, tmp_path / "mix3", stage="sft")
    before = snapshot(out)
    result = run_routeshell("train", "pretrain", "--preset", "nano", "--data", str(corpus_dir), "--tokenizer",
                            str(out / "tokenizer"), "--max-steps", "4", "--resume", "--out", str(out))  # fmt: skip
    assert_one_line_error(result, 2, "holds a 'train sft' run, not a 'train pretrain' run")
    assert snapshot(out) == before
    # and train all never resumes a single stage's run
    result = run_routeshell("train", "all", "--preset", "nano", "--resume", "--out", str(out))
    assert_one_line_error(result, 2, "not a 'train all' run")
    assert snapshot(out) == before


def test_another_preset_is_refused_before_the_marker_is_touched(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    out = copy_run(pretrained, tmp_path / "mix5")
    before = snapshot(out)
    result = run_routeshell("train", "pretrain", "--preset", "tiny", "--data", str(corpus_dir), "--tokenizer",
                            str(out / "tokenizer"), "--max-steps", "30", "--resume", "--out", str(out))  # fmt: skip
    assert_one_line_error(result, 2, "holds a nano model (hidden_size 128", "not the tiny one asked for")
    assert snapshot(out) == before


def test_another_tokenizer_is_refused_at_the_checkpoint(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "vocab-600.json"
    config.write_text(json.dumps({"base": "nano", "vocab_size": 600}))
    tokenizer = tmp_path / "tok600"
    made = run_train("tokenizer", "--config", str(config), "--data", str(corpus_dir), "--out", str(tokenizer))
    assert made.returncode == 0, made.stderr
    out = copy_run(pretrained, tmp_path / "mix6")
    before = snapshot(out)
    run = run_train("pretrain", "--preset", "nano", "--data", str(corpus_dir), "--tokenizer", str(tokenizer),
                    "--max-steps", "50", "--resume", "--out", str(out), cache=tmp_path / "cache")  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "is of another model (vocab_size" in run.stderr
    assert "Traceback" not in run.stderr
    assert snapshot(out) == before
