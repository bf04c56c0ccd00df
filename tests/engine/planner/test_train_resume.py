"""`routeshell train planner`: Ctrl-C leaves OUT as it was with a checkpoint beside it, and --resume
continues that checkpoint exactly, or refuses one made with other options; a second run into the
same OUT is refused while the first trains, and the first then ends whole."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from tests.engine.tinyllm.training_support import (
    interrupt_after,
    read_to_end,
    read_to_first_step,
    run_train,
    started,
)
from tests.helpers import assert_one_line_error, run_routeshell

STEPS = 4


def planner_args(base: Path, out: Path, *extra: str) -> list[str]:
    return ["planner", "--base", str(base), "--out", str(out), "--count", "8", "--max-steps", str(STEPS),
            "--batch-size", "1", "--save-steps", "1000", *extra]  # fmt: skip


def contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def test_ctrl_c_keeps_the_finished_adapter_and_resume_continues_exactly(
    planner_models: tuple[Path, Path], tmp_path: Path
) -> None:
    base, shipped = planner_models
    straight = run_train(*planner_args(base, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr

    out = tmp_path / "planner"
    shutil.copytree(shipped, out)
    before = contents(out)
    stopped = interrupt_after(1, planner_args(base, out))
    assert stopped.returncode == 130, stopped.stderr
    assert contents(out) == before  # the finished adapter is still the one there
    done = stopped.of("train_done")[-1]
    assert done["interrupted"] is True
    at = done["steps"]
    assert 1 <= at < STEPS
    partial = tmp_path / ".planner.partial"
    assert Path(done["path"]) == partial / "checkpoints" / f"checkpoint-{at}"
    assert (Path(done["path"]) / "adapter_model.safetensors").is_file()

    # A checkpoint of other options is never continued, and stays for the right command.
    kept = sorted(str(path.relative_to(partial)) for path in partial.rglob("*"))
    argv = planner_args(base, out)
    argv[argv.index("--count") + 1] = "12"
    assert_one_line_error(run_routeshell("train", *argv, "--resume"), 2, "was started with --count 8, not 12")
    assert sorted(str(path.relative_to(partial)) for path in partial.rglob("*")) == kept
    assert contents(out) == before

    # Paused, the resumed run still holds OUT: however slow a run is, a second one must wait for it.
    first = started([*planner_args(base, out), "--resume"])
    seen = read_to_first_step(first)
    first.send_signal(signal.SIGSTOP)
    try:
        for extra in ((), ("--resume",)):
            second = run_routeshell("train", *planner_args(base, out), *extra)
            assert_one_line_error(second, 1, "another routeshell train is writing into", out.name)
    finally:
        first.send_signal(signal.SIGCONT)
    resumed = read_to_end(first, seen)
    assert resumed.returncode == 0, resumed.stderr
    end = resumed.events[-1]
    assert end["type"] == "train_done"
    assert (end["interrupted"], end["steps"], end["path"]) == (False, STEPS, str(out))
    assert resumed.of("train_start")[0]["resumed_from"] == done["path"]
    assert sorted(resumed.losses()) == list(range(at + 1, STEPS + 1))
    expected, got = straight.losses(), {**stopped.losses(), **resumed.losses()}
    for step in range(1, STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-4), step
    assert json.loads((out / "planner_meta.json").read_text())["summary"]["steps"] == STEPS
    assert (out / "adapter_model.safetensors").is_file()
    assert contents(out) != before
    # Nothing is left beside OUT: the checkpoint became OUT, and the lock went with the run.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["planner", "straight"]


def test_a_read_only_out_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    out = tmp_path / "planner"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = run_routeshell("train", *planner_args(tmp_path / "base", out))
        assert_one_line_error(result, 1, "is read-only")
        assert not any(out.iterdir())
        assert out.stat().st_mode & 0o777 == 0o555
        assert sorted(path.name for path in tmp_path.iterdir()) == ["base", "planner"]
    finally:
        out.chmod(0o755)
