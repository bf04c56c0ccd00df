"""Training features: token ids and labels built with ``datasets``, cached on disk.

Pretraining packs the token stream of every document (each ended by eos) into blocks of
``seq_len`` tokens; the labels are the ids themselves (the model shifts them). SFT renders each
conversation with the tokenizer's chat template and keeps the loss on the assistant tokens only:
the template marks them with ``{% generation %}``, and every other label is -100.

A built feature set is saved under the cache directory, keyed by everything it depends on, so a
second run over the same data and tokenizer loads it in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.textfile import read_capped
from engine.tinyllm.errors import TrainFailure

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from transformers import PreTrainedTokenizerBase

    from engine.tinyllm.sft_data import Conversation

IGNORE_INDEX = -100
#: The most bytes a cached feature set's report.json is read up to (it holds counts): a longer one
#: is damage, and the set is built again.
MAX_REPORT_BYTES = 1 << 20
SPLITS = ("train", "validation", "test")


def pack_texts(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, seq_len: int) -> Dataset:
    """Return a dataset of ``seq_len``-token blocks (``input_ids``, ``labels``) cut from ``texts``.

    Each text is tokenized without special tokens and ended with eos, the stream is cut into
    blocks, and the tail shorter than a block is dropped.
    """
    from datasets import Dataset

    eos = tokenizer.eos_token_id
    if eos is None:
        raise TrainFailure("the tokenizer has no eos token (retrain it with 'routeshell train tokenizer')")

    def tokenize(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"ids": [[*row, eos] for row in ids]}

    def blocks(batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        stream = [token for row in batch["ids"] for token in row]
        usable = len(stream) - len(stream) % seq_len
        cut = [stream[i : i + seq_len] for i in range(0, usable, seq_len)]
        return {"input_ids": cut, "labels": [list(block) for block in cut]}

    if not texts:
        return Dataset.from_dict({"input_ids": [], "labels": []})
    dataset = Dataset.from_dict({"text": list(texts)})
    tokenized = dataset.map(tokenize, batched=True, remove_columns=["text"])
    # Batches of many documents keep the dropped tails rare: only each batch's last block is cut short.
    return tokenized.map(blocks, batched=True, batch_size=2000, remove_columns=["ids"])


def conversation_features(
    conversation: Conversation, tokenizer: PreTrainedTokenizerBase, seq_len: int
) -> dict[str, list[int]] | None:
    """Return ``input_ids`` and assistant-only ``labels`` of one conversation, cut to ``seq_len``.

    Returns None when no assistant token survives the cut: such a row would teach nothing.
    """
    encoded: Any = tokenizer.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in conversation],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids: list[int] = list(encoded["input_ids"])[:seq_len]
    mask: list[int] = list(encoded["assistant_masks"])[:seq_len]
    labels = [token if keep else IGNORE_INDEX for token, keep in zip(ids, mask, strict=True)]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}


def sft_dataset(conversations: Sequence[Conversation], tokenizer: PreTrainedTokenizerBase, seq_len: int) -> Dataset:
    """Return the SFT features of ``conversations`` (rows with no assistant token left are dropped)."""
    from datasets import Dataset

    rows = [conversation_features(c, tokenizer, seq_len) for c in conversations]
    kept = [row for row in rows if row is not None]
    return Dataset.from_dict(
        {"input_ids": [row["input_ids"] for row in kept], "labels": [row["labels"] for row in kept]}
    )


def feature_key(parts: Mapping[str, Any]) -> str:
    """Return the cache key of a feature set: a hash of everything it was built from."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cached_features(
    cache_root: Path, key: str, build: Callable[[], tuple[DatasetDict, dict[str, Any]]]
) -> tuple[DatasetDict, dict[str, Any], bool]:
    """Return the feature set saved under ``key``, building and saving it first when it is missing.

    ``build`` returns the splits and a JSON-able report (what the cleaning removed, counts); the
    report is saved beside the data so that a cached run can show it again. The set is written to a
    temporary directory and renamed into place, so a crash never leaves a half set that loads.
    Returns the splits, the report and whether they came from the cache.
    """
    target = cache_root / key
    report_path = target / "report.json"
    if report_path.is_file():
        try:
            report = json.loads(read_capped(report_path, MAX_REPORT_BYTES).decode("utf-8"))
            return _load_splits(target / "data"), report, True
        except Exception:
            # Whatever stops an entry from loading (a truncated file, one written by another
            # version of ``datasets``) costs a rebuild, never the run: the entry is not trusted.
            shutil.rmtree(target, ignore_errors=True)
    splits, report = build()
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
        _save_splits(splits, staging / "data")
        (staging / "report.json").write_text(json.dumps(report), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    except OSError:
        # The cache is an optimisation: a full or read-only cache directory costs time, not the run.
        shutil.rmtree(locals().get("staging", cache_root / ".missing"), ignore_errors=True)
    return splits, report, False


def _save_splits(splits: DatasetDict, path: Path) -> None:
    """Save the splits that hold rows: ``datasets`` saves an empty split without a data file and
    then fails to load it, so :func:`_load_splits` makes the empty ones again."""
    from datasets import DatasetDict

    DatasetDict({name: part for name, part in splits.items() if len(part)}).save_to_disk(str(path))


def _load_splits(path: Path) -> DatasetDict:
    """Load what :func:`_save_splits` saved: every one of :data:`SPLITS`, a missing one empty,
    with the columns of the others."""
    from datasets import Dataset, DatasetDict, load_from_disk

    saved = load_from_disk(str(path))
    if not isinstance(saved, DatasetDict) or not len(saved):
        raise ValueError(f"not a saved feature set: {path}")
    features = next(iter(saved.values())).features
    empty = Dataset.from_dict({column: [] for column in features}, features=features)
    return DatasetDict({name: saved.get(name, empty) for name in SPLITS})
