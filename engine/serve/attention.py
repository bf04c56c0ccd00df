"""Attention of a decode step as two batched matrix products, for the int8 model.

A decode step attends from one new position to every cached one. PyTorch's CPU flash attention
kernel, which ``sdpa`` picks, read the cache at about 8 GB/s here, where one core streams 20;
``torch.bmm`` over each row and head did better on the contiguous fp32 copies that the int8
model's bf16 cache hands to attention (:mod:`engine.serve.kv_cache`): eight rows of the ``small``
preset decoded 3% faster in one process (861 against 837 tokens/s). Prompts (more than one new
position) and grouped-query models keep ``sdpa``. The function is registered with transformers'
``AttentionInterface`` under :data:`NAME`, with the mask ``sdpa`` uses.
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
    """``sdpa_attention_forward``'s contract: (batch, query length, heads, head size) out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, positions, size = query.shape
    if positions != 1 or key.shape[1] != heads or dropout or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    length = key.shape[2]
    scores = torch.bmm(query.reshape(rows * heads, 1, size), key.reshape(rows * heads, length, size).transpose(1, 2))
    scores = scores.view(rows, heads, 1, length)
    scores.mul_(scaling if scaling is not None else size**-0.5)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(attention_mask.logical_not(), -math.inf)
        else:
            scores.add_(attention_mask)
    probabilities = torch.softmax(scores, dim=-1)
    out = torch.bmm(probabilities.view(rows * heads, 1, length), value.reshape(rows * heads, length, size))
    return out.view(rows, 1, heads, size), None


def use_decode_attention(model: Any) -> None:
    """Make ``model`` (a transformers model) attend with :func:`decode_attention`."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
