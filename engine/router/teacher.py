"""The teacher labeler: any OpenAI-compatible model (GPT-4o in the original design) labels tasks.

Requests run concurrently in a bounded pool. Every answer is cached on disk as soon as it comes
(:class:`~engine.jsonl.AppendOnlyCache`), so a run that is stopped (Ctrl-C, ``kill -9``) resumes
where it stopped and never asks twice for a task it has an answer to. Each answer is normalised
(:func:`normalise_answer`) and validated against ``decision.schema.json``; an invalid one is asked
again with the problem named, and after ``attempts`` invalid answers the task is dropped and
counted (the drop is cached too: delete the cache file to ask again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from engine.config.profiles import Endpoint
from engine.evaluation.store import cache_key
from engine.events import Event
from engine.jsonl import AppendOnlyCache
from engine.llm.client import ChatClient, EndpointError
from engine.names import display_name
from engine.router.decision import DEFAULT_ROUNDS, InvalidDecision, RouterDecision
from engine.router.labels import SYSTEM_PROMPT, LabelWriteError
from engine.router.tasks import RouterTask
from engine.thread_pool import run_pool

#: Bumped when the way the teacher is asked changes, so that cached answers are not reused.
TEACHER_VERSION = 1
#: HTTP statuses that reject one request, not the endpoint: that task is dropped and the run goes on.
TASK_STATUSES = frozenset({400, 413, 422})
#: How much of an invalid answer is kept in the cache, for the record.
KEPT_ANSWER_CHARS = 2000
MAX_ANSWER_TOKENS = 300

Outcome = Literal["labelled", "dropped"]


class TeacherRecord(TypedDict):
    """One task's line in the teacher cache."""

    key: str
    task_id: str
    status: Outcome
    decision: dict[str, Any] | None
    attempts: int
    problem: str | None


@dataclass(frozen=True)
class TeacherOptions:
    """Where the teacher is, where its answers are cached, how many requests run at once, and how
    many invalid answers a task may get before it is dropped."""

    endpoint: Endpoint
    cache: Path
    concurrency: int = 4
    attempts: int = 3


@dataclass
class TeacherOutcome:
    """The labels, and what it took: tasks asked this run, dropped tasks and invalid answers."""

    labels: list[tuple[RouterTask, RouterDecision]] = field(default_factory=list)
    asked: int = 0
    cached: int = 0
    dropped: list[str] = field(default_factory=list)
    invalid_answers: int = 0


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def normalise_answer(text: str) -> dict[str, Any] | str:
    """Return the decision document in a teacher's answer, or a string saying why there is none.

    Tolerated: a code fence or prose around the object, upper case, roles as a comma-separated
    string, a missing builder (added), rounds as a numeric string or out of 1-10 (held to it), a
    long reason (cut to 500 characters). Unknown keys are dropped. The topology and role names
    themselves must be right: the result still goes through ``decision.schema.json``.
    """
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return "no JSON object in the answer"
    try:
        data = json.loads(body[start : end + 1])
    except (ValueError, RecursionError):
        return "the answer's JSON does not parse"
    if not isinstance(data, dict):
        return "the answer is not a JSON object"
    document: dict[str, Any] = {}
    topology = data.get("topology")
    document["topology"] = topology.strip().lower() if isinstance(topology, str) else topology
    roles = data.get("roles")
    if isinstance(roles, str):
        roles = roles.split(",")
    if isinstance(roles, list):
        names = [role.strip().lower() if isinstance(role, str) else role for role in roles]
        roles = list(dict.fromkeys(names))
        if "builder" not in roles:
            roles.append("builder")
    document["roles"] = roles
    rounds = data.get("max_rounds", DEFAULT_ROUNDS)
    if isinstance(rounds, str) and rounds.strip().isdigit():
        rounds = int(rounds.strip())
    if isinstance(rounds, float) and rounds.is_integer():
        rounds = int(rounds)
    document["max_rounds"] = min(max(rounds, 1), 10) if isinstance(rounds, int) else rounds
    reason = data.get("reason", "")
    document["reason"] = (reason if isinstance(reason, str) else json.dumps(reason))[:500]
    return document


def _parse(data: dict[str, Any]) -> TeacherRecord | None:
    if data.get("status") not in ("labelled", "dropped") or not isinstance(data.get("task_id"), str):
        return None
    if data["status"] == "labelled":
        try:
            RouterDecision.from_json(data.get("decision"))
        except InvalidDecision:
            return None
    return {"key": data["key"], "task_id": data["task_id"], "status": data["status"],
            "decision": data.get("decision"), "attempts": int(data.get("attempts") or 1),
            "problem": data.get("problem")}  # fmt: skip


class TeacherCache(AppendOnlyCache[TeacherRecord]):
    """The teacher's answers on disk, by a key of the model, the prompt and the task."""

    def __init__(self, path: Path) -> None:
        shown = display_name(str(path))
        busy = f"another routeshell labelling run is using {shown} (wait for it, or give another --cache)"
        super().__init__(path, _parse, busy=busy, error=LabelWriteError)

    def add(self, record: TeacherRecord) -> None:
        """Add ``record``, on disk before this returns."""
        self.append(record["key"], record, record)


class _Teacher:
    def __init__(self, options: TeacherOptions, client: ChatClient) -> None:
        self.options = options
        self.client = client

    def key(self, task: RouterTask) -> str:
        endpoint = self.options.endpoint
        return cache_key("teacher", TEACHER_VERSION, endpoint.base_url, endpoint.model, SYSTEM_PROMPT, task.user_turn)

    def ask(self, task: RouterTask, post: Callable[[TeacherRecord], None]) -> TeacherRecord:
        messages: list[Any] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": task.user_turn},
        ]
        problem = ""
        for attempt in range(1, self.options.attempts + 1):
            try:
                reply = self.client.chat(
                    messages, response_format={"type": "json_object"}, temperature=0.0 if attempt == 1 else 0.7,
                    max_tokens=MAX_ANSWER_TOKENS,
                )  # fmt: skip
            except EndpointError as err:
                if err.status not in TASK_STATUSES:
                    raise
                problem = f"the endpoint refused the request: {err}"
                break
            document = normalise_answer(reply.content)
            if isinstance(document, dict):
                try:
                    decision = RouterDecision.from_json(document, router="teacher")
                    return {"key": self.key(task), "task_id": task.task_id, "status": "labelled",
                            "decision": dict(decision.as_json()), "attempts": attempt, "problem": None}  # fmt: skip
                except InvalidDecision as err:
                    problem = str(err)
            else:
                problem = document
            messages = [*messages[:2], {"role": "assistant", "content": reply.content[:KEPT_ANSWER_CHARS]},
                        {"role": "user", "content": f"That is not a valid decision ({problem}). "
                         "Answer with the JSON object only."}]  # fmt: skip
        return {"key": self.key(task), "task_id": task.task_id, "status": "dropped", "decision": None,
                "attempts": self.options.attempts, "problem": problem[:500]}  # fmt: skip


def teacher_labels(tasks: Sequence[RouterTask], options: TeacherOptions, on_event: Callable[[Event], None],
                   *, source: str, out: Path) -> TeacherOutcome:  # fmt: skip
    """Label ``tasks`` with the teacher; return the labels in task order and what it took.

    ``on_event`` gets ``label_start`` and one ``label_task`` per task. Raises
    :class:`~engine.llm.client.EndpointError` (exit code 3) when the endpoint fails, after keeping
    every answer that came, and :class:`LabelWriteError` when the cache cannot be written.
    """
    outcome = TeacherOutcome()
    with TeacherCache(options.cache) as cache, ChatClient(options.endpoint) as client:
        teacher = _Teacher(options, client)
        records: dict[str, TeacherRecord] = {}
        pending: list[RouterTask] = []
        for task in tasks:
            cached = cache.records.get(teacher.key(task))
            if cached is not None:
                records[task.task_id] = cached
            else:
                pending.append(task)
        outcome.cached = len(records)
        workers = max(1, min(options.concurrency, len(pending)))
        on_event({"type": "label_start", "source": source, "labeler": "teacher", "tasks": len(tasks),
                  "cached": len(records), "concurrency": workers, "out": str(out)})  # fmt: skip
        done = 0
        for task in tasks:
            if task.task_id in records:
                done += 1
                on_event({"type": "label_task", "task_id": task.task_id, "status": "cached",
                          "attempts": records[task.task_id]["attempts"], "problem": None, "done": done,
                          "total": len(tasks)})  # fmt: skip
        for record in run_pool(pending, teacher.ask, workers, lambda note: None, name="router-teacher"):
            cache.add(record)
            records[record["task_id"]] = record
            outcome.asked += 1
            done += 1
            outcome.invalid_answers += record["attempts"] - (record["status"] == "labelled")
            on_event({"type": "label_task", "task_id": record["task_id"], "status": record["status"],
                      "attempts": record["attempts"], "problem": record["problem"], "done": done,
                      "total": len(tasks)})  # fmt: skip
    for task in tasks:
        record = records[task.task_id]
        if record["status"] == "labelled":
            outcome.labels.append((task, RouterDecision.from_json(record["decision"], router="teacher")))
        else:
            outcome.dropped.append(task.task_id)
    return outcome
