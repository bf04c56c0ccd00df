"""The decode step's attention as batched matrix products: the numbers of ``sdpa``."""

from __future__ import annotations

import dataclasses

import torch

from engine.serve.attention import NAME, decode_attention
from engine.serve.batch import BatchCache
from engine.serve.engine import Stream
from engine.serve.loaded import LoadedModel, load_model
from engine.serve.types import GenerationRequest, SamplingParams
from tests.engine.serve.test_engine import PROMPTS


class _Module(torch.nn.Module):
    is_causal = True


def test_one_position_attends_as_sdpa_does_with_a_gapped_cache_and_padding() -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    buffer = torch.randn(3, 4, 40, 16)
    key, value = buffer[:, :, :29], torch.randn(3, 4, 40, 16)[:, :, :29]  # views of a cache with room
    query = torch.randn(3, 4, 1, 16)
    mask = torch.ones(3, 1, 1, 29, dtype=torch.bool)
    mask[0, ..., :7] = False  # a left-padded row
    for attention_mask in (mask, None):
        got, _ = decode_attention(_Module(), query, key, value, attention_mask, scaling=0.25)
        want, _ = sdpa_attention_forward(_Module(), query, key, value, attention_mask, scaling=0.25)
        assert got.shape == want.shape == (3, 1, 4, 16)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_the_int8_model_decodes_a_padded_batch_with_it(pretrained: tuple) -> None:
    int8 = load_model(pretrained[0], dtype="int8")
    assert int8.model.config._attn_implementation == NAME
    reference = dataclasses.replace(int8, model=load_model(pretrained[0], dtype="int8").model)
    reference.model.set_attn_implementation("sdpa")

    def logits(model: LoadedModel) -> list[torch.Tensor]:
        batch = BatchCache(model)
        greedy = SamplingParams(max_tokens=9, temperature=0.0)
        streams = [
            Stream(GenerationRequest(str(i), tuple(model.text_ids(p)), greedy), lambda: None)
            for i, p in enumerate(PROMPTS[:4])  # prompts of several lengths: a padded batch
        ]
        seen: list[torch.Tensor] = []
        forward = batch._forward

        def recorded(rows: list, **inputs: object) -> object:
            out = forward(rows, **inputs)
            seen.append(out.logits[:, -1].clone())
            return out

        batch._forward = recorded  # type: ignore[method-assign]
        with torch.inference_mode():
            batch.add([(stream, 0) for stream in streams])
            for _ in range(6):
                batch.decode()
        return seen

    for got, want in zip(logits(int8), logits(reference), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
