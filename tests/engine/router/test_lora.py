"""The LoRA router on the nano model: cached candidate scoring equals plain scoring, the adapter
trains, saves and reloads with PEFT, QLoRA runs on the CPU, every decision validates, a second
run into the same OUT is refused while the first trains, and only a 4-bit run loads bitsandbytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from engine.events import CHECK_ENV
from engine.router.candidates import candidates
from engine.router.generator import generate_requests
from engine.router.labels import gold_label, make_sample, write_samples
from engine.router.lora import LoraModel, load_base
from engine.router.router_dir import ADAPTER_META
from engine.router.scored import ScoredRouter
from engine.router.tasks import TASK_PREFIX
from engine.schemas import validator
from tests.engine.tinyllm.training_support import TrainRun, paused_at_first_step, run_train
from tests.helpers import IMPORT_LOG, assert_one_line_error, imported, run_routeshell


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "files.jsonl"
    write_samples(path, [make_sample(t, gold_label(t), "gold") for t in generate_requests(150, seed=5)])
    return path


@dataclass
class BusyThenTrained:
    """A router run paused after its first step while two other runs into its OUT were tried, then
    killed (kill -9), and a run into the same OUT after it."""

    out: Path
    refused: list[subprocess.CompletedProcess[str]]
    run: TrainRun
    beside: list[str]  # what the directory of OUT held once the last run ended


@pytest.fixture(scope="module")
def busy_then_trained(
    pretrained: tuple[Path, TrainRun], labels: Path, tmp_path_factory: pytest.TempPathFactory
) -> BusyThenTrained:
    """The adapter the tests share, trained after a paused run into the same OUT was killed: the
    refusals while it held OUT and the run after it are checked by a test of their own."""
    out = tmp_path_factory.mktemp("lora") / "router"
    argv = ["router", "--base", str(pretrained[0]), "--data", str(labels), "--out", str(out), "--max-steps", "6",
            "--batch-size", "4", "--grad-accum", "1", "--lora-r", "4"]  # fmt: skip
    # The options of the last run are the same, spelt the other way the command takes them.
    again = ["router", "--base", str(pretrained[0]), "--data", str(labels), "--out", str(out), "--max-steps", "6",
             "--batch_size", "4", "--grad_accum", "1", "--lr", "2e-3", "--lora_r", "4"]  # fmt: skip
    # A module's fixture runs before the per-test environment is set: the events of these runs are
    # checked against the contract here, as the per-test fixture would.
    log = tmp_path_factory.mktemp("events") / "invalid-events.txt"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CHECK_ENV, str(log))
        first = paused_at_first_step(argv)  # paused, it still holds OUT
        try:
            refused = [
                run_routeshell("train", *second)
                for second in (argv, ["router", "--kind", "tfidf", "--data", str(labels), "--out", str(out)])
            ]
        finally:
            first.kill()  # kill -9: the kernel lets go of the lock with the process
            first.communicate(timeout=60)
        run = run_train(*again, env=IMPORT_LOG)
    assert not (log.exists() and log.read_text()), log.read_text()
    return BusyThenTrained(out, refused, run, sorted(path.name for path in out.parent.iterdir()))


@pytest.fixture(scope="module")
def trained(busy_then_trained: BusyThenTrained) -> Path:
    run = busy_then_trained.run
    assert run.returncode == 0, run.stderr
    assert [e["stage"] for e in run.of("train_start")] == ["router"]
    assert run.of("train_done")[-1]["interrupted"] is False
    return busy_then_trained.out


def test_cached_candidate_scoring_equals_scoring_each_sequence_whole(pretrained: tuple[Path, TrainRun]) -> None:
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_base(pretrained[0])
    torch.manual_seed(0)
    adapted = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    # A short system prompt: the whole prompt fits the nano model's context, so nothing is cut.
    router = LoraModel(adapted, tokenizer, {"system": "Route the task."})
    text = "move every .log file from logs into archive"
    fast = router.log_likelihoods(text)
    prompt = router.encoder.prompt(TASK_PREFIX + text, "Route the task.")
    slow = []
    with torch.inference_mode():
        for candidate in candidates():
            answer = router.encoder.answers[candidate.key]
            logits = adapted(input_ids=torch.tensor([prompt + answer])).logits[0].float()
            log_p = torch.log_softmax(logits[len(prompt) - 1 : -1], -1)
            slow.append(float(log_p.gather(1, torch.tensor(answer)[:, None]).sum()))
    assert fast.tolist() == pytest.approx(slow, abs=1e-3)


def test_the_adapter_trains_saves_and_reloads(trained: Path, pretrained: tuple[Path, TrainRun]) -> None:
    from peft import PeftModel

    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", ADAPTER_META, "router.json"):
        assert (trained / name).is_file(), name
    meta = json.loads((trained / ADAPTER_META).read_text())
    assert meta["base"] == str(pretrained[0].absolute())
    assert meta["label_sources"] == {"files_gold": json.loads((trained / "router.json").read_text())["train_tasks"]}
    assert meta["data"][0]["sha256"]
    assert meta["options"]["lora_r"] == 4
    assert meta["training"]["steps"] == 6
    assert "decision_exact" in meta["metrics"]
    assert not trained.with_name(f".{trained.name}.partial").exists()
    base, _ = load_base(pretrained[0])
    reloaded = PeftModel.from_pretrained(base, str(trained))
    assert any("lora_A" in name for name, _ in reloaded.named_parameters())

    router = ScoredRouter(LoraModel.load(trained))
    for task in ("fix the failing test_login", "", "\x1b[2J\udcff" * 50, "x " * 2000):
        decision = router.route(task)
        assert decision.router == "model:lora"
        assert validator("decision").is_valid(decision.as_json())
    (probabilities,) = router.model.probabilities(["tag the notes"])
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)


def test_qlora_runs_a_few_steps_on_the_cpu(pretrained: tuple[Path, TrainRun], labels: Path, tmp_path: Path) -> None:
    out = tmp_path / "qlora"
    run = run_train("router", "--base", str(pretrained[0]), "--data", str(labels), "--out", str(out), "--use_4bit",
                    "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", env=IMPORT_LOG)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "bitsandbytes" in imported(run.stderr)
    assert run.of("train_start")[0]["dtype"] == "nf4"
    losses = run.losses()
    assert len(losses) == 2
    assert all(loss == loss and loss > 0 for loss in losses.values())
    meta = json.loads((out / ADAPTER_META).read_text())
    assert meta["options"]["use_4bit"] is True
    # Routing with it reads from its metadata that it loads in 4-bit before it loads anything.
    result = run_routeshell("route", "--router", str(out), "--json", "add tests for parse_date", env=IMPORT_LOG)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["router"] == "model:lora"
    assert "bitsandbytes" in imported(result.stderr)


def test_a_router_trained_without_4bit_never_loads_bitsandbytes(busy_then_trained: BusyThenTrained) -> None:
    loaded = imported(busy_then_trained.run.stderr)
    assert "peft" in loaded
    assert "bitsandbytes" not in loaded


def test_a_second_run_into_the_same_out_is_refused_and_a_killed_run_leaves_no_lock(
    busy_then_trained: BusyThenTrained,
) -> None:
    out = busy_then_trained.out
    for result in busy_then_trained.refused:
        assert_one_line_error(result, 1, "another routeshell train is writing into", out.name)
    third = busy_then_trained.run
    assert third.returncode == 0, third.stderr
    assert third.of("train_done")[-1]["interrupted"] is False
    assert (out / "adapter_model.safetensors").is_file()
    assert busy_then_trained.beside == ["router"]


def test_a_missing_base_is_one_line(labels: Path, tmp_path: Path) -> None:
    run = run_train("router", "--data", str(labels), "--out", str(tmp_path / "r"))
    assert run.returncode == 2
    message = run.of("error")[0]["message"]
    assert "routeshell/models/tinyllm is not a model directory (no config.json)" in message
    assert "routeshell train all --out" in message


def test_export_merge_writes_a_checkpoint_that_loads_without_peft(trained: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    result = run_routeshell("export", "--merge", "--adapter", str(trained), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert not any(name.startswith("adapter_") for name in (p.name for p in out.iterdir()))
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    adapted = LoraModel.load(trained)
    ids = torch.tensor([adapted.encoder.prompt("Task: tag the notes")])
    with torch.inference_mode():
        expected = adapted.model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert torch.allclose(expected, got, atol=1e-4)
    assert json.loads((out / "merged_from.json").read_text())["adapter"] == str(trained.absolute())
    again = run_routeshell("export", "--merge", "--adapter", str(trained), "--out", str(out))
    assert_one_line_error(again, 2, "exists and is not empty")
    assert_one_line_error(run_routeshell("export", "--merge", "--adapter", str(tmp_path), "--out", str(tmp_path / "x")),
                          2, "not a PEFT adapter")  # fmt: skip


def test_the_router_adapter_is_one_of_several_named_adapters_the_server_lists(
    trained: Path, pretrained: tuple[Path, TrainRun], tmp_path: Path
) -> None:
    from engine.serve.loaded import load_model

    second = tmp_path / "planner"
    shutil.copytree(trained, second)
    loaded = load_model(pretrained[0], dtype="fp32", adapters={"router": trained, "planner": second}, name="tiny")
    assert loaded.model_ids() == ["tiny", "router", "planner"]
    assert loaded.adapter_for("router") == "router"


def test_any_local_causal_lm_is_a_base_a_qwen3_one_too(
    pretrained: tuple[Path, TrainRun], labels: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    base = tmp_path / "qwen3"
    tokenizer = AutoTokenizer.from_pretrained(str(pretrained[0]))
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(str(base))
    tokenizer.save_pretrained(str(base))
    out = tmp_path / "router"
    run = run_train("router", "--model", str(base), "--data", str(labels), "--output_dir", str(out),
                    "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    decision = ScoredRouter(LoraModel.load(out)).route("rename the photos")
    assert validator("decision").is_valid(decision.as_json())
