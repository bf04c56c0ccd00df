"""``routeshell export --merge`` of the shipped planner adapter onto the shipped base: it touches
nothing beside OUT but OUT, takes the lock training holds, and refuses in one line an OUT that is
the current directory, an adapter or base file that is a FIFO, and values that are not finite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from safetensors.torch import load_file, save_file

from engine.tinyllm.run_dir import out_lock_beside
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell

MODELS = Path(__file__).resolve().parents[1] / "engine" / "models"
BASE = MODELS / "base"
ADAPTER = MODELS / "planner"


def export(
    out: Path | str, adapter: Path = ADAPTER, base: Path = BASE, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # Not run_routeshell: a FIFO must fail the test in a minute, not hang it for two.
    return subprocess.run(
        [ROUTESHELL, "export", "--merge", "--adapter", str(adapter), "--base", str(base), "--out", str(out)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=cwd, timeout=60, check=False,
    )  # fmt: skip


def copied_adapter(tmp_path: Path) -> Path:
    adapter = tmp_path / "adapter"
    shutil.copytree(ADAPTER, adapter)
    return adapter


def test_export_leaves_a_partial_run_beside_out_alone(tmp_path: Path) -> None:
    # What an interrupted 'train router --out merged' keeps for --resume, or a directory of the user's.
    partial = tmp_path / ".merged.partial"
    (partial / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (partial / "notes.txt").write_text("precious\n")
    result = export(tmp_path / "merged")
    assert result.returncode == 0, result.stderr
    assert (partial / "notes.txt").read_text() == "precious\n"
    assert (partial / "checkpoints" / "checkpoint-2").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".merged.partial", "merged"]
    assert (tmp_path / "merged" / "model.safetensors").is_file()


def test_export_into_an_out_being_trained_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "merged"
    with out_lock_beside(out):  # as 'train router --out merged' holds it while it runs
        result = export(out)
    assert_one_line_error(result, 1, "is writing into", "merged")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_out_that_is_the_current_directory_is_refused(tmp_path: Path) -> None:
    for out in (".", ".."):
        assert_one_line_error(export(out, cwd=tmp_path), 2, f"--out {out} is the current directory or holds it")
    assert list(tmp_path.iterdir()) == []
    assert "not the current one" in run_routeshell("export", "--help").stdout


def test_a_fifo_for_a_file_of_the_adapter_or_the_base_is_refused(tmp_path: Path) -> None:
    adapter = copied_adapter(tmp_path)
    (adapter / "adapter_model.safetensors").unlink()
    os.mkfifo(adapter / "adapter_model.safetensors")
    assert_one_line_error(export(tmp_path / "a", adapter=adapter), 2, "adapter_model.safetensors is not a regular file")
    base = tmp_path / "base"
    base.mkdir()
    for file in BASE.iterdir():
        (base / file.name).symlink_to(file)
    (base / "model.safetensors").unlink()
    os.mkfifo(base / "model.safetensors")
    assert_one_line_error(export(tmp_path / "b", base=base), 2, "--base", "model.safetensors is not a regular file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "base"]


def test_values_that_are_not_finite_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    adapter = copied_adapter(tmp_path)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": float("nan")}))
    assert_one_line_error(export(tmp_path / "m", adapter=adapter), 2, "adapter_config.json gives lora_alpha = nan")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    weights = load_file(adapter / "adapter_model.safetensors")
    name = sorted(key for key in weights if ".lora_B." in key)[0]
    original = weights[name].clone()
    weights[name][0, 0] = float("inf")
    save_file(weights, adapter / "adapter_model.safetensors")
    assert_one_line_error(export(tmp_path / "m", adapter=adapter), 2, "not finite numbers in", name)
    # Each weight finite, but their product past float32's range: the merge itself overflows.
    weights[name] = original.clone().fill_(1e30)
    weights[name.replace(".lora_B.", ".lora_A.")].fill_(1e30)
    save_file(weights, adapter / "adapter_model.safetensors")
    assert_one_line_error(export(tmp_path / "m", adapter=adapter), 2, "gives values that are not finite numbers in")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
