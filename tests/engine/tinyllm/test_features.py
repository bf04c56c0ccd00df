"""Training features: packed pretraining blocks, and SFT labels on the assistant tokens only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.tinyllm.features import (
    IGNORE_INDEX,
    MAX_REPORT_BYTES,
    cached_features,
    conversation_features,
    pack_texts,
    sft_dataset,
)
from tests.engine.tinyllm.training_support import TrainRun
from tests.helpers import endless, fifo, sparse


@pytest.fixture(scope="module")
def tokenizer(pretrained: tuple[Path, TrainRun]):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(pretrained[0]))


def test_only_the_assistant_tokens_carry_loss(tokenizer) -> None:  # type: ignore[no-untyped-def]
    conversation = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "def add(a, b):"},
        {"role": "assistant", "content": "    return a + b"},
        {"role": "user", "content": "And multiply?"},
        {"role": "assistant", "content": "    return a * b\t# 乘"},
    ]
    features = conversation_features(conversation, tokenizer, 256)
    assert features is not None
    ids, labels = features["input_ids"], features["labels"]
    assert len(ids) == len(labels)
    assert all(label in (token, IGNORE_INDEX) for token, label in zip(ids, labels, strict=True))
    # Each run of learned tokens is one assistant answer with the separator that closes it.
    runs: list[list[int]] = []
    for token, label in zip(ids, labels, strict=True):
        if label == IGNORE_INDEX:
            if runs and runs[-1]:
                runs.append([])
            continue
        if not runs:
            runs.append([])
        runs[-1].append(token)
    answers = [tokenizer.decode(run) for run in runs if run]
    assert answers == ["    return a + b\n<|sep|>", "    return a * b\t# 乘\n<|sep|>"]
    prompt = tokenizer.decode([token for token, label in zip(ids, labels, strict=True) if label == IGNORE_INDEX])
    assert "You answer briefly." in prompt
    assert "And multiply?" in prompt
    assert "return" not in prompt


def test_a_conversation_cut_before_its_answer_is_dropped(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long_question = [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "yes"}]
    assert conversation_features(long_question, tokenizer, 64) is None
    dataset = sft_dataset([long_question, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]],
                          tokenizer, 64)  # fmt: skip
    assert len(dataset) == 1


def test_pretraining_blocks_have_the_sequence_length_and_end_documents_with_eos(tokenizer) -> None:  # type: ignore[no-untyped-def]
    texts = [f"def f{i}(x):\n    return x * {i}\n" * 20 for i in range(30)]
    blocks = pack_texts(texts, tokenizer, 32)
    assert len(blocks) > 10
    assert all(len(row) == 32 for row in blocks["input_ids"])
    assert blocks["labels"] == blocks["input_ids"]
    stream = [token for row in blocks["input_ids"] for token in row]
    # Every document ends with eos; only the last one's may fall in the tail shorter than a block.
    assert len(texts) - 1 <= stream.count(tokenizer.eos_token_id) <= len(texts)
    assert len(pack_texts([], tokenizer, 32)) == 0


def _splits():  # type: ignore[no-untyped-def]
    from datasets import Dataset, DatasetDict

    return DatasetDict({name: Dataset.from_dict({"input_ids": [[1, 2, 3]]}) for name in ("train", "validation")})


@pytest.mark.parametrize("plant", ["dev-zero", "fifo", "huge", "sparse", "not-json"])
def test_a_damaged_cache_report_is_built_again_never_read_whole(tmp_path: Path, plant: str) -> None:
    # A cache entry's report.json was read whole, however big (a sparse file of many GiB was a
    # MemoryError traceback); past 1 MiB, even valid JSON, it is now damage, and the set is built again.
    builds: list[int] = []

    def build():  # type: ignore[no-untyped-def]
        builds.append(1)
        return _splits(), {"kept": len(builds)}

    _, report, cached = cached_features(tmp_path, "key", build)
    assert (report, cached) == ({"kept": 1}, False)
    report_path = tmp_path / "key" / "report.json"
    {"dev-zero": endless, "fifo": fifo}.get(plant, lambda p: None)(report_path)
    if plant == "huge":
        report_path.write_text(json.dumps({"kept": 1, "pad": "x" * MAX_REPORT_BYTES}))
    elif plant == "sparse":
        sparse(report_path, MAX_REPORT_BYTES + 1)
    elif plant == "not-json":
        report_path.write_bytes(b"\xff{")
    splits, report, cached = cached_features(tmp_path, "key", build)
    assert (report, cached, len(builds)) == ({"kept": 2}, False, 2)
    assert splits["train"]["input_ids"] == [[1, 2, 3]]
    assert cached_features(tmp_path, "key", build)[1:] == ({"kept": 2}, True)


def test_a_feature_set_with_an_empty_split_loads_from_the_cache(tmp_path: Path) -> None:
    # A corpus too small for a test split was cached with a 0-row split, which ``datasets`` then
    # failed to load: the second run over the same data ended in an IndexError.
    from datasets import Dataset, DatasetDict

    def build():  # type: ignore[no-untyped-def]
        blocks = {"input_ids": [[1, 2, 3]], "labels": [[1, 2, 3]]}
        parts = {"train": Dataset.from_dict(blocks), "validation": Dataset.from_dict(blocks)}
        return DatasetDict({**parts, "test": Dataset.from_dict({"input_ids": [], "labels": []})}), {"kept": 1}

    built, _, cached = cached_features(tmp_path, "key", build)
    assert not cached
    splits, report, cached = cached_features(tmp_path, "key", build)
    assert (report, cached) == ({"kept": 1}, True)
    assert {name: len(part) for name, part in splits.items()} == {"train": 1, "validation": 1, "test": 0}
    assert splits["test"].column_names == built["train"].column_names


def test_a_cache_entry_that_does_not_load_is_built_again(tmp_path: Path) -> None:
    builds: list[int] = []

    def build():  # type: ignore[no-untyped-def]
        builds.append(1)
        return _splits(), {"kept": len(builds)}

    cached_features(tmp_path, "key", build)
    # A split's state.json left as valid JSON that ``datasets`` cannot use (a KeyError there, not
    # one of the errors a damaged entry was expected to raise) ended the run instead of a rebuild.
    (tmp_path / "key" / "data" / "train" / "state.json").write_text("{}")
    splits, report, cached = cached_features(tmp_path, "key", build)
    assert (report, cached, len(builds)) == ({"kept": 2}, False, 2)
    assert splits["train"]["input_ids"] == [[1, 2, 3]]
    assert cached_features(tmp_path, "key", build)[1:] == ({"kept": 2}, True)
