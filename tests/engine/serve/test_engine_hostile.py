"""Hostile cases of the int8 kernels and of prompts prefilled together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.serve.loaded import LoadedModel
from engine.serve.quantize import dynamic_kernel_available
from engine.serve.types import GenerationRequest, SamplingParams

ROOT = Path(__file__).resolve().parents[3]

# A bf16 stack of linear layers of widths a multiple of 8 but not of 16, run on a few rows.
WEIGHT_ONLY_WIDTHS = """
import torch
from engine.serve.quantize import quantize_int8
for width in (24, 40, 56, 72, 104, 120, 136):
    model = torch.nn.Sequential(torch.nn.Linear(width, 16, bias=False), torch.nn.Linear(16, width, bias=False))
    model = model.to(torch.bfloat16)
    quantize_int8(model, dynamic=False)
    with torch.inference_mode():
        assert model(torch.randn(3, width, dtype=torch.bfloat16)).shape == (3, width)
print("ok")
"""


def run_child(code: str, **env: str) -> str:
    """Run ``code`` in a child Python (a crash there is a failed test, not a dead run); return its output."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_weight_only_kernel_never_gets_a_width_it_crashes_on() -> None:
    """``_weight_int8pack_mm`` crashes the process on widths that are a multiple of 8 but not of 16:
    quantize_int8 must leave those layers as they are, in its probe as in use. Run in a child,
    since the crash is a segmentation fault."""
    assert run_child(WEIGHT_ONLY_WIDTHS) == "ok"


# All-ones weights and activations: every pair of u8 x s8 products (255 x 127, twice) overflows 16 bits.
SATURATING_ROWS = """
import torch
from engine.serve.quantize import DynamicInt8Linear
linear = torch.nn.Linear(256, 64, bias=False)
torch.nn.init.ones_(linear.weight)
x = torch.ones(3, 256)
x[:, 0] = -0.01
with torch.inference_mode():
    exact, approx = linear(x), DynamicInt8Linear(linear)(x)
print(float(((approx - exact).norm() / exact.norm())))
"""


@pytest.mark.skipif(not dynamic_kernel_available(), reason="PyTorch's x86 quantized engine is not in this build")
def test_fbgemm_without_avx512_vnni_never_saturates_8_bit_activations() -> None:
    """FBGEMM has no kernel for AVX-VNNI (the 256-bit kind of Intel's client CPUs): there, as on any
    CPU without AVX-512 VNNI, it sums u8 x s8 pairs in 16 bits, which 8-bit activations overflow.
    ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` makes this CPU run those kernels."""
    relative_error = float(run_child(SATURATING_ROWS, FBGEMM_ENABLE_INSTRUCTIONS="AVX2"))
    assert relative_error < 0.02


def test_rows_of_every_kind_prefilled_together_decode_as_each_alone(loaded: LoadedModel, one_thread: None) -> None:
    """Penalties, log probabilities, a seed, a stop string, one token to make, a one-token prompt
    and one that fills the context but one, all in one left-padded prefill (fp32)."""
    import torch

    from engine.serve.batch import BatchCache
    from engine.serve.engine import Stream, collect

    def make(prompt: tuple[int, ...], **sampling: Any) -> GenerationRequest:
        return GenerationRequest("r", prompt, SamplingParams(**({"max_tokens": 12, "temperature": 0.0} | sampling)))

    words = tuple(loaded.text_ids("class Reader:\n    def"))
    requests = [
        make(words, frequency_penalty=1.5, presence_penalty=0.5),
        make(words[:3], logprobs=2),
        make(words[:4], temperature=1.0, top_p=0.9, seed=11),
        make(words[:2], max_tokens=1),
        make(words[:1]),
        make(words[:5], stop=("e",)),
        make(tuple([5] * (loaded.context_length - 1)), max_tokens=1),
    ]

    def run(groups: list[list[GenerationRequest]]) -> list[tuple[object, ...]]:
        batch = BatchCache(loaded)
        streams = []
        with torch.inference_mode():
            for group in groups:
                made = [Stream(request, lambda: None) for request in group]
                batch.add([(stream, 3) for stream in made])
                streams += made
            while batch.rows:
                batch.decode()
        done = [collect(stream) for stream in streams]
        return [(c.token_ids, c.text, c.finish_reason, [round(p.logprob, 4) for p in c.logprobs]) for c in done]

    assert run([requests]) == run([[request] for request in requests])
