"""Pretraining and SFT through the real ``routeshell train`` command on the nano preset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.engine.tinyllm.training_support import TrainRun, run_train


def test_pretraining_makes_the_held_out_loss_fall(pretrained: tuple[Path, TrainRun]) -> None:
    out, run = pretrained
    start = run.of("train_start")[0]
    evals = run.of("train_eval")
    assert [event["step"] for event in evals] == [0, 20, 40]
    assert evals[2]["eval_loss"] < evals[0]["eval_loss"] - 0.5
    done = run.of("train_done")[-1]
    # An untrained model scores about ln(vocab); forty steps must already beat it clearly.
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    assert done["eval_loss"] < math.log(vocab) - 0.5
    assert done["perplexity"] == pytest.approx(math.exp(done["eval_loss"]))
    assert start["preset"] == "nano"
    assert start["world_size"] == 1
    assert start["resumed_from"] is None
    assert 500_000 < start["parameters"] < 1_500_000


def test_the_events_tell_the_whole_stage_in_order(pretrained: tuple[Path, TrainRun]) -> None:
    _, run = pretrained
    kinds = [event["type"] for event in run.events]
    assert kinds.index("data_ready") < kinds.index("train_start") < kinds.index("train_step")
    assert kinds[-2:] == ["checkpoint", "train_done"]
    assert run.events[-2]["final"] is True
    assert {event["filter"] for event in run.of("data_filter") if event["stage"] == "pretrain"} >= {
        "too_short",
        "exact_duplicate",
        "near_duplicate",
    }
    steps = run.of("train_step")
    assert [event["step"] for event in steps] == list(range(1, 41))
    assert all(event["tokens_per_s"] >= 0 and event["max_steps"] == 40 for event in steps)
    assert steps[-1]["eta_s"] == 0


def test_the_model_directory_is_a_complete_checkpoint(pretrained: tuple[Path, TrainRun]) -> None:
    out, _ = pretrained
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer.model"):
        assert (out / name).is_file(), name
    args = json.loads((out / "training_args.json").read_text())
    assert args["learning_rate"] == 1e-3
    assert args["weight_decay"] == 0.01
    assert args["max_grad_norm"] == 1.0
    card = (out / "README.md").read_text()
    for fact in ("routeshell train pretrain", "steps: 40", "held-out test", "perplexity", "parameters", "hardware"):
        assert fact in card, fact


def test_the_checkpoint_loads_generates_and_takes_a_lora_adapter(
    pretrained: tuple[Path, TrainRun], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = pretrained
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert type(model).__name__ == "LlamaForCausalLM"
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "def add(a, b):"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    torch.manual_seed(0)
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    assert isinstance(tokenizer.decode(generated[0]), str)

    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    ids = tokenizer("def f(x):\n    return x\n", return_tensors="pt")["input_ids"]
    loss = lora(input_ids=ids, labels=ids).loss
    loss.backward()
    trainable = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in name for name in trainable)
    lora.save_pretrained(str(tmp_path / "adapter"))
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(out)), str(tmp_path / "adapter"))
    assert reloaded(input_ids=ids).logits.shape[-1] == model.config.vocab_size


def test_sft_lowers_the_held_out_loss_on_chat_data(pretrained: tuple[Path, TrainRun], tmp_path: Path) -> None:
    base, _ = pretrained
    rows = tmp_path / "sft.jsonl"
    with rows.open("w") as handle:
        for i in range(120):
            a, b = i % 13, i % 7
            answer = f"def add_{i}(x):\n    return x + {a} * {b}\n"
            handle.write(json.dumps({"system": "You write Python.", "user": f"Write add_{i}.", "assistant": answer}))
            handle.write("\n")
    run = run_train(
        "sft", "--base", str(base), "--data", str(rows), "--max-steps", "30", "--eval-every", "10",
        "--batch-size", "4", "--out", str(tmp_path / "sft"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    evals = [event["eval_loss"] for event in run.of("train_eval")]
    assert len(evals) == 4
    assert evals[-1] < evals[0]
    assert run.of("train_start")[0]["stage"] == "sft"
    assert (tmp_path / "sft" / "model.safetensors").is_file()


def test_sft_on_rows_too_few_for_a_validation_split_trains_without_validation(
    pretrained: tuple[Path, TrainRun], tmp_path: Path
) -> None:
    # Two rows both hashed into training: the trainer was asked to evaluate before the first step
    # with no validation set, "training failed: ValueError", and OUT was left holding a run.
    base, _ = pretrained
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"user": f"Question number {i} about widgets and gadgets?",
                        "assistant": f"Answer {i}: widgets are small gadgets, number {i * 7}."}) + "\n"
            for i in range(2)
        )
    )  # fmt: skip
    run = run_train("sft", "--base", str(base), "--data", str(rows), "--max-steps", "1", "--out", str(tmp_path / "sft"))
    assert run.returncode == 0, run.stderr
    assert run.of("data_ready")[0]["documents"]["validation"] == 0
    assert run.of("train_eval") == []
    assert run.of("train_done")[0]["interrupted"] is False
    assert (tmp_path / "sft" / "model.safetensors").is_file()


def test_reasoning_sft_on_the_built_in_problems(reasoning_model: tuple[Path, TrainRun]) -> None:
    # The run of tests/conftest.py, the one the server's reasoning tests serve: --markers en.
    out, run = reasoning_model
    # Trained in a session fixture, the run is outside the check of each test's events: checked here.
    from engine.events import event_problem

    assert [problem for event in run.events if (problem := event_problem(event))] == []
    ready = run.of("data_ready")[0]
    assert ready["stage"] == "reasoning"
    assert ready["documents"]["train"] > 1000
    assert run.of("train_done")[-1]["interrupted"] is False
    assert "routeshell train reasoning" in (out / "README.md").read_text()
    # The rows were rendered with the English markers the model must learn to write.
    from transformers import AutoTokenizer

    from engine.tinyllm.builtin_sets import reasoning_problems
    from engine.tinyllm.features import conversation_features
    from engine.tinyllm.sft_data import to_conversation

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    row = reasoning_problems(1, markers="en")[0]
    features = conversation_features(to_conversation(dict(row), "en"), tokenizer, 512)
    assert features is not None
    learned = tokenizer.decode([t for t in features["labels"] if t != -100])
    assert learned.startswith("Reasoning:\n")
    assert f"\nAnswer:\n{row['final']}" in learned
    assert row["user"] not in learned


def test_data_under_a_name_that_is_not_utf8(
    pretrained: tuple[Path, TrainRun], corpus_dir: Path, tmp_path: Path
) -> None:
    import shutil

    data = tmp_path / "caf\udce9 \x1b[31mdata"
    shutil.copytree(corpus_dir, data)
    out = tmp_path / "model"
    run = run_train(
        "pretrain", "--tokenizer", str(pretrained[0]), "--preset", "nano", "--data", str(data), "--max-steps", "2",
        "--batch-size", "2", "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # The card's command names the folder as a shell reads it back, its escape sequence escaped.
    from engine.names import shell_word

    card = (out / "README.md").read_bytes()
    assert shell_word(str(data)).encode() in card
    assert b"\x1b" not in card
