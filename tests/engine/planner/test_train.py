"""`routeshell train planner` on a nano base: the adapter is written whole, kill -9 leaves the one there
whole, and the time limit holds."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
from pathlib import Path

from engine.planner.train import bf16_is_native
from tests.engine.tinyllm.training_support import ROUTESHELL, run_train, train_env
from tests.helpers import IMPORT_LOG, assert_one_line_error, imported, run_routeshell


def test_bad_planner_training_input_is_one_line(tmp_path: Path) -> None:
    result = run_routeshell("train", "planner", "--base", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, 2, "is not a model directory")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    result = run_routeshell("train", "planner", "--base", str(tmp_path / "base"), "--out", str(tmp_path / "junk"))
    assert_one_line_error(result, 2, "not a planner adapter")


def test_the_answer_only_loss_equals_the_models_own_loss(tmp_path: Path) -> None:
    """The planner's trainer asks for the logits of answer positions only; its loss must be the
    model's own (every position, prompt positions ignored), with rows of different prompt and
    answer lengths padded into one batch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    from engine.planner.train import IGNORE_INDEX, _answer_trainer

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    rows = [(11, 5), (3, 9), (20, 2)]  # (prompt, answer) lengths
    width = max(p + a for p, a in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for row, (prompt, answer) in enumerate(rows):
        ids[row, : prompt + answer] = torch.randint(3, 97, (prompt + answer,))
        mask[row, : prompt + answer] = 1
        labels[row, prompt : prompt + answer] = ids[row, prompt : prompt + answer]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    with torch.no_grad():
        ours = _answer_trainer()(model=model, args=args).compute_loss(model, dict(batch))
        theirs = Trainer(model=model, args=args).compute_loss(model, dict(batch))
        counted = _answer_trainer()(model=model, args=args).compute_loss(model, dict(batch), num_items_in_batch=32)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours, theirs)
    assert torch.allclose(counted * 32, theirs * 16, atol=1e-4)  # 16 answer tokens, normalised by the count given


def test_without_a_deadline_the_schedule_is_the_trainers_cosine() -> None:
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from engine.planner.train import ClockCosine

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    theirs = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=5, num_training_steps=40).lr_lambdas[0]
    ours = ClockCosine(5, 40)
    assert [round(ours(step), 9) for step in range(41)] == [round(max(0.0, theirs(step)), 9) for step in range(41)]


def test_a_deadline_ahead_of_the_steps_brings_the_rate_to_zero_on_time() -> None:
    from engine.planner.train import ClockCosine

    now = [100.0]
    schedule = ClockCosine(2, 1000, deadline=110.0, clock=lambda: now[0])
    assert schedule(0) == 0.0  # the warm-up counts steps only
    assert schedule(1) == 0.5
    assert schedule(2) == 1.0  # the cosine starts at the clock's time then: 10 s to go
    now[0] = 105.0
    assert abs(schedule(3) - 0.5) < 1e-9  # halfway through the time, 3 steps of 1000: the clock leads
    assert schedule.by_clock_at == 3
    assert round(schedule(800), 6) == round(0.5 * (1 + math.cos(math.pi * 798 / 998)), 6)  # the steps lead again
    assert schedule.by_clock_at is None
    now[0] = 110.0
    assert schedule(4) == 0.0
    now[0] = 500.0
    assert schedule(5) == 0.0
    # The steps lead when they are further along than the clock.
    steps_first = ClockCosine(0, 10, deadline=1e9, clock=lambda: 0.0)
    assert [round(steps_first(step), 9) for step in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert steps_first.by_clock_at is None


def test_the_planner_trainer_runs_on_the_clock_schedule(tmp_path: Path) -> None:
    """A deadline already past: after the warm-up the rate is zero, so the trainer used the schedule."""
    import time

    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

    from engine.planner.train import ClockCosine, _answer_trainer

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    rows = [list(range(3, 19))] * 8
    dataset = Dataset.from_dict({"input_ids": rows, "labels": rows})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", max_steps=6,
                             per_device_train_batch_size=2, learning_rate=0.1, warmup_steps=2, logging_steps=1,
                             save_strategy="no", disable_tqdm=True)  # fmt: skip
    schedule = ClockCosine(2, 6, deadline=time.monotonic() - 1.0)
    trainer = _answer_trainer(schedule)(model=LlamaForCausalLM(config), args=args, train_dataset=dataset)
    trainer.train()
    rates = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert rates == [0.0, 0.05, 0.0, 0.0, 0.0, 0.0], rates


def test_kill_9_leaves_the_adapter_whole_and_a_rerun_ended_by_the_time_limit_replaces_it_saved(
    planner_models: tuple[Path, Path], tmp_path: Path
) -> None:
    base, shipped = planner_models
    out = tmp_path / "planner"
    shutil.copytree(shipped, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert json.loads(before["planner_meta.json"])["summary"]["stopped_by_time_limit"] is False
    argv = [ROUTESHELL, "train", "planner", "--base", str(base), "--out", str(out), "--count", "16",
            "--max-steps", "500", "--batch-size", "2", "--save-steps", "1", "--events"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               text=True, env=train_env())  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == "train_step" and json.loads(line)["step"] >= 2:
            process.kill()  # past a checkpoint of its own, in the middle of training
            break
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before

    # The rerun replaces the adapter, and its time limit ends it long before its steps do.
    run = run_train(
        "planner", "--base", str(base), "--out", str(out), "--count", "16", "--max-steps", "500",
        "--batch-size", "2", "--time-limit", "0.001", env=IMPORT_LOG,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "peft" in imported(run.stderr)
    assert "bitsandbytes" not in imported(run.stderr)  # the base is not quantized: it is kept out
    meta = json.loads((out / "planner_meta.json").read_text())
    assert meta["summary"]["stopped_by_time_limit"] is True
    assert meta["summary"]["steps"] < 500
    assert meta["summary"]["steps"] == len(run.losses())
    assert (out / "adapter_model.safetensors").is_file()
    assert {path.name: path.read_bytes() for path in out.iterdir()} != before
    assert not (out / "checkpoints").exists()
    assert [event["type"] for event in run.events][-1] == "train_done"
    # bfloat16 only where the machine multiplies in it natively: an AVX2-only CPU emulates it.
    native = bf16_is_native()
    assert meta["summary"]["dtype"] == ("bfloat16" if native else "float32")
    [start] = [event for event in run.events if event["type"] == "train_start"]
    assert start["dtype"] == meta["summary"]["dtype"]
    # Nothing is left beside OUT: no partial directory, no lock.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["planner"]
