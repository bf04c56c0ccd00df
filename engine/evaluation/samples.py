"""The test set of an evaluation: SFT rows read as questions with a reference answer.

A row is any shape :mod:`engine.tinyllm.sft_data` reads (chat messages, Alpaca, TinyLLM, reasoning);
the reference answer is its last assistant turn, and everything before that turn is what the model
under test is asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.llm.wire import ChatMessage
from engine.tinyllm.sft_data import Conversation, read_conversations


@dataclass(frozen=True)
class Sample:
    """One question of the test set: ``index`` counts from 1 in the order of the files."""

    index: int
    prompt: tuple[ChatMessage, ...]
    reference: str

    @property
    def question(self) -> str:
        """The last user turn: what a table or a details line shows of the sample."""
        return next((m["content"] for m in reversed(self.prompt) if m["role"] == "user"), "")

    def fingerprint(self) -> str:
        """Return a hash of the prompt and the reference: the sample's part of a cache key."""
        data = {"prompt": list(self.prompt), "reference": self.reference}
        return hashlib.sha256(
            json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8", "replace")
        ).hexdigest()


def to_sample(index: int, conversation: Conversation) -> Sample:
    """Return the sample of one conversation whose last turn is the assistant's (as every SFT row's is)."""
    *before, last = conversation
    prompt = tuple(ChatMessage(role=m["role"], content=m["content"]) for m in before)
    return Sample(index=index, prompt=prompt, reference=last["content"])


def read_samples(paths: Sequence[Path], *, limit: int | None = None) -> list[Sample]:
    """Read the test set from ``paths`` (JSONL files of SFT rows, or directories of them); at most ``limit``.

    Raise :class:`~engine.tinyllm.errors.TrainInputError` (a usage error, exit code 2) for a missing
    file, a file that is not rows (naming its line) and a set without any row.
    """
    conversations = read_conversations(paths)
    if limit is not None:
        conversations = conversations[:limit]
    return [to_sample(index, conversation) for index, conversation in enumerate(conversations, start=1)]
