"""A training run directory's marker and a checkpoint's trainer_state.json are read with a bound: a
link to ``/dev/zero``, a FIFO or a file past the limit there is one line of error from
``routeshell train``, never a MemoryError, a hang or a traceback."""

from __future__ import annotations

import json
import os
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
    import torch
    from safetensors.torch import save_file

    save_file({"lm_head.weight": torch.zeros(4, 2)}, str(newest / "model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"state": {}, "step": torch.tensor(1)}, newest / name)
    (newest / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (newest / "trainer_state.json").write_text('{"global_step": 1, "log_history": []}', encoding="utf-8")
    return out


@pytest.mark.parametrize("plant", PLANTS)
def test_an_unreadable_trainer_state_makes_the_checkpoint_corrupt(
    tmp_path: Path, plant: Callable[[Path], None]
) -> None:
    out = _checkpoint(tmp_path)
    check_out_dir(out, resume=True, stage="pretrain")  # whole: resumable
    plant(out / "checkpoints" / "checkpoint-1" / "trainer_state.json")
    with pytest.raises(TrainInputError, match=r"is incomplete or corrupt \(damaged trainer_state\.json\)"):
        check_out_dir(out, resume=True, stage="pretrain")
    if plant is endless:
        result = run_routeshell("train", "pretrain", "--out", str(out), "--resume")
        assert_one_line_error(result, 2, "is incomplete or corrupt (damaged trainer_state.json)")
        assert "MemoryError" not in result.stderr


def test_a_trainer_state_past_the_limit_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _checkpoint(tmp_path)
    monkeypatch.setattr(run_dir, "MAX_TRAINER_STATE_BYTES", 16)
    with pytest.raises(TrainInputError, match=r"\(damaged .*trainer_state\.json\)"):
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
    assert newest.with_name("broken-checkpoint-1").is_dir()


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "config.json"])
def test_a_cut_off_checkpoint_file_is_one_line_before_the_trainer_loads_it(tmp_path: Path, name: str) -> None:
    out = _checkpoint(tmp_path)
    check_out_dir(out, resume=True, stage="pretrain")  # whole: resumable
    newest = out / "checkpoints" / "checkpoint-1"
    os.truncate(newest / name, (newest / name).stat().st_size - 8)  # a copy or a write that stopped short
    result = run_routeshell("train", "pretrain", "--out", str(out), "--resume")
    assert_one_line_error(result, 2, f"checkpoint {newest} is incomplete or corrupt (damaged {name}); move it aside",
                          f"mv {newest} {out}/checkpoints/broken-checkpoint-1")  # fmt: skip


def test_a_missing_trainer_state_is_named_once(tmp_path: Path) -> None:
    out = _checkpoint(tmp_path)
    (out / "checkpoints" / "checkpoint-1" / "trainer_state.json").unlink()
    with pytest.raises(TrainInputError, match=r"is incomplete or corrupt \(no trainer_state\.json\); move it aside"):
        check_out_dir(out, resume=True, stage="pretrain")


def test_a_checkpoint_moved_aside_as_the_hint_says_is_kept_by_the_trainers_rotation(tmp_path: Path) -> None:
    from transformers.trainer_utils import sort_checkpoints

    out = _checkpoint(tmp_path)
    newest = out / "checkpoints" / "checkpoint-1"
    (newest / "optimizer.pt").unlink()
    with pytest.raises(TrainInputError) as caught:
        check_out_dir(out, resume=True, stage="pretrain")
    subprocess.run(["sh", "-c", str(caught.value).split("resume from the one before: ", 1)[1]], check=True)
    # The Trainer deletes the oldest of the directories this lists once it holds more than save_total_limit.
    assert sort_checkpoints(str(out / "checkpoints")) == []
