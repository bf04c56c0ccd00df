"""Sibling projections stacked into one int8 layer, and prefill on its own thread count."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from engine.serve.engine import Engine, collect
from engine.serve.loaded import LoadedModel, load_model, weight_bytes
from engine.serve.quantize import (
    DynamicInt8Linear,
    Int8Linear,
    Int8Projection,
    dynamic_kernel_available,
    float_dtype,
    quantize_int8,
)
from engine.serve.types import GenerationRequest, SamplingParams
from tests.engine.tinyllm.training_support import TrainRun

pytestmark = pytest.mark.usefixtures("one_thread")

KINDS = [
    pytest.param(True, id="fbgemm"),
    pytest.param(False, id="weight-only"),
]


def tiny_llama(dtype: torch.dtype) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).to(dtype).eval()


def greedy(model: LlamaForCausalLM, steps: int = 12) -> tuple[torch.Tensor, list[int]]:
    """The first step's logits and ``steps`` greedy tokens, decoded with the model's own cache."""
    ids = torch.tensor([[1, 5, 9, 14, 3, 27, 41]])
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        first, cache = out.logits[0, -1].float(), out.past_key_values
        tokens = [int(first.argmax())]
        for _ in range(steps - 1):
            out = model(input_ids=torch.tensor([[tokens[-1]]]), past_key_values=cache, use_cache=True)
            tokens.append(int(out.logits[0, -1].argmax()))
    return first, tokens


@pytest.mark.parametrize("dynamic", KINDS)
def test_stacked_siblings_decode_exactly_as_separate_layers(dynamic: bool) -> None:
    if dynamic and not dynamic_kernel_available():
        pytest.skip("PyTorch's x86 quantized engine is not in this build")
    base = tiny_llama(float_dtype(dynamic))
    separate, stacked = copy.deepcopy(base), copy.deepcopy(base)
    # 7 layers per block (q, k, v, o, gate, up, down) and the head: the same count either way
    assert quantize_int8(separate, dynamic=dynamic, fuse=False) == quantize_int8(stacked, dynamic=dynamic) == 15
    attention, mlp = stacked.model.layers[0].self_attn, stacked.model.layers[0].mlp
    for projection in (attention.q_proj, attention.k_proj, attention.v_proj, mlp.gate_proj, mlp.up_proj):
        assert isinstance(projection, Int8Projection)
    assert (attention.k_proj.out_features, mlp.up_proj.out_features) == (32, 128)
    # per-row scales, and one input scale for every sibling: the same numbers, not just close ones
    logits, tokens = greedy(separate)
    fused_logits, fused_tokens = greedy(stacked)
    assert torch.equal(logits, fused_logits)
    assert tokens == fused_tokens
    # the stacked matrix is counted once, as many bytes as the separate ones
    kind = DynamicInt8Linear if dynamic else Int8Linear
    assert sum(isinstance(module, kind) for module in stacked.modules()) == 2 * 4 + 1


@pytest.mark.parametrize("dynamic", KINDS)
def test_a_sibling_called_out_of_turn_computes_its_own_product(dynamic: bool) -> None:
    if dynamic and not dynamic_kernel_available():
        pytest.skip("PyTorch's x86 quantized engine is not in this build")
    dtype = float_dtype(dynamic)
    base = tiny_llama(dtype)
    separate, stacked = copy.deepcopy(base), copy.deepcopy(base)
    quantize_int8(separate, dynamic=dynamic, fuse=False)
    quantize_int8(stacked, dynamic=dynamic)
    plain, fused = separate.model.layers[1].self_attn, stacked.model.layers[1].self_attn
    torch.manual_seed(1)
    a, b = torch.randn(2, 3, 64, dtype=dtype), torch.randn(2, 3, 64, dtype=dtype)
    with torch.inference_mode():
        calls = [
            (fused.q_proj, plain.q_proj, a),
            (fused.k_proj, plain.k_proj, b),  # another input: not q's product
            (fused.k_proj, plain.k_proj, b),  # the same sibling twice
            (fused.v_proj, plain.v_proj, a),
            (fused.q_proj, plain.q_proj, a),
        ]
        for got, want, x in calls:
            assert torch.equal(got(x), want(x))


def test_int8_weight_bytes_count_the_stacked_matrices_once(pretrained: tuple[Path, TrainRun]) -> None:
    loaded = load_model(pretrained[0], dtype="int8")
    assert any(isinstance(module, Int8Projection) for module in loaded.model.modules())
    base = load_model(pretrained[0], dtype="fp32")
    # int8 matrices (one byte a weight, plus a 4-byte scale a row) against fp32's four bytes a weight
    assert weight_bytes(base) / 4.3 < weight_bytes(loaded) < weight_bytes(base) / 3.5


def run_threads_seen(loaded: LoadedModel, prefill_threads: int | None) -> tuple[list[tuple[int, ...]], set[int]]:
    """Greedy tokens of three prompts, and the torch thread counts the engine thread ran with."""
    seen: set[int] = set()
    forward = loaded.model.forward

    def spy(*args: object, **kwargs: object) -> object:
        if threading.current_thread().name == "routeshell-engine":
            seen.add(torch.get_num_threads())
        return forward(*args, **kwargs)

    loaded.model.forward = spy
    engine = Engine(loaded, max_batch=4, prefill_threads=prefill_threads)
    engine.start()
    try:
        params = SamplingParams(max_tokens=8, temperature=0.0)
        prompts = ["def main():", "import os\n", "class Point:"]
        streams = [
            engine.submit(GenerationRequest(str(i), tuple(loaded.text_ids(p)), params)) for i, p in enumerate(prompts)
        ]
        tokens = [collect(stream).token_ids for stream in streams]
    finally:
        engine.stop()
        del loaded.model.forward
    return tokens, seen


def test_prefill_runs_on_its_own_thread_count_and_decoding_on_the_engines(pretrained: tuple[Path, TrainRun]) -> None:
    loaded = load_model(pretrained[0], dtype="fp32")
    tokens, seen = run_threads_seen(loaded, None)
    assert seen == {1}
    tokens_two, seen_two = run_threads_seen(loaded, 2)
    assert seen_two == {1, 2}  # prefill on two threads, every decode step back on one
    assert tokens_two == tokens
    with pytest.raises(ValueError, match="prefill_threads"):
        Engine(loaded, prefill_threads=0)
