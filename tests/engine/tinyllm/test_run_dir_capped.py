"""A training run directory's marker and a checkpoint's trainer_state.json are read with a bound: a
link to ``/dev/zero``, a FIFO or a file past the limit there is one line of error from
``routeshell train``, never a MemoryError, a hang or a traceback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.tinyllm import run_dir
from engine.tinyllm.errors import TrainInputError
from engine.tinyllm.run_dir import MARKER, check_out_dir, read_marker
from tests.helpers import assert_one_line_error, endless, fifo, run_routeshell, sparse


def _huge(path: Path) -> None:
    sparse(path, run_dir.MAX_MARKER_BYTES + 1)  # one byte past the limit


PLANTS = [pytest.param(endless, id="dev-zero"), pytest.param(fifo, id="fifo")]


@pytest.mark.parametrize("plant", [*PLANTS, pytest.param(_huge, id="huge")])
def test_a_marker_that_cannot_be_read_is_no_marker(tmp_path: Path, plant: Callable[[Path], None]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    plant(out / MARKER)
    assert read_marker(out) is None
    result = run_routeshell("train", "pretrain", "--out", str(out))
    assert_one_line_error(result, 2, f"--out {out} holds files that are not a routeshell training run")
    assert "MemoryError" not in result.stderr


def _checkpoint(tmp_path: Path) -> Path:
    """A run directory whose last checkpoint holds every file a resume needs."""
    out = tmp_path / "run"
    newest = out / "checkpoints" / "checkpoint-1"
    newest.mkdir(parents=True)
    (out / MARKER).write_text(json.dumps({"stage": "pretrain", "status": "running"}), encoding="utf-8")
    for name in ("optimizer.pt", "scheduler.pt", "model.safetensors"):
        (newest / name).write_bytes(b"")
    (newest / "trainer_state.json").write_text('{"global_step": 1, "log_history": []}', encoding="utf-8")
    return out


@pytest.mark.parametrize("plant", PLANTS)
def test_an_unreadable_trainer_state_makes_the_checkpoint_corrupt(
    tmp_path: Path, plant: Callable[[Path], None]
) -> None:
    out = _checkpoint(tmp_path)
    check_out_dir(out, resume=True, stage="pretrain")  # whole: resumable
    plant(out / "checkpoints" / "checkpoint-1" / "trainer_state.json")
    with pytest.raises(TrainInputError, match=r"is incomplete or corrupt .*a readable trainer_state\.json"):
        check_out_dir(out, resume=True, stage="pretrain")
    if plant is endless:
        result = run_routeshell("train", "pretrain", "--out", str(out), "--resume")
        assert_one_line_error(result, 2, "is incomplete or corrupt", "a readable trainer_state.json")
        assert "MemoryError" not in result.stderr


def test_a_trainer_state_past_the_limit_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _checkpoint(tmp_path)
    monkeypatch.setattr(run_dir, "MAX_TRAINER_STATE_BYTES", 16)
    with pytest.raises(TrainInputError, match=r"a readable trainer_state\.json"):
        check_out_dir(out, resume=True, stage="pretrain")


def test_the_move_aside_hint_pastes_into_a_shell_whatever_the_name(tmp_path: Path) -> None:
    out = _checkpoint(tmp_path / "it's a run")
    newest = out / "checkpoints" / "checkpoint-1"
    (newest / "optimizer.pt").unlink()
    with pytest.raises(TrainInputError) as caught:
        check_out_dir(out, resume=True, stage="pretrain")
    command = str(caught.value).split("resume from the one before: ", 1)[1]
    subprocess.run(["sh", "-c", command], check=True)
    assert not newest.exists()
    assert newest.with_name("checkpoint-1.broken").is_dir()
