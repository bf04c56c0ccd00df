"""The running batch: its rows, their shared key/value cache, and each row's text as it grows.

Rows have prompts of different lengths, so the cache is left-padded: every row's newest token
sits in the last column, an attention mask marks the padding, and each row's positions count
its own tokens only. New rows are prefilled together (left-padded, grouped by length so that
little of the work is padding: :func:`prefill_groups`) and their cache joins the batch's; a row
that ends leaves it, and padding columns that no row needs any more are cut off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.serve.detokenize import PARTIAL, Detokenizer, incomplete_tail
from engine.serve.loaded import BASE_ADAPTER, LoadedModel
from engine.serve.sampling import Picked, pick
from engine.serve.types import GRAMMAR_FAILED, Delta, FinishReason, TokenLogprob, TopLogprob

if TYPE_CHECKING:
    import torch

    from engine.serve.engine import Stream
    from engine.serve.types import Constraint

log = logging.getLogger(__name__)


class Row:
    """One sequence of the batch: its request, its sampling state and the text it has sent."""

    def __init__(self, stream: Stream, loaded: LoadedModel, seed: int) -> None:
        import torch

        request = stream.request
        self.stream = stream
        self.loaded = loaded
        self.params = request.params
        self.prompt_tokens = len(request.prompt_ids)
        self.adapter = request.adapter or BASE_ADAPTER
        self.generator = torch.Generator().manual_seed(seed)
        width = int(loaded.model.config.vocab_size)
        penalised = self.params.presence_penalty != 0.0 or self.params.frequency_penalty != 0.0
        self.counts: torch.Tensor | None = torch.zeros(width) if penalised else None
        self.constraint: Constraint | None = request.grammar.new() if request.grammar is not None else None
        self.generated: list[int] = []
        self._detokenizer = Detokenizer(self._decode)
        self.sent = 0
        self.next_token = -1
        self.finished = False

    def accept(self, picked: Picked) -> None:
        """Take the picked token: send the text it completes, and end the row when it should end."""
        token = picked.token
        logprobs = self._logprobs(picked)
        if self._grammar_failed(token):
            return
        if token in self.loaded.eos_ids:
            # Decoded before the end token joins: an end token that is not a special token of the
            # tokenizer (``<|sep|>``, which ends every chat reply) would otherwise end the text.
            rest = self._text(final=True)[self.sent :]
            self.generated.append(token)
            self._finish(rest, (token,), logprobs, "stop")
            return
        if self.constraint is not None:
            self.constraint.consume(token)
            if self._grammar_failed(token):
                return
        self.generated.append(token)
        if self.counts is not None:
            self.counts[token] += 1
        self.next_token = token
        text = self._text()
        stop_at = self._stop_at(text)
        if stop_at is not None:
            self._finish(text[self.sent : stop_at], (token,), logprobs, "stop")
        elif self.constraint is not None and self.constraint.done():
            self._finish(self._text(final=True)[self.sent :], (token,), logprobs, "stop")
        elif (
            len(self.generated) >= self.params.max_tokens
            or self.prompt_tokens + len(self.generated) >= self.loaded.context_length
        ):
            self._finish(self._text(final=True)[self.sent :], (token,), logprobs, "length")
        else:
            safe = self._safe_end(text)
            chunk = text[self.sent : safe] if safe > self.sent else ""
            self.sent = max(self.sent, safe)
            self.stream.put(Delta(chunk, (token,), logprobs))

    def _grammar_failed(self, token: int) -> bool:
        """End the row in error when its grammar gave up (computing a mask or taking a token): not the
        model's doing, and its text is no answer."""
        failed = getattr(self.constraint, "error", None)
        if not failed:
            return False
        self.generated.append(token)
        self.finish_with_error(GRAMMAR_FAILED + str(failed).strip().split("\n")[0][:300])
        return True

    def _decode(self, tokens: Sequence[int]) -> str:
        return str(self.loaded.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def _text(self, *, final: bool = False) -> str:
        """The text of the tokens so far, less a character whose bytes have not all come (``final``:
        with its bytes as replacement characters, for an answer that ends there)."""
        tokens = self.generated
        held = incomplete_tail(tokens, self.loaded.token_bytes)
        text = self._detokenizer.text(tokens[: len(tokens) - held])
        if final and held:
            text += b"".join(self.loaded.token_bytes(t) for t in tokens[-held:]).decode("utf-8", errors="replace")
        return text

    def _stop_at(self, text: str) -> int | None:
        found: int | None = None
        for stop in self.params.stop:
            # Only text not sent yet can hold a new stop string (sent text was checked already).
            at = text.find(stop, max(0, self.sent - len(stop) + 1))
            if at >= 0 and (found is None or at < found):
                found = at
        return found

    def _safe_end(self, text: str) -> int:
        """How much of ``text`` may be sent: not a partial character, nor what may begin a stop string."""
        end = len(text)
        while end > self.sent and text[end - 1] == PARTIAL and len(text) - end < 3:
            end -= 1
        for stop in self.params.stop:
            for size in range(min(len(stop) - 1, end - self.sent), 0, -1):
                if text[:end].endswith(stop[:size]):
                    end -= size
                    break
        return end

    def finish_with_error(self, why: str) -> None:
        """End the row because generating it failed."""
        self.finished = True
        self.stream.put(
            Delta(
                "",
                finish_reason="error",
                prompt_tokens=self.prompt_tokens,
                completion_tokens=len(self.generated),
                error=why,
            )
        )

    def _finish(
        self, text: str, tokens: tuple[int, ...], logprobs: tuple[TokenLogprob, ...], reason: FinishReason
    ) -> None:
        self.finished = True
        self.stream.put(
            Delta(
                text,
                tokens,
                logprobs,
                finish_reason=reason,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=len(self.generated),
            )
        )

    def _logprobs(self, picked: Picked) -> tuple[TokenLogprob, ...]:
        if picked.logprob is None:
            return ()
        loaded = self.loaded
        top = [TopLogprob(_piece(loaded, token), value, list(loaded.token_bytes(token))) for token, value in picked.top]
        token = picked.token
        return (TokenLogprob(_piece(loaded, token), picked.logprob, list(loaded.token_bytes(token)), top),)


# A prefill group's padded size may exceed its prompts' own tokens by this factor (plus a little),
# and holds at most this many tokens: longer prompts go alone.
GROUP_WASTE = 1.25
GROUP_TOKENS = 4096


def prefill_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indexes of prompts of these ``lengths``, grouped to be prefilled together.

    Sorted by length, a prompt joins the group before it while the group, padded to its longest
    prompt, stays within :data:`GROUP_WASTE` of its own tokens and within :data:`GROUP_TOKENS`."""
    groups: list[list[int]] = []
    real = 0
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        size = lengths[index]
        if groups:
            padded = size * (len(groups[-1]) + 1)
            if padded <= GROUP_TOKENS and padded <= GROUP_WASTE * (real + size) + 16:
                groups[-1].append(index)
                real += size
                continue
        groups.append([index])
        real = size
    return groups


def _piece(loaded: LoadedModel, token: int) -> str:
    return loaded.token_bytes(token).decode("utf-8", errors="replace")


def kv_storage(loaded: LoadedModel) -> torch.dtype | None:
    """The dtype the key/value cache keeps (None: the model's own): bf16 for the int8 model, which
    computes in fp32 and attends with :func:`engine.serve.attention.decode_attention` (the one
    attention that takes a cache narrower than its queries), where either the native kernel reads
    bf16 or the CPU converts it natively.

    Measured on the ``small`` preset, eight rows decoded 6% faster with PyTorch's attention on fp32
    copies, before the native kernel. On a pretrained nano model, 24 prompts decoded in fixed
    batches of eight, 96 greedy tokens each, differed from fp32 on 8 prompts with either cache;
    against the fp32 cache, 4 continuations changed. bf16, not fp16: the same speed, and the range
    of fp32, so that no key or value of any model overflows."""
    import torch

    from engine.serve.attention import NAME
    from engine.serve.loaded import cpu_has_bf16
    from engine.serve.native import native_kernels

    config = loaded.model.config
    if loaded.dtype != "int8" or getattr(config, "_attn_implementation", None) != NAME:
        return None
    return torch.bfloat16 if native_kernels() is not None or cpu_has_bf16() else None


class BatchCache:
    """The rows being decoded and their left-padded key/value cache."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.rows: list[Row] = []
        self.cache: Any = None
        self.mask: torch.Tensor | None = None
        self._finished: list[Stream] = []

    def add(self, streams: Sequence[tuple[Stream, int]]) -> int:
        """Prefill the prompts of ``streams`` (each with its seed) in one left-padded pass, pick each
        one's first token and make them rows of the batch; return how many tokens were made."""
        import torch

        from engine.serve.kv_cache import growing_cache

        rows = [Row(stream, self.loaded, seed) for stream, seed in streams]
        device = self.loaded.device
        prompts = [stream.request.prompt_ids for stream, _ in streams]
        width = max(len(prompt) for prompt in prompts)
        ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        for index, prompt in enumerate(prompts):
            ids[index, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[index, width - len(prompt) :] = 1
        inputs: dict[str, Any] = {}
        if not bool(mask[:, 0].all()):
            inputs = {"attention_mask": mask, "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0)}
        cache = growing_cache(self.loaded.model.config, kv_storage(self.loaded))
        out = self._forward(rows, input_ids=ids, cache=cache, **inputs)
        picked = pick(out.logits[:, -1, :].float(), rows, self.loaded.vocab_size)
        self._join(cache, mask)
        self.rows.extend(rows)
        now = time.monotonic()
        for row, choice in zip(rows, picked, strict=True):
            row.stream.first_token_at = now
            self._accept(row, choice)
        self._drop_finished()
        return len(rows)

    def decode(self) -> int:
        """Run one decode step for every row; return how many tokens were made."""
        import torch

        assert self.mask is not None
        rows = self.rows
        device = self.loaded.device
        tokens = torch.tensor([[row.next_token] for row in rows], dtype=torch.long, device=device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(rows), 1))], dim=1)
        positions = self.mask.sum(dim=1, keepdim=True) - 1
        # Without padding the model's own causal path is faster than building a mask every step.
        mask = self.mask if self._padded() else None
        out = self._forward(rows, input_ids=tokens, attention_mask=mask, position_ids=positions, cache=self.cache)
        picked = pick(out.logits[:, -1, :].float(), rows, self.loaded.vocab_size)
        for row, choice in zip(rows, picked, strict=True):
            self._accept(row, choice)
        self._drop_finished()
        return len(rows)

    @staticmethod
    def _accept(row: Row, choice: Picked) -> None:
        # A failure of one row (its grammar, its text) ends that row alone.
        try:
            row.accept(choice)
        except Exception as err:
            log.exception("a sequence failed")
            if not row.finished:
                row.finish_with_error(f"{type(err).__name__}: {err}")

    def _padded(self) -> bool:
        assert self.mask is not None
        return len(self.rows) > 1 and not bool(self.mask[:, 0].all())

    def drop_cancelled(self) -> None:
        """End the rows whose client went away, and free their slots."""
        for row in self.rows:
            if row.stream.cancelled and not row.finished:
                row._finish("", (), (), "cancelled")
        self._drop_finished()

    def take_finished(self) -> list[Stream]:
        """The streams that ended since the last call."""
        finished, self._finished = self._finished, []
        return finished

    def clear(self) -> None:
        self._finished.extend(row.stream for row in self.rows)
        self.rows, self.cache, self.mask = [], None, None

    def _forward(self, rows: list[Row], **inputs: Any) -> Any:
        extra: dict[str, Any] = {}
        if self.loaded.adapters:
            extra["adapter_names"] = [row.adapter for row in rows]
        return self.loaded.model(use_cache=True, logits_to_keep=1, **inputs, **extra)

    def _join(self, cache: Any, new_mask: torch.Tensor) -> None:
        import torch
        from torch.nn.functional import pad

        length = new_mask.shape[1]
        if self.cache is None or self.mask is None:
            self.cache, self.mask = cache, new_mask
            return
        width = max(self.mask.shape[1], length)
        grow_old, grow_new = width - self.mask.shape[1], width - length
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([pad(old.keys, (0, 0, grow_old, 0)), pad(new.keys, (0, 0, grow_new, 0))])
            old.values = torch.cat([pad(old.values, (0, 0, grow_old, 0)), pad(new.values, (0, 0, grow_new, 0))])
        self.mask = torch.cat([pad(self.mask, (grow_old, 0)), pad(new_mask, (grow_new, 0))])

    def _drop_finished(self) -> None:
        import torch

        if all(not row.finished for row in self.rows):
            return
        keep = [index for index, row in enumerate(self.rows) if not row.finished]
        self._finished.extend(row.stream for row in self.rows if row.finished)
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        assert self.mask is not None
        self.rows = [self.rows[index] for index in keep]
        kept = torch.tensor(keep, dtype=torch.long, device=self.loaded.device)
        mask = self.mask[kept]
        # Columns of padding that no remaining row needs are cut off.
        first = int(torch.nonzero(mask.sum(dim=0))[0])
        for layer in self.cache.layers:
            layer.keys = layer.keys[kept, :, first:, :]
            layer.values = layer.values[kept, :, first:, :]
        self.mask = mask[:, first:]
