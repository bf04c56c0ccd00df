"""Ctrl-C stops training with a checkpoint, and --resume continues it exactly; a second run into the
same directory is refused while the first trains; several processes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.tinyllm.training_support import (
    ROUTESHELL,
    TrainRun,
    interrupt_after,
    parse_events,
    read_to_end,
    read_to_first_step,
    run_train,
    started,
    train_env,
)

STEPS = 16


def pretrain_args(corpus: Path, tokenizer: Path, out: Path) -> list[str]:
    return [
        "pretrain", "--preset", "nano", "--data", str(corpus), "--tokenizer", str(tokenizer), "--seed", "7",
        "--max-steps", str(STEPS), "--batch-size", "4", "--eval-every", "1000", "--save-every", "1000",
        "--out", str(out),
    ]  # fmt: skip


def test_resume_after_ctrl_c_follows_the_uninterrupted_loss_curve(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    tokenizer = pretrained[0]
    cache = tmp_path / "cache"
    straight = run_train(*pretrain_args(corpus_dir, tokenizer, tmp_path / "straight"), cache=cache)
    assert straight.returncode == 0, straight.stderr

    out = tmp_path / "stopped"
    # Paused after its first step, the run holds its directory, however slow it is: a second run
    # into it (with --resume, which would otherwise continue a checkpoint there) is refused.
    first = started(pretrain_args(corpus_dir, tokenizer, out), cache)
    seen = read_to_first_step(first)
    first.send_signal(signal.SIGSTOP)
    try:
        second = run_train(*pretrain_args(corpus_dir, tokenizer, out), "--resume", cache=cache)
    finally:
        first.send_signal(signal.SIGCONT)
    stopped = read_to_end(first, seen, interrupt_at=5)
    assert second.returncode == 1, second.stderr
    assert "another routeshell train is writing into" in second.stderr
    assert "Traceback" not in second.stderr
    assert stopped.returncode == 130, stopped.stderr
    done = stopped.of("train_done")[-1]
    assert done["interrupted"] is True
    at = done["steps"]
    assert 5 <= at < STEPS
    assert Path(done["path"]) == out / "checkpoints" / f"checkpoint-{at}"
    assert stopped.of("checkpoint")[-1]["final"] is False
    assert not (out / "model.safetensors").exists()

    refused = run_train(*pretrain_args(corpus_dir, tokenizer, out), cache=cache)
    assert refused.returncode == 2
    assert "--resume" in refused.stderr

    resumed = run_train(*pretrain_args(corpus_dir, tokenizer, out), "--resume", cache=cache)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.of("train_start")[0]["resumed_from"] == str(out / "checkpoints" / f"checkpoint-{at}")
    expected, got = straight.losses(), {**stopped.losses(), **resumed.losses()}
    assert sorted(resumed.losses()) == list(range(at + 1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-4), step


def test_ctrl_c_while_the_data_is_prepared_stops_and_the_run_can_resume(corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "early"
    argv = [
        "pretrain", "--preset", "nano", "--data", str(corpus_dir), "--max-steps", "3", "--batch-size", "2",
        "--out", str(out),
    ]  # fmt: skip
    stopped = interrupt_after("data_filter", argv, tmp_path / "cache")
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    resumed = run_train(*argv, "--resume", cache=tmp_path / "cache")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "model.safetensors").is_file()


#: An accelerate config for two processes on one machine. MULTI_GPU is the launcher's name for
#: "torch.distributed on this machine"; with no GPU the trainer runs it on the CPU over gloo.
#: (``accelerate launch --cpu --num_processes 2`` starts only ONE process.)
ACCELERATE_CONFIG = """\
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
num_processes: 2
machine_rank: 0
mixed_precision: 'no'
use_cpu: false
"""


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_make_a_loadable_checkpoint(
    launcher: str, pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    tool = shutil.which(launcher, path=str(Path(sys.executable).parent))
    assert tool is not None
    if launcher == "torchrun":
        command = [tool, "--standalone", "--nproc_per_node", "2"]
    else:
        config = tmp_path / "accelerate.yaml"
        config.write_text(ACCELERATE_CONFIG)
        command = [tool, "launch", "--config_file", str(config)]
    out = tmp_path / "ddp"
    argv = pretrain_args(corpus_dir, pretrained[0], out)
    argv[argv.index("--max-steps") + 1] = "6"
    result = subprocess.run(
        [*command, ROUTESHELL, "train", *argv, "--events"],
        capture_output=True,
        text=True,
        env=train_env(tmp_path / "cache"),
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = parse_events(result.stdout)
    assert [e["world_size"] for e in events if e["type"] == "train_start"] == [2]
    # Only the main process reports: one line per step, not two.
    assert [e["step"] for e in events if e["type"] == "train_step"] == list(range(1, 7))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.config.vocab_size > 0
