"""`routeshell train planner` on a nano base: the adapter is written whole, and the time limit holds."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.tinyllm.training_support import run_train
from tests.helpers import assert_one_line_error, run_routeshell


def test_the_time_limit_ends_training_with_the_adapter_saved(planner_models: tuple[Path, Path], tmp_path: Path) -> None:
    base, _ = planner_models
    out = tmp_path / "planner"
    run = run_train(
        "planner", "--base", str(base), "--out", str(out), "--count", "16", "--max-steps", "500",
        "--batch-size", "2", "--time-limit", "0.001",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    meta = json.loads((out / "planner_meta.json").read_text())
    assert meta["summary"]["stopped_by_time_limit"] is True
    assert meta["summary"]["steps"] < 500
    assert (out / "adapter_model.safetensors").is_file()
    assert not (out / "checkpoints").exists()
    assert not out.with_name(f".{out.name}.partial").exists()
    assert [event["type"] for event in run.events][-1] == "train_done"


def test_bad_planner_training_input_is_one_line(tmp_path: Path) -> None:
    result = run_routeshell("train", "planner", "--base", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, 2, "is not a model directory")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    result = run_routeshell("train", "planner", "--base", str(tmp_path / "base"), "--out", str(tmp_path / "junk"))
    assert_one_line_error(result, 2, "not a planner adapter")
