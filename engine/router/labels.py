"""Labelled router samples: the chat JSONL of the original toolchain, written and read back.

A sample is ``{"messages": [system, user, assistant], "sample_type", "origin_task_id"}``; the user
turn is ``Task: ...`` and the assistant turn the decision JSON (``router_sample.schema.json``).
``sample_type`` says where the label came from: ``<source>_heuristic``, ``<source>_gold``,
``<source>_oracle`` or ``<source>_teacher_distilled``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from engine.errors import RouteshellError, UsageError
from engine.jsonl import json_record_line, read_jsonl
from engine.names import display_name
from engine.router.candidates import Candidate, canonical
from engine.router.decision import InvalidDecision, RouterDecision
from engine.router.heuristic import HeuristicRouter
from engine.router.tasks import TASK_PREFIX, RouterTask, schema_error
from engine.textfile import replace_text

Labeler = Literal["teacher", "heuristic", "oracle", "gold"]
LABELERS: tuple[Labeler, ...] = ("teacher", "heuristic", "oracle", "gold")

SYSTEM_PROMPT = (
    "You are a meta-router. Decide the best agent topology for the task: which roles run "
    "(planner, builder, tester, refactor; the builder always) and how. 'single' runs the builder "
    "alone; 'pipeline' runs the listed roles once, in order; 'loop' alternates builder and tester "
    "until the tests pass or max_rounds (1-10) runs out, then the optional refactor. Prefer the "
    "cheapest topology that will succeed: one agent is often enough. Answer with one JSON object: "
    '{"topology": "single"|"pipeline"|"loop", "roles": [...], "max_rounds": N, "reason": "..."}'
)


class LabelWriteError(RouteshellError):
    """The labels could not be written (a full disk, a read-only directory): exit code 1."""


class ChatMessage(TypedDict):
    """One turn of a sample."""

    role: Literal["system", "user", "assistant"]
    content: str


class RouterSample(TypedDict):
    """One labelled task, as written to the JSONL file."""

    messages: list[ChatMessage]
    sample_type: str
    origin_task_id: str


def sample_type(source: str, labeler: Labeler) -> str:
    """Return the ``sample_type`` of a label of ``source`` by ``labeler`` (``humaneval_teacher_distilled``...)."""
    return f"{source}_{'teacher_distilled' if labeler == 'teacher' else labeler}"


def source_of(kind: str) -> str:
    """Return the source named by a ``sample_type`` (``humaneval_teacher_distilled`` -> ``humaneval``)."""
    for suffix in ("_teacher_distilled", "_heuristic", "_oracle", "_gold"):
        if kind.endswith(suffix) and len(kind) > len(suffix):
            return kind[: -len(suffix)]
    return kind


def make_sample(task: RouterTask, decision: RouterDecision, labeler: Labeler) -> RouterSample:
    """Return the sample that labels ``task`` with ``decision``."""
    answer = json.dumps(decision.as_json(), ensure_ascii=False)
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": task.user_turn},
            {"role": "assistant", "content": answer},
        ],
        "sample_type": sample_type(task.source, labeler),
        "origin_task_id": task.task_id,
    }


def heuristic_label(task: RouterTask) -> RouterDecision:
    """The heuristic router's decision for ``task`` (the original ``--convert_humaneval`` labels)."""
    return HeuristicRouter().route(task.text)


def gold_label(task: RouterTask) -> RouterDecision:
    """The decision ``task`` carries from its source; raise :class:`UsageError` when it has none."""
    if task.gold is None:
        raise UsageError(
            f"task {display_name(task.task_id)!r} carries no decision: --labeler gold needs the files or "
            "icalfa source, or a file whose rows have a decision (or use --labeler heuristic or teacher)"
        )
    return task.gold.decision(task.gold_reason, router="gold")


def write_samples(path: Path, samples: Sequence[RouterSample]) -> None:
    """Write ``samples`` as JSONL to ``path``, all of them or nothing (a fsynced temporary file and a rename)."""
    try:
        replace_text(path, "".join(json_record_line(sample).decode("utf-8") for sample in samples))
    except OSError as err:
        raise LabelWriteError(f"cannot write {display_name(str(path))}: {err.strerror or err}") from None


@dataclass(frozen=True)
class LabelledTask:
    """A sample read back: its task, its label as a candidate, and where the label came from."""

    task: RouterTask
    label: Candidate
    reason: str
    sample_type: str
    system: str

    @property
    def task_id(self) -> str:
        """The labelled task's id, which decides its split."""
        return self.task.task_id


def read_samples(paths: Sequence[Path], *, drop_no_output: bool = False) -> tuple[list[LabelledTask], int]:
    """Read labelled samples from JSONL files; return them and how many rows had no usable answer.

    A row without an assistant turn, or whose assistant turn is not a valid decision, is an error
    naming the file and line, unless ``drop_no_output``: then it is dropped and counted. A task id
    that appears twice keeps its first label.
    """
    found: list[LabelledTask] = []
    seen: set[str] = set()
    dropped = 0
    for path in paths:
        name = display_name(str(path))
        for number, row in read_jsonl(path):
            if drop_no_output and not _has_answer(row):
                dropped += 1
                continue
            problem = schema_error(row, "router_sample")
            if problem is not None:
                raise UsageError(f"{name}:{number}: {problem} (expected a sample as 'routeshell train labels' writes)")
            assert isinstance(row, dict)
            messages = row["messages"]
            user = next(m["content"] for m in messages if m["role"] == "user")
            answer = next(m["content"] for m in messages if m["role"] == "assistant")
            system = next((m["content"] for m in messages if m["role"] == "system"), SYSTEM_PROMPT)
            try:
                decision = RouterDecision.from_json(json.loads(answer))
            except (ValueError, RecursionError, InvalidDecision) as exc:
                if drop_no_output:
                    dropped += 1
                    continue
                why = exc if isinstance(exc, InvalidDecision) else "not JSON"
                raise UsageError(f"{name}:{number}: the assistant turn is not a decision ({why})") from None
            task_id = row.get("origin_task_id") or f"{path.stem}_{number}"
            if task_id in seen:
                continue
            seen.add(task_id)
            kind = str(row.get("sample_type", "user"))
            task = RouterTask(task_id, source_of(kind), user.removeprefix(TASK_PREFIX))
            found.append(LabelledTask(task, canonical(decision), decision.reason, kind, system))
    return found, dropped


def _has_answer(row: object) -> bool:
    """Whether ``row`` holds an assistant turn with some content."""
    messages = row.get("messages") if isinstance(row, dict) else None
    return isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str) and m["content"]
        for m in messages
    )
