"""Training on a full or read-only disk: one line and exit code 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.engine.tinyllm.training_support import TrainRun, run_train
from tests.helpers import read_only_view, small_disk


def one_failure_line(run: TrainRun) -> str:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("routeshell: error: ")]
    assert len(errors) == 1, run.stderr
    assert run.of("error")[-1]["exit_code"] == 1
    return errors[0]


def test_a_full_disk_while_saving_is_one_line(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        run = run_train(
            "pretrain", "--preset", "nano", "--data", str(corpus_dir), "--tokenizer", str(pretrained[0]),
            "--max-steps", "2", "--save-every", "1", "--batch-size", "2", "--out", str(disk / "model"),
            cache=tmp_path / "cache",
        )  # fmt: skip
        line = one_failure_line(run)
    assert "No space left on device" in line
    assert "--resume" in line
    assert "model" in line


def test_a_read_only_output_directory_is_one_line(corpus_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    with read_only_view(tmp_path / "source", tmp_path / "ro") as ro:
        run = run_train(
            "pretrain", "--preset", "nano", "--data", str(corpus_dir), "--max-steps", "2", "--out", str(ro / "model"),
            cache=tmp_path / "cache",
        )  # fmt: skip
        line = one_failure_line(run)
    assert "Read-only file system" in line
