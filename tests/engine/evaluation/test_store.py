"""The results cache: records survive a torn last line, and a second run on the same directory is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.evaluation.store import CACHE_FILE, AnswerRecord, ResultStore, VerdictRecord, cache_key, write_atomic

ANSWER: AnswerRecord = {"kind": "answer", "key": "a1", "answer": "x\x1b[2J\udcff", "finish_reason": "stop"}
VERDICT: VerdictRecord = {"kind": "verdict", "key": "v1", "status": "unscored", "answer": "x", "scores": None,
                          "problem": "not JSON"}  # fmt: skip


def test_records_are_read_back_and_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as store:
        store.append(ANSWER)
        store.append(VERDICT)
    cache = tmp_path / CACHE_FILE
    # A run killed mid-write leaves half a line; junk and foreign records are skipped too.
    with cache.open("ab") as handle:
        bad_scores = {"kind": "verdict", "key": "v4", "status": "scored", "answer": "x", "scores": {"overall": 9}}
        handle.write(b'["not a record"]\n\xff\xfe\n' + json.dumps(bad_scores).encode() + b"\n")
        handle.write(b'{"kind": "verdict", "key": "v2", "status": "sco')
    with ResultStore(tmp_path) as store:
        assert store.answer("a1") == ANSWER
        assert store.verdict("v1") == VERDICT
        assert store.verdict("a1") is None
        assert store.answer("v1") is None
        assert store.verdict("v2") is None
        assert store.verdict("v4") is None
        store.append({**VERDICT, "key": "v3"})
    # The next record went on a line of its own, so nothing was lost to the torn one.
    lines = cache.read_bytes().split(b"\n")
    assert json.loads(lines[-2])["key"] == "v3"
    with ResultStore(tmp_path) as store:
        assert set(store.records) == {"a1", "v1", "v3"}


def test_a_second_run_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with ResultStore(tmp_path), pytest.raises(UsageError, match="another routeshell eval is writing into"):
        ResultStore(tmp_path)
    ResultStore(tmp_path).close()


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        ResultStore(tmp_path / "file")


def test_keys_differ_by_every_part() -> None:
    assert cache_key("verdict", 1, "sample", "m", "j") != cache_key("verdict", 1, "sample", "m", "j2")
    assert cache_key("verdict", 1, "sample", "m", "j") != cache_key("verdict", 2, "sample", "m", "j")
    assert cache_key("verdict", 1, "sample", "m", "j") == cache_key("verdict", 1, "sample", "m", "j")


def test_write_atomic_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "summary.json", "{}\n")
    write_atomic(tmp_path / "summary.json", '{"a": 1}\n')
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert (tmp_path / "summary.json").read_text() == '{"a": 1}\n'


@pytest.mark.parametrize("kind", ["endless", "fifo", "huge"])
def test_a_cache_that_is_endless_or_huge_is_one_line_not_memory(tmp_path: Path, kind: str) -> None:
    import os

    from engine.evaluation.store import EvalWriteError
    from engine.jsonl import MAX_CACHE_BYTES

    cache = tmp_path / CACHE_FILE
    if kind == "endless":
        cache.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(cache)
    else:
        with cache.open("wb") as handle:
            handle.truncate(MAX_CACHE_BYTES + 1)  # sparse: no disk, but more than a cache may hold
    reason = "longer than 256 MiB" if kind == "huge" else "not a regular file"
    with pytest.raises(EvalWriteError, match=f"cannot read .*{CACHE_FILE}: {reason}"):
        ResultStore(tmp_path)
