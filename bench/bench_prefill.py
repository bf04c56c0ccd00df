"""What reading left-padded prompts one row at a time costs the int8 model's prefill.

:func:`engine.serve.attention._prompts_alone` attends each row of a padded batch of prompts over
its own positions, one ``sdpa`` call per row, so that a prompt's logits do not depend on what it
was read with. Measured in one run, on the shipped base model (nano: 6 layers, 4 heads of 64) in
int8, for prompts of mixed lengths grouped as the server groups them
(:func:`engine.serve.batch.prefill_groups`):

1. attention alone, on each group's query, key and value: one row at a time, against one batched
   ``sdpa`` call over the padded rows (the path before);
2. the whole prefill forward of every group, the model attending each way.

The two run in turn, ``ROUNDS`` times; the ratio printed is the median of the rounds' ratios (on a
shared machine the load drifts within minutes). Nothing here asserts a time.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = ROOT / "engine" / "models" / "base"
THREADS = 1
ROUNDS = 7
#: Prompts of a server's queue (how many, the shortest and the longest), grouped as the server
#: groups them: a mix of short and long ones, then many short ones, where the cost of a call of
#: ``sdpa`` for each row, not the positions it attends, would show.
QUEUES = ((24, 16, 600), (64, 8, 40))
BATCHED = "bench_batched_sdpa"


def batched_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None, **kwargs: Any
) -> tuple[Any, None]:
    """The path before: the padded rows in one ``sdpa`` call, key and value widened as decode_attention does."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    key, value = key.to(query.dtype), value.to(query.dtype)
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)


def padded(lengths: list[int], vocab: int, rng: random.Random) -> tuple[Any, Any]:
    """Left-padded token ids and their attention mask for prompts of ``lengths``."""
    import torch

    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, width - length :] = torch.tensor([rng.randrange(3, vocab) for _ in range(length)])
        mask[row, width - length :] = 1
    return ids, mask


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median_ratio(slow: Callable[[], object], fast: Callable[[], object]) -> tuple[float, float, float]:
    """Median seconds of ``slow`` and ``fast``, run in turn ``ROUNDS`` times, and the median of their ratios."""
    slow(), fast()  # warm up: first calls allocate
    pairs = [(timed(slow), timed(fast)) for _ in range(ROUNDS)]
    ratios = [a / b for a, b in pairs]
    return statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs), statistics.median(ratios)


def main() -> None:
    import torch
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    from engine.serve.batch import prefill_groups
    from engine.serve.loaded import load_model

    torch.set_num_threads(THREADS)
    loaded = load_model(MODEL, dtype="int8", device="cpu")
    model = loaded.model
    config = model.config
    AttentionInterface.register(BATCHED, batched_attention)
    AttentionMaskInterface.register(BATCHED, sdpa_mask)
    for prompts, shortest, longest in QUEUES:
        rng = random.Random(0)
        lengths = [rng.randint(shortest, longest) for _ in range(prompts)]
        groups = [[lengths[i] for i in group] for group in prefill_groups(lengths)]
        print(f"{prompts} prompts of {shortest}-{longest} tokens ({sum(lengths)} in all), {THREADS} thread(s), "
              f"in {len(groups)} groups of {[len(g) for g in groups]} rows")  # fmt: skip
        compare(model, [padded(group, config.vocab_size, rng) for group in groups], sum(lengths))


def compare(model: Any, batches: list[tuple[Any, Any]], tokens: int) -> None:
    """Print the two measures for the padded ``batches`` of ``tokens`` prompt tokens in all."""
    import torch

    from engine.serve.attention import NAME, decode_attention

    config = model.config

    # 1. Attention alone, on tensors of each group's shape (the model's views: batch, heads, positions, size).
    heads, size = config.num_attention_heads, config.head_dim
    tensors = []
    for ids, mask in batches:
        rows, width = ids.shape
        query, key, value = (torch.randn(rows, width, heads, size).transpose(1, 2) for _ in range(3))
        allowed = mask.bool()[:, None, None, :] & torch.ones(width, width, dtype=torch.bool).tril()
        tensors.append((query, key.to(torch.bfloat16), value.to(torch.bfloat16), allowed))

    class Layer(torch.nn.Module):
        is_causal = True

    layer = Layer()

    def attend(function: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for query, key, value, allowed in tensors:
                    function(layer, query, key, value, allowed, scaling=size**-0.5)

        return run

    rows_s, batch_s, ratio = median_ratio(attend(decode_attention), attend(batched_attention))
    print(f"  attention only: one row at a time {rows_s * 1e3:.1f} ms, one batched call {batch_s * 1e3:.1f} ms: "
          f"{ratio:.2f}x")  # fmt: skip

    # 2. The whole prefill forward of every group.
    def prefill(name: str) -> Callable[[], None]:
        def run() -> None:
            model.set_attn_implementation(name)
            with torch.inference_mode():
                for ids, mask in batches:
                    model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=1)

        return run

    rows_s, batch_s, ratio = median_ratio(prefill(NAME), prefill(BATCHED))
    speeds = f"{tokens / rows_s:.0f} against {tokens / batch_s:.0f} prompt tokens/s"
    print(f"  prefill forward: one row at a time {rows_s * 1e3:.1f} ms, one batched call {batch_s * 1e3:.1f} ms: "
          f"{ratio:.2f}x ({speeds})")  # fmt: skip
    model.set_attn_implementation(NAME)


if __name__ == "__main__":
    main()
