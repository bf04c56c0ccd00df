"""Training throughput of ``routeshell train pretrain`` on the ``small`` preset, and data preparation.

Three measurements in one run, on the same machine and load:

1. ``routeshell train pretrain --preset small`` (bf16 autocast where the CPU has it, fused AdamW,
   through transformers' Trainer) against a plain fp32 eager loop (``loss.backward()`` and a plain
   ``torch.optim.AdamW``) over the same model shape and the same packed data. Goal: 2.5x or more.
2. Model FLOPs utilisation of the trainer run: ``6 N + 12 L d T`` FLOPs per token (N the weights
   that do matmuls, so without the input embedding) against the bf16 matmul peak measured here.
   Goal: 50% or more.
3. Tokenizer training and data preparation on the default corpus (the standard library), and the
   second, cached preparation.

Nothing here asserts a time; it prints what it measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "routeshell"
BATCH, SEQ = 8, 256
TRAIN_STEPS = 14  # steps of the trainer run; the first WARMUP are left out of the rate
WARMUP = 4
PLAIN_STEPS = 6


def run_events(argv: list[str], env: dict[str, str]) -> tuple[list[dict[str, Any]], float]:
    """Run ``routeshell ARGV --events``; return its events and its wall time."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(SCRIPT), *argv, "--events"], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"routeshell {' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return events, took


def matmul_peak(dtype_name: str, size: int = 2048, repeats: int = 10) -> float:
    """Return the matmul throughput of this CPU in ``dtype_name`` in FLOP/s (the best of ``repeats``)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def plain_fp32_rate(model_dir: Path, features: Path) -> float:
    """Return the tokens/s of a plain fp32 eager training loop over the small preset and the same data."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(AutoConfig.from_pretrained(str(model_dir)))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    train = load_from_disk(str(features))["train"]
    ids = torch.tensor(train[: BATCH * (PLAIN_STEPS + 1)]["input_ids"])

    def step(i: int) -> None:
        batch = ids[i * BATCH : (i + 1) * BATCH]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    step(0)  # the first step allocates the optimizer state
    started = time.perf_counter()
    for i in range(1, PLAIN_STEPS + 1):
        step(i)
    return PLAIN_STEPS * BATCH * SEQ / (time.perf_counter() - started)


def flops_per_token(config: dict[str, Any]) -> float:
    """Return the training FLOPs per token: 6 per matmul weight, plus attention's 12 L d T."""
    d, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    ffn, kv = config["intermediate_size"], config["num_key_value_heads"] * (d // config["num_attention_heads"])
    matmul_weights = layers * (2 * d * d + 2 * d * kv + 3 * d * ffn) + d * vocab  # the LM head, not the embedding
    return 6 * matmul_weights + 12 * layers * d * SEQ


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="routeshell-bench-train-"))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    try:
        events, took = run_events(["train", "tokenizer", "--preset", "small", "--out", str(work / "tok")], env)
        print(f"tokenizer on the standard library (vocab 16,000): {took:.1f} s wall (process start included)")

        argv = ["train", "pretrain", "--preset", "small", "--tokenizer", str(work / "tok"), "--batch-size", str(BATCH)]
        argv += ["--seq-len", str(SEQ), "--eval-every", "100000", "--save-every", "100000"]
        events, took = run_events([*argv, "--max-steps", "1", "--out", str(work / "prep")], env)
        ready = next(e for e in events if e["type"] == "data_ready")
        tokens = ready["tokens"]["train"]
        print(
            f"data preparation (read, clean, split, tokenize, pack; {tokens:,} training tokens): "
            f"{ready['seconds']:.1f} s"
        )
        events, _ = run_events([*argv, "--max-steps", str(TRAIN_STEPS), "--out", str(work / "run")], env)
        cached = next(e for e in events if e["type"] == "data_ready")
        print(
            f"the same preparation from the cache: {cached['seconds']:.2f} s (cached={cached['cached']}); "
            f"ratio {ready['seconds'] / max(cached['seconds'], 1e-3):.0f}x faster"
        )

        start = next(e for e in events if e["type"] == "train_start")
        steps = [e for e in events if e["type"] == "train_step"]
        timed = [e for e in steps if e["step"] > WARMUP]
        seconds = timed[-1]["elapsed_s"] - next(e for e in steps if e["step"] == WARMUP)["elapsed_s"]
        trainer_rate = len(timed) * BATCH * SEQ / seconds
        print(
            f"routeshell train pretrain --preset small ({start['parameters']:,} parameters, {start['dtype']}, "
            f"batch {BATCH} x {SEQ}): {trainer_rate:,.0f} tokens/s over steps {WARMUP + 1}-{TRAIN_STEPS}"
        )

        features = next(p for p in (work / "cache" / "routeshell" / "features").iterdir() if (p / "data").is_dir())
        plain_rate = plain_fp32_rate(work / "run", features / "data")
        ratio = trainer_rate / plain_rate
        print(f"plain fp32 eager loop, same model and data: {plain_rate:,.0f} tokens/s")
        print(f"ratio {ratio:.2f}x the plain loop ({'meets' if ratio >= 2.5 else 'BELOW'} the 2.5x goal)")

        config = json.loads((work / "run" / "config.json").read_text())
        peak = matmul_peak("bfloat16")
        fp32_peak = matmul_peak("float32")
        achieved = trainer_rate * flops_per_token(config)
        mfu = achieved / peak
        # Matmuls are most of a step, so bf16 cannot speed training up by more than its matmul gain.
        print(
            f"fp32 matmul peak measured here: {fp32_peak / 1e9:,.0f} GFLOP/s; bf16 is {peak / fp32_peak:.2f}x fp32, "
            "the ceiling of what bf16 can give over the fp32 loop on this CPU"
        )
        print(
            f"bf16 matmul peak measured here: {peak / 1e9:,.0f} GFLOP/s; training achieves "
            f"{achieved / 1e9:,.0f} GFLOP/s: MFU {mfu:.0%} ({'meets' if mfu >= 0.5 else 'BELOW'} the 50% goal)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
