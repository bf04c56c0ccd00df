"""The results of an evaluation on disk: an append-only cache that a run resumes from, and atomic files.

``cache.jsonl`` under ``--out`` holds one JSON record a line: a model's answer to a sample, or the
judge's verdict on it. Each line is written whole, flushed and fsynced before the run goes on, so
a run stopped at any point (Ctrl-C, ``kill -9``, a power cut) loses at most the line being
written; that torn line is ignored when the cache is read back, and the next run starts on a line
of its own. Records are found by key (:func:`cache_key`): a hash of the sample and of everything
that would change the answer or the verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

from engine.errors import RouteshellError, UsageError
from engine.evaluation.scoring import Scores
from engine.jsonl import AppendOnlyCache, json_record_line
from engine.names import display_name
from engine.schemas import validator
from engine.textfile import replace_text

CACHE_FILE = "cache.jsonl"

Verdict = Literal["scored", "unscored"]


class EvalWriteError(RouteshellError):
    """The results could not be written (a full disk, a read-only directory): exit code 1."""


class AnswerRecord(TypedDict):
    """The model under test's answer to one sample."""

    kind: Literal["answer"]
    key: str
    answer: str
    finish_reason: str | None


class VerdictRecord(TypedDict):
    """The judge's verdict on one answer: its scores, or (unscored) why its replies held none."""

    kind: Literal["verdict"]
    key: str
    status: Verdict
    answer: str
    scores: Scores | None
    problem: str | None


CacheRecord = AnswerRecord | VerdictRecord


def cache_key(*parts: object) -> str:
    """Return the SHA-256 of ``parts`` as JSON: the key of a record made from exactly those inputs."""
    text = json.dumps(parts, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _record(data: dict[str, Any]) -> CacheRecord | None:
    """Return the record a cache line holds, or None for a foreign or outdated one."""
    if data.get("kind") == "answer" and isinstance(data.get("answer"), str):
        answer: AnswerRecord = {
            "kind": "answer", "key": data["key"], "answer": data["answer"], "finish_reason": data.get("finish_reason")
        }  # fmt: skip
        return answer
    if data.get("kind") == "verdict" and data.get("status") in ("scored", "unscored"):
        scores = data.get("scores")
        # Scores written under another schema (or by hand) are not trusted: the sample is asked again.
        if data["status"] == "scored" and not validator("judge_scores").is_valid(scores):
            return None
        verdict: VerdictRecord = {
            "kind": "verdict", "key": data["key"], "status": data["status"], "answer": str(data.get("answer", "")),
            "scores": scores, "problem": data.get("problem"),
        }  # fmt: skip
        return verdict
    return None


class ResultStore(AppendOnlyCache[CacheRecord]):
    """The cache of one output directory, open for appending and locked against a second run; a context manager."""

    def __init__(self, out: Path) -> None:
        self.out = out
        shown = display_name(str(out))
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {shown} is a file, not a directory (choose a directory for the results)")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise EvalWriteError(f"cannot make {shown}: {err.strerror or err}") from None
        busy = f"another routeshell eval is writing into {shown} (wait for it to end, or choose another --out)"
        super().__init__(out / CACHE_FILE, _record, busy=busy, error=EvalWriteError)

    def answer(self, key: str) -> AnswerRecord | None:
        """Return the cached answer with ``key``, if any."""
        record = self.records.get(key)
        return record if record is not None and record["kind"] == "answer" else None

    def verdict(self, key: str) -> VerdictRecord | None:
        """Return the cached verdict with ``key``, if any."""
        record = self.records.get(key)
        return record if record is not None and record["kind"] == "verdict" else None

    def append(self, record: CacheRecord) -> None:  # type: ignore[override]
        """Add ``record`` as one line, on disk (flushed and fsynced) before this returns."""
        super().append(record["key"], record, record)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced temporary file and a rename: all of it or nothing.

    Raise :class:`EvalWriteError` (one line) when the directory refuses it or the disk is full.
    """
    try:
        replace_text(path, text)
    except OSError as err:
        raise EvalWriteError(f"cannot write {display_name(str(path))}: {err.strerror or err}") from None


def json_text(data: object) -> str:
    """Return ``data`` as indented JSON text ending in a newline, for the summary file."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def jsonl_text(rows: list[Mapping[str, Any]]) -> str:
    """Return ``rows`` as JSON lines, for the per-sample details file."""
    return "".join(json_record_line(row).decode("utf-8") for row in rows)
