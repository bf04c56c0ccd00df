"""Attention of the int8 model, whose key/value cache is bf16 and whose queries are fp32.

A decode step attends from one new position to every cached one, and with eight rows reading the
cache is most of that work. Where the native kernel can be had (:mod:`engine.serve.native`) it
reads the bf16 cache directly. Otherwise the cache is copied to fp32 and attended with two batched
matrix products (``torch.bmm`` over each row and head), which did better than PyTorch's CPU flash
attention (``sdpa``): eight rows of the ``small`` preset decoded 3% faster in one process (861
against 837 tokens/s). Prompts (more than one new position) use ``sdpa`` on fp32 copies, each
row of left-padded prompts over its own positions (:func:`_prompts_alone`).

The function is registered with transformers' ``AttentionInterface`` under :data:`NAME`, with the
mask ``sdpa`` uses (a bool mask, True where a position may be attended, or None).
"""

from __future__ import annotations

import math
from typing import Any

import torch

#: The attention implementation's name in transformers' registries.
NAME = "routeshell_decode"


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``sdpa_attention_forward``'s contract: (batch, query length, heads, head size) out. ``key``
    and ``value`` may be in a narrower dtype than ``query`` (the cache's storage)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, positions, size = query.shape
    scale = scaling if scaling is not None else size**-0.5
    plain = positions == 1 and not dropout and kwargs.get("softcap") is None
    if plain:
        native = _native(query, key, value, attention_mask, scale)
        if native is not None:
            return native.view(rows, 1, heads, size), None
    key, value = key.to(query.dtype), value.to(query.dtype)
    if positions > 1 and not dropout and kwargs.get("softcap") is None:
        alone = _prompts_alone(module, query, key, value, attention_mask, scaling, **kwargs)
        if alone is not None:
            return alone, None
    if not plain or key.shape[1] != heads:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    length = key.shape[2]
    scores = torch.bmm(query.reshape(rows * heads, 1, size), key.reshape(rows * heads, length, size).transpose(1, 2))
    scores = scores.view(rows, heads, 1, length)
    scores.mul_(scale)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(attention_mask.logical_not(), -math.inf)
        else:
            scores.add_(attention_mask)
    probabilities = torch.softmax(scores, dim=-1)
    out = torch.bmm(probabilities.view(rows * heads, 1, length), value.reshape(rows * heads, length, size))
    return out.view(rows, 1, heads, size), None


def _prompts_alone(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float | None,
    **kwargs: Any,
) -> torch.Tensor | None:
    """Left-padded prompts read together, each row attended over its own positions only, as it is
    when read alone; None where the mask is not that of fresh, left-padded prompts.

    ``sdpa`` over a padded row does not give the numbers of the same row unpadded on every CPU
    (a rounding apart), so a prompt's logits would depend on what it was read with.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, positions, size = query.shape
    if mask is None or mask.dtype != torch.bool or tuple(mask.shape) != (rows, 1, positions, positions):
        return None
    if key.shape[2] != positions:  # a cache before these positions: not fresh prompts
        return None
    counts = mask[:, 0, -1, :].sum(-1).tolist()  # the newest position attends to each of its row's tokens
    causal = torch.ones(positions, positions, dtype=torch.bool, device=mask.device).tril()
    out = query.new_zeros(rows, positions, heads, size)
    for row, count in enumerate(counts):
        start = positions - count
        if (
            count < 1
            or mask[row, 0, start:, :start].any()
            or not torch.equal(mask[row, 0, start:, start:], causal[start:, start:])
        ):
            return None
        attended, _ = sdpa_attention_forward(
            module, query[row : row + 1, :, start:], key[row : row + 1, :, start:], value[row : row + 1, :, start:],
            None, scaling=scaling, dropout=0.0, **kwargs,
        )  # fmt: skip
        out[row, start:] = attended[0]
    return out


def _native(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> torch.Tensor | None:
    """The native kernel's attention (rows x heads x size), or None where it does not apply."""
    if not native_fits(query, key, value, mask):
        return None
    from engine.serve.native import native_kernels

    kernels = native_kernels()
    if kernels is None:
        return None
    rows, heads, _, size = query.shape
    allowed = None if mask is None else mask[:, 0, 0, :].expand(rows, key.shape[2]).contiguous()
    return kernels.attention(query.reshape(rows, heads, size).contiguous(), key, value, allowed, float(scale))


def native_fits(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether the native kernel takes these tensors, whose shapes and strides its C code trusts.

    It takes an fp32 query of one position, bf16 keys and values of one shape whose last dimension
    is contiguous, with query heads a multiple of key heads, and no mask or a bool mask that varies
    by row and position only (rows or 1, 1, 1, positions)."""
    if query.dim() != 4 or key.dim() != 4 or query.shape[2] != 1 or query.device.type != "cpu":
        return False
    if query.dtype != torch.float32 or key.dtype != torch.bfloat16 or value.dtype != torch.bfloat16:
        return False
    rows, heads, _, size = query.shape
    if key.shape != value.shape or key.device != query.device or value.device != query.device:
        return False
    kv_heads, length = key.shape[1], key.shape[2]
    if key.shape[0] != rows or key.shape[3] != size or kv_heads < 1 or heads % kv_heads or length < 1:
        return False
    if key.stride(3) != 1 or value.stride(3) != 1 or min(*key.stride(), *value.stride()) < 0:
        return False
    if mask is None:
        return True
    return (
        mask.dtype == torch.bool
        and mask.dim() == 4
        and mask.device == query.device
        and mask.shape[0] in (1, rows)
        and mask.shape[1:] == (1, 1, length)
    )


def use_decode_attention(model: Any) -> None:
    """Make ``model`` (a transformers model) attend with :func:`decode_attention`."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
