"""The growing key/value cache: the same keys and values as transformers' DynamicLayer, written in place."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from engine.serve.kv_cache import GROWTH, GrowingLayer, growing_cache
from engine.serve.loaded import LoadedModel, load_model


def test_updates_match_dynamic_layer_and_write_in_place() -> None:
    torch.manual_seed(0)
    growing, dynamic = GrowingLayer(), DynamicLayer()
    steps = [torch.randn(2, 3, 5, 4)] + [torch.randn(2, 3, 1, 4) for _ in range(GROWTH + 10)]
    buffers = set()
    for step in steps:
        keys, values = growing.update(step, step * 2)
        want_keys, want_values = dynamic.update(step, step * 2)
        assert torch.equal(keys, want_keys)
        assert torch.equal(values, want_values)
        buffers.add(growing.keys.untyped_storage().data_ptr())
    assert growing.get_seq_length() == 5 + GROWTH + 10
    assert len(buffers) == 2  # one buffer, then one more when it was full


def test_replaced_keys_and_values_keep_growing_from_their_length() -> None:
    layer = GrowingLayer()
    layer.update(torch.zeros(1, 2, 4, 3), torch.zeros(1, 2, 4, 3))
    # rows join or leave: the batch assigns both, one after the other
    layer.keys = torch.cat([layer.keys, torch.ones(1, 2, 4, 3)])[:, :, 1:]
    layer.values = torch.cat([layer.values, torch.ones(1, 2, 4, 3)])[:, :, 1:]
    keys, values = layer.update(torch.full((2, 2, 1, 3), 5.0), torch.full((2, 2, 1, 3), 6.0))
    assert keys.shape == values.shape == (2, 2, 4, 3)
    assert keys[1, 0, :, 0].tolist() == [1.0, 1.0, 1.0, 5.0]
    assert values[0, 0, :, 0].tolist() == [0.0, 0.0, 0.0, 6.0]
    layer.keys = torch.zeros(2, 2, 7, 3)  # values not replaced: a step now would mix two states
    with pytest.raises(RuntimeError, match="keys hold 7 positions but values 4"):
        layer.update(torch.zeros(2, 2, 1, 3), torch.zeros(2, 2, 1, 3))


def test_the_model_decodes_the_same_with_either_cache(loaded: LoadedModel) -> None:
    from transformers import DynamicCache

    model = loaded.model
    prompt = torch.tensor([loaded.text_ids("def parse(line):\n")])

    def greedy(cache: object) -> list[int]:
        tokens, ids = [], prompt
        with torch.inference_mode():
            for _ in range(GROWTH + 8):  # past one growth of the buffer
                logits = model(input_ids=ids, past_key_values=cache, use_cache=True).logits
                ids = logits[:, -1:].argmax(-1)
                tokens.append(int(ids))
        return tokens

    assert greedy(growing_cache(model.config)) == greedy(DynamicCache(config=model.config))


def test_a_bf16_store_keeps_half_the_bytes_and_hands_them_back_as_stored() -> None:
    torch.manual_seed(1)
    narrow, wide = GrowingLayer(torch.bfloat16), GrowingLayer()
    for step in [torch.randn(2, 3, 5, 4)] + [torch.randn(2, 3, 1, 4) for _ in range(GROWTH + 3)]:
        keys, values = narrow.update(step, -step)
        want_keys, _ = wide.update(step, -step)
        assert keys.dtype == values.dtype == torch.bfloat16  # the attention widens them
        assert torch.equal(keys, want_keys.to(torch.bfloat16))
        assert torch.equal(values, (-want_keys).to(torch.bfloat16))
    assert narrow.keys is not None
    assert narrow.keys.dtype == torch.bfloat16
    assert narrow.get_seq_length() == wide.get_seq_length() == 5 + GROWTH + 3


def test_only_the_int8_model_keeps_a_bf16_cache(pretrained: tuple, loaded: LoadedModel) -> None:
    from engine.serve.batch import kv_storage
    from engine.serve.loaded import cpu_has_bf16
    from engine.serve.native import native_kernels

    assert kv_storage(loaded) is None  # fp32: its cache is fp32
    # int8, whose attention takes a bf16 cache: where the native kernel or the CPU reads bf16.
    int8 = load_model(pretrained[0], dtype="int8")
    assert kv_storage(int8) == (torch.bfloat16 if native_kernels() is not None or cpu_has_bf16() else None)
    # Labelled int8 but attending with sdpa, which needs the queries' dtype: the model's own.
    assert kv_storage(dataclasses.replace(loaded, dtype="int8")) is None
