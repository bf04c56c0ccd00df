"""Picking the next token of each row of a batch: penalties, grammar masks, temperature, top-k, top-p.

Rows that decode greedily share one ``argmax``; a sampling row draws from its own seeded
generator, so a request with a ``seed`` draws the same tokens from the same logits whatever else
shares its batch. (On a GPU, the matrix kernels chosen for a batch's size may change the last bits
of a row's logits, and so, rarely, a token.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.serve.types import SamplingParams

if TYPE_CHECKING:
    import torch

    from engine.serve.types import Constraint


class SamplingRow(Protocol):
    """What :func:`pick` needs from a row of the batch."""

    params: SamplingParams
    generator: torch.Generator
    counts: torch.Tensor | None
    constraint: Constraint | None


@dataclass(frozen=True)
class Picked:
    """The token chosen for a row and, when the row asked for them, its log probabilities."""

    token: int
    logprob: float | None = None
    top: tuple[tuple[int, float], ...] = ()


def pick(logits: torch.Tensor, rows: Sequence[SamplingRow], vocab_size: int) -> list[Picked]:
    """Return the next token of each row; ``logits`` is ``[rows, width]`` fp32 and is changed in place.

    Columns from ``vocab_size`` on (padding of the output layer) are never picked.
    """
    import torch

    if logits.shape[1] > vocab_size:
        logits[:, vocab_size:] = float("-inf")
    # The model's own log probabilities (raw), or those of what the token is picked from (processed).
    raw = any(row.params.logprobs is not None and not row.params.processed_logprobs for row in rows)
    logprobs = torch.log_softmax(logits, dim=-1) if raw else None
    for index, row in enumerate(rows):
        params = row.params
        if row.counts is not None and (params.frequency_penalty or params.presence_penalty):
            # The counts are kept on the CPU; the logits are where the model is (a GPU too).
            counts = row.counts.to(logits.device)
            logits[index] -= params.frequency_penalty * counts + params.presence_penalty * (counts > 0)
    constrained = [index for index, row in enumerate(rows) if row.constraint is not None]
    if constrained:
        from engine.serve.grammar import allocate_bitmask, apply_bitmask

        bitmask = allocate_bitmask(len(rows), vocab_size)
        for index in constrained:
            constraint = rows[index].constraint
            assert constraint is not None
            constraint.fill_mask(bitmask, index)
        apply_bitmask(logits, bitmask, constrained)
    if any(row.params.logprobs is not None and row.params.processed_logprobs for row in rows):
        processed = torch.log_softmax(logits, dim=-1)
        if logprobs is None:
            logprobs = processed
        else:
            for index, row in enumerate(rows):
                if row.params.processed_logprobs:
                    logprobs[index] = processed[index]
    chosen = logits.argmax(dim=-1).tolist()
    for index, row in enumerate(rows):
        if not row.params.greedy:
            chosen[index] = _sample(logits[index], row.params, row.generator)
    picked = []
    for index, row in enumerate(rows):
        token = int(chosen[index])
        if logprobs is None or row.params.logprobs is None:
            picked.append(Picked(token))
            continue
        top: tuple[tuple[int, float], ...] = ()
        if row.params.logprobs > 0:
            values, ids = torch.topk(logprobs[index, :vocab_size], row.params.logprobs)
            # (Processed, a token the grammar rules out has no probability: it is no alternative.)
            top = tuple((i, v) for i, v in zip(ids.tolist(), values.tolist(), strict=True) if v != float("-inf"))
        picked.append(Picked(token, float(logprobs[index, token]), top))
    return picked


def _sample(row_logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    import torch

    scaled = row_logits / max(params.temperature, 1e-5)
    if params.top_k > 0 and params.top_k < scaled.shape[0]:
        kth = torch.topk(scaled, params.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if params.top_p < 1.0:
        ordered, order = torch.sort(scaled, descending=True)
        probabilities = torch.softmax(ordered, dim=-1)
        # Keep the smallest head whose mass reaches top_p (the first token always stays).
        outside = probabilities.cumsum(dim=-1) - probabilities > params.top_p
        ordered = ordered.masked_fill(outside, float("-inf"))
        scaled = torch.full_like(scaled, float("-inf")).scatter(0, order, ordered)
    probabilities = torch.softmax(scaled, dim=-1)
    if not bool(torch.isfinite(probabilities).all()) or float(probabilities.sum()) <= 0:
        return int(row_logits.argmax())
    # Drawn where the row's seeded generator is (the CPU), whatever device the logits are on: a CUDA
    # tensor cannot draw from a CPU generator, and the same seed gives the same draw on either device.
    return int(torch.multinomial(probabilities.to(generator.device), 1, generator=generator))
