"""``routeshell eval judge``: the model under test answers each sample, a judge model scores the answer.

:func:`run_judge` reads the test set, asks both endpoints through :class:`~engine.llm.client.ChatClient`
(its retries, size caps and one-line errors) from a bounded pool of worker threads, keeps every
answer and verdict in the cache of :mod:`engine.evaluation.store` as it arrives, and ends by writing
``details.jsonl`` (one line per sample, in the order of the test set) and ``summary.json`` (the
averages and the counts), both atomically.

A sample whose request an endpoint rejects (HTTP 400, 413, 422: a prompt too long for the context,
say) is ``failed`` and the run goes on; an endpoint that cannot answer at all (unreachable, a wrong
key, a wrong URL, a malformed or HTML reply, 5xx after the retries) stops the run with its
:class:`~engine.llm.client.EndpointError` (exit code 3). What was cached stays: the same command
resumes, asking only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.config.profiles import Endpoint
from engine.evaluation.samples import Sample, read_samples
from engine.evaluation.scoring import (
    CRITERIA,
    PROMPT_VERSION,
    Scores,
    judge_messages,
    parse_scores,
    repair_messages,
    response_format,
)
from engine.evaluation.store import (
    AnswerRecord,
    CacheRecord,
    ResultStore,
    Verdict,
    VerdictRecord,
    cache_key,
    json_text,
    jsonl_text,
    write_atomic,
)
from engine.events import Event
from engine.llm.client import ChatClient, EndpointError
from engine.model_events import EvalAverages, EvalCounts, EvalStatus, EvalSummary
from engine.thread_pool import run_pool

#: Bumped when the way the model under test is asked changes, so that cached answers are not reused.
ANSWER_VERSION = 1
#: HTTP statuses that reject one request, not the endpoint: that sample fails and the run goes on.
SAMPLE_STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True)
class JudgeOptions:
    """What an evaluation asks: the test set, both endpoints (with their model names) and where results go."""

    data: tuple[Path, ...]
    model: Endpoint
    judge: Endpoint
    out: Path
    concurrency: int = 4
    limit: int | None = None


@dataclass(frozen=True)
class SampleResult:
    """The outcome of one sample: ``reason`` is the judge's for a scored sample, else why it has no scores."""

    sample: Sample
    status: EvalStatus
    answer: str | None
    scores: Scores | None
    reason: str
    cached: bool = False

    def details(self) -> dict[str, Any]:
        """Return the sample's line of ``details.jsonl``."""
        return {
            "index": self.sample.index,
            "status": self.status,
            "question": self.sample.question,
            "reference": self.sample.reference,
            "answer": self.answer,
            "scores": None if self.scores is None else {c: self.scores[c] for c in CRITERIA},
            "reason": self.reason,
            "cached": self.cached,
        }


@dataclass
class JudgeOutcome:
    """What :func:`run_judge` returns: the summary as written, and every sample's result in order."""

    summary: EvalSummary
    results: list[SampleResult] = field(default_factory=list)

    def failure(self) -> str | None:
        """Return why the run is of no use, when there were samples and every one of them failed; else None."""
        results = self.results
        if not results or any(result.status != "failed" for result in results):
            return None
        return f"every sample failed; the first: {results[0].reason}"


def averages(results: Sequence[SampleResult]) -> EvalAverages:
    """Return the mean of each criterion over the scored results (None each when none is scored)."""
    scored = [result.scores for result in results if result.scores is not None]

    def mean(pick: Callable[[Scores], int]) -> float | None:
        return round(sum(pick(s) for s in scored) / len(scored), 4) if scored else None

    return {
        "accuracy": mean(lambda s: s["accuracy"]),
        "completeness": mean(lambda s: s["completeness"]),
        "fluency": mean(lambda s: s["fluency"]),
        "professionalism": mean(lambda s: s["professionalism"]),
        "overall": mean(lambda s: s["overall"]),
    }


def counts(results: Sequence[SampleResult]) -> EvalCounts:
    """Return how many results are scored, unscored and failed."""
    statuses = [result.status for result in results]
    return {
        "scored": statuses.count("scored"),
        "unscored": statuses.count("unscored"),
        "failed": statuses.count("failed"),
    }


class _Judging:
    """The keys and the two conversations of one sample; run in a worker thread."""

    def __init__(self, options: JudgeOptions, model: ChatClient, judge: ChatClient) -> None:
        self.options = options
        self.model = model
        self.judge = judge

    def answer_key(self, sample: Sample) -> str:
        return cache_key("answer", ANSWER_VERSION, sample.fingerprint(), self.options.model.model)

    def verdict_key(self, sample: Sample) -> str:
        return cache_key(
            "verdict", PROMPT_VERSION, sample.fingerprint(), self.options.model.model, self.options.judge.model
        )

    def run(self, sample: Sample, cached: AnswerRecord | None, post: Callable[[CacheRecord], None]) -> SampleResult:
        """Answer (unless ``cached``) and judge ``sample``; each new record goes to ``post`` to be kept."""
        if cached is None:
            try:
                reply = self.model.chat(list(sample.prompt))
            except EndpointError as err:
                if err.status not in SAMPLE_STATUSES:
                    raise
                return SampleResult(sample, "failed", None, None, f"the model under test: {err}")
            if reply.defect is not None:
                return SampleResult(sample, "failed", reply.content, None, f"the model's answer: {reply.defect}")
            cached = {"kind": "answer", "key": self.answer_key(sample), "answer": reply.content,
                      "finish_reason": reply.finish_reason}  # fmt: skip
            post(cached)
        answer = cached["answer"]
        messages = judge_messages(sample, answer)
        problem = ""
        for attempt in (1, 2):
            try:
                reply = self.judge.chat(messages, response_format=response_format(), temperature=0.0)
            except EndpointError as err:
                if err.status not in SAMPLE_STATUSES:
                    raise
                return SampleResult(sample, "failed", answer, None, f"the judge: {err}")
            parsed = parse_scores(reply.content) if reply.defect is None else reply.defect
            if not isinstance(parsed, str):
                verdict = self._verdict(sample, "scored", answer, parsed, None)
                post(verdict)
                return SampleResult(sample, "scored", answer, parsed, parsed["reason"])
            problem = parsed
            if attempt == 1:
                messages = repair_messages(messages, reply.content, problem)
        reason = f"the judge's reply was not valid twice: {problem}"
        post(self._verdict(sample, "unscored", answer, None, reason))
        return SampleResult(sample, "unscored", answer, None, reason)

    def _verdict(
        self, sample: Sample, status: Verdict, answer: str, scores: Scores | None, problem: str | None
    ) -> VerdictRecord:
        return {"kind": "verdict", "key": self.verdict_key(sample), "status": status, "answer": answer,
                "scores": scores, "problem": problem}  # fmt: skip


def _from_cache(sample: Sample, record: VerdictRecord) -> SampleResult:
    scores = record["scores"]
    reason = scores["reason"] if scores is not None else (record["problem"] or "")
    return SampleResult(sample, record["status"], record["answer"], scores, reason, cached=True)


def run_judge(options: JudgeOptions, on_event: Callable[[Event], None]) -> JudgeOutcome:
    """Evaluate ``options.model`` on the test set with ``options.judge``; return the outcome.

    ``on_event`` gets ``eval_start``, one ``eval_sample`` per sample asked, then ``eval_done``.
    Raises :class:`~engine.errors.UsageError` for bad input (exit 2),
    :class:`~engine.llm.client.EndpointError` when an endpoint fails (exit 3),
    :class:`~engine.evaluation.store.EvalWriteError` when the results cannot be written (exit 1),
    and lets ``KeyboardInterrupt`` through; in every case what was answered and judged is kept.
    """
    samples = read_samples(options.data, limit=options.limit)
    with ResultStore(options.out) as store, ChatClient(options.model) as model, ChatClient(options.judge) as judge:
        judging = _Judging(options, model, judge)
        results: dict[int, SampleResult] = {}
        pending: list[tuple[Sample, AnswerRecord | None]] = []
        # A sample that repeats a pending one (the same prompt and reference) is asked once for both.
        twins: dict[str, list[Sample]] = {}
        for sample in samples:
            key = judging.verdict_key(sample)
            verdict = store.verdict(key)
            if verdict is not None:
                results[sample.index] = _from_cache(sample, verdict)
            elif key in twins:
                twins[key].append(sample)
            else:
                twins[key] = []
                pending.append((sample, store.answer(judging.answer_key(sample))))
        workers = max(1, min(options.concurrency, len(pending)))
        on_event({"type": "eval_start", "samples": len(samples), "cached": len(results), "concurrency": workers,
                  "out": str(options.out)})  # fmt: skip
        results_in = run_pool(
            pending, lambda item, post: judging.run(item[0], item[1], post), workers, store.append, name="eval-judge"
        )
        for done, result in enumerate(results_in, start=1):
            results[result.sample.index] = result
            for twin in twins[judging.verdict_key(result.sample)]:
                results[twin.index] = replace(result, sample=twin)
            on_event({"type": "eval_sample", "index": result.sample.index, "status": result.status,
                      "overall": None if result.scores is None else result.scores["overall"],
                      "reason": result.reason, "done": done, "total": len(pending)})  # fmt: skip
        ordered = [results[sample.index] for sample in samples]
        details_path = options.out.absolute() / "details.jsonl"
        summary_path = options.out.absolute() / "summary.json"
        summary: EvalSummary = {
            "data": [str(path.absolute()) for path in options.data],
            "model": options.model.model,
            "judge_model": options.judge.model,
            "prompt_version": PROMPT_VERSION,
            "samples": len(ordered),
            "counts": counts(ordered),
            "averages": averages(ordered),
            "details": str(details_path),
            "summary": str(summary_path),
        }
        write_atomic(details_path, jsonl_text([result.details() for result in ordered]))
        write_atomic(summary_path, json_text(summary))
    on_event({"type": "eval_done", **summary})
    return JudgeOutcome(summary, ordered)
