"""The data of each training stage: read, cleaned, split, tokenized and cached.

``--data`` names files and directories; two words stand for the built-in sources: ``stdlib``
(the standard library sources, the default pretraining corpus) and ``builtin`` (the locally built
SFT or reasoning set, the default of those stages). Every filter's count and the split sizes are
reported as events before training starts.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from engine.events import EventSink
from engine.model_events import DataFilterEvent, DataReadyEvent, TrainStage
from engine.names import display_name
from engine.tinyllm.cleaning import PRETRAIN_CLEANING, SFT_CLEANING, CleaningConfig, clean
from engine.tinyllm.corpus import (
    Document,
    ReadReport,
    Splits,
    corpus_fingerprint,
    default_corpus_files,
    read_documents,
    split_by_hash,
)
from engine.tinyllm.errors import TrainInputError
from engine.tinyllm.features import cached_features, feature_key, pack_texts, sft_dataset
from engine.tinyllm.sft_data import Conversation, Markers, assistant_text, conversation_text, read_conversations

if TYPE_CHECKING:
    from datasets import DatasetDict
    from transformers import PreTrainedTokenizerBase

T = TypeVar("T")

STDLIB = "stdlib"
BUILTIN = "builtin"
#: Bumped when the way features are built changes, so that old cache entries are not reused.
FEATURES_VERSION = 1
#: How many reasoning problems the built-in reasoning set generates.
BUILTIN_REASONING_ROWS = 3000


@dataclass(frozen=True)
class DataSpec:
    """Where a stage's data comes from and how it is cleaned."""

    sources: tuple[str, ...]
    cleaning: CleaningConfig
    markers: Markers = "zh"
    seed: int = 0

    def paths(self) -> list[Path]:
        """Return the file and directory sources (not the built-in words), checked to exist."""
        found = []
        for source in self.sources:
            if source in (STDLIB, BUILTIN):
                continue
            path = Path(source)
            if not path.exists():
                raise TrainInputError(f"data file not found: {display_name(source)} (check the path given to --data)")
            found.append(path)
        return found

    def fingerprint(self) -> dict[str, Any]:
        """Return what identifies this data: file fingerprints, built-in sources, cleaning."""
        paths = self.paths()
        return {
            "files": corpus_fingerprint(paths) if paths else None,
            "stdlib": corpus_fingerprint(default_corpus_files()) if STDLIB in self.sources else None,
            "builtin": f"{sys.version}" if BUILTIN in self.sources else None,
            "cleaning": asdict(self.cleaning),
            "markers": self.markers,
            "seed": self.seed,
        }


def default_sources(stage: TrainStage) -> tuple[str, ...]:
    """Return the sources a stage reads when ``--data`` is not given."""
    return (STDLIB,) if stage in ("tokenizer", "pretrain") else (BUILTIN,)


def default_cleaning(stage: TrainStage) -> CleaningConfig:
    return PRETRAIN_CLEANING if stage in ("tokenizer", "pretrain") else SFT_CLEANING


def pretraining_splits(spec: DataSpec, stage: TrainStage, sink: EventSink) -> Splits[Document]:
    """Read, clean and split the pretraining documents, reporting each filter to ``sink``.

    Raises :class:`TrainInputError` when nothing is left to train on.
    """
    files = [*(default_corpus_files() if STDLIB in spec.sources else []), *spec.paths()]
    report = ReadReport()
    documents = list(read_documents(files, report))
    kept, filters = clean(documents, spec.cleaning, text=lambda doc: doc.text)
    _report_filters(stage, filters, sink)
    if not kept:
        raise _empty(stage, len(documents), report)
    return _with_training_split(stage, split_by_hash(kept, text=lambda doc: doc.text))


def _empty(stage: TrainStage, read: int, report: ReadReport | None = None) -> TrainInputError:
    skipped = f", {report.skipped} file(s) skipped as not UTF-8 or too large" if report and report.skipped else ""
    return TrainInputError(
        f"the {stage} corpus is empty: {read} document(s) read, none left after cleaning{skipped} "
        "(give more text with --data, or lower --min-chars)"
    )


def _with_training_split(stage: TrainStage, splits: Splits[T]) -> Splits[T]:
    """Return ``splits``; raise :class:`TrainInputError` when all of it went to the held-out splits,
    as one or two items can: the hash, not their length, put them there."""
    if splits.train:
        return splits
    items = "document(s)" if stage in ("tokenizer", "pretrain") else "row(s)"
    held_out = len(splits.validation) + len(splits.test)
    raise TrainInputError(
        f"the {stage} training split is empty: the {held_out} {items} given all went to the held-out "
        f"splits (validation {len(splits.validation)}, test {len(splits.test)}, chosen by a hash of each); "
        f"give at least 3 {items} with --data, e.g. split a long file into several"
    )


def _report_filters(stage: TrainStage, filters: Sequence[Any], sink: EventSink) -> None:
    for report in filters:
        event: DataFilterEvent = {
            "type": "data_filter",
            "stage": stage,
            "filter": report.filter,
            "removed": report.removed,
            "kept": report.kept,
        }
        sink(event)


def tokenizer_fingerprint(tokenizer_dir: Path) -> str:
    """Return a hash of the tokenizer's files, part of every feature cache key."""
    digest = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"):
        path = tokenizer_dir / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def stage_features(
    stage: TrainStage,
    spec: DataSpec,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_dir: Path,
    seq_len: int,
    cache_root: Path,
    sink: EventSink,
) -> DatasetDict:
    """Return the train/validation/test features of a stage, from the cache when they are there.

    Emits one ``data_filter`` event per cleaning filter and a ``data_ready`` event.
    """
    started = time.monotonic()
    key = feature_key(
        {
            "stage": stage,
            "version": FEATURES_VERSION,
            "data": spec.fingerprint(),
            "tokenizer": tokenizer_fingerprint(tokenizer_dir),
            "seq_len": seq_len,
        }
    )

    def build() -> tuple[DatasetDict, dict[str, Any]]:
        from datasets import DatasetDict

        filters: list[Any] = []

        def collect(event: Any) -> None:
            filters.append(event)

        if stage == "pretrain":
            doc_splits = pretraining_splits(spec, stage, collect)
            parts = {
                name: pack_texts([doc.text for doc in getattr(doc_splits, name)], tokenizer, seq_len)
                for name in ("train", "validation", "test")
            }
            documents_count = doc_splits.sizes()
        else:
            conversations = stage_conversations(stage, spec)
            kept_rows, reports = clean(conversations, spec.cleaning, text=conversation_text, length_text=assistant_text)
            _report_filters(stage, reports, collect)
            if not kept_rows:
                raise _empty(stage, len(conversations))
            row_splits = _with_training_split(stage, split_by_hash(kept_rows, text=conversation_text))
            parts = {
                name: sft_dataset(getattr(row_splits, name), tokenizer, seq_len)
                for name in ("train", "validation", "test")
            }
            documents_count = row_splits.sizes()
        if len(parts["train"]) == 0:
            raise TrainInputError(
                f"the {stage} data is too short for one training sequence of {seq_len} tokens "
                "(give more text with --data, or a smaller --seq-len)"
            )
        tokens = {name: sum(len(ids) for ids in part["input_ids"]) for name, part in parts.items()}
        report = {"filters": filters, "documents": documents_count, "tokens": tokens}
        return DatasetDict(parts), report

    features, report, cached = cached_features(cache_root, key, build)
    for event in report["filters"]:
        sink(event)
    ready: DataReadyEvent = {
        "type": "data_ready",
        "stage": stage,
        "documents": report["documents"],
        "tokens": report["tokens"],
        "cached": cached,
        "seconds": round(time.monotonic() - started, 3),
    }
    sink(ready)
    return features


def stage_conversations(stage: TrainStage, spec: DataSpec) -> list[Conversation]:
    """Return the conversations of an SFT or reasoning stage: files, then the built-in set if named."""
    conversations: list[Conversation] = []
    paths = spec.paths()
    if paths:
        conversations += read_conversations(paths, markers=spec.markers)
    if BUILTIN in spec.sources:
        from engine.tinyllm.builtin_sets import default_sft_conversations, reasoning_problems
        from engine.tinyllm.sft_data import to_conversation

        if stage == "reasoning":
            rows = reasoning_problems(BUILTIN_REASONING_ROWS, seed=spec.seed, markers=spec.markers)
            conversations += [to_conversation(dict(row), spec.markers) for row in rows]
        else:
            conversations += default_sft_conversations()
    return conversations
