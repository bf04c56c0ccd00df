"""The oracle labeler: each candidate topology runs the real agent loop on tasks with tests, and
each task is labelled with the cheapest topology that passes.

For each task (HumanEval's: a function to write and its check) and each candidate decision, a
fresh temporary workspace gets ``solution.py`` (the function's signature and docstring); an agent
session on the profile's endpoints runs the task with the router forced to that candidate and
every plan approved; then the check runs through the sandbox's ``run`` (bubblewrap where it is
installed, with the profile's limits). Each attempt is one record: passed or not, the tokens it
spent, the seconds it took and why it failed. Records are cached line by line
(:class:`~engine.jsonl.AppendOnlyCache`), so a stopped run resumes and never repeats an attempt
it has a record of. The records feed the quality/cost evaluation; the label is the passing
candidate that spent the fewest tokens (a task no candidate passes gets no label, and is counted).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from agents.session import AgentSession, SessionOptions, resolve_endpoint
from engine.config.profiles import Profile
from engine.errors import RouteshellError, UsageError
from engine.evaluation.store import cache_key
from engine.jsonl import AppendOnlyCache
from engine.llm.client import EndpointError
from engine.names import display_name
from engine.plans.runner import Limits, bubblewrap, run_command
from engine.router.candidates import Candidate, candidate_by_key
from engine.router.decision import RouterDecision
from engine.router.labels import LabelWriteError
from engine.router.tasks import RouterTask

ORACLE_VERSION = 1
#: The candidates tried by default, cheapest first: one agent, a planner, a test loop, everything.
DEFAULT_CANDIDATES = ("single:builder", "pipeline:planner+builder", "loop:builder+tester:3",
                      "loop:planner+builder+tester+refactor:3")  # fmt: skip
CHECK_FILE = "_routeshell_check.py"
CHECK_TIMEOUT_S = 30


class OracleRecord(TypedDict):
    """One attempt: a task run with one candidate decision."""

    key: str
    task_id: str
    candidate: str
    passed: bool
    tokens: int
    seconds: float
    problem: str | None


@dataclass(frozen=True)
class OracleOptions:
    """The profile whose endpoints and sandbox the attempts use, the records file and the candidates."""

    profile: Profile
    records: Path
    candidates: tuple[Candidate, ...] = tuple(candidate_by_key(key) for key in DEFAULT_CANDIDATES)
    session: SessionOptions = field(default_factory=lambda: SessionOptions(approval="all"))


@dataclass
class OracleOutcome:
    """The labels, every record, and the tasks no candidate passed."""

    labels: list[tuple[RouterTask, RouterDecision]] = field(default_factory=list)
    records: list[OracleRecord] = field(default_factory=list)
    unsolved: list[str] = field(default_factory=list)
    attempted: int = 0


class _FixedRouter:
    """A router that always answers one candidate."""

    def __init__(self, candidate: Candidate) -> None:
        self.name = "oracle"
        self.candidate = candidate

    def route(self, task: str) -> RouterDecision:
        return self.candidate.decision(f"oracle: trying {self.candidate.key}", router=self.name)


def _parse(data: dict[str, Any]) -> OracleRecord | None:
    if not isinstance(data.get("task_id"), str) or not isinstance(data.get("candidate"), str):
        return None
    if not isinstance(data.get("passed"), bool) or not isinstance(data.get("tokens"), int):
        return None
    return {"key": data["key"], "task_id": data["task_id"], "candidate": data["candidate"], "passed": data["passed"],
            "tokens": data["tokens"], "seconds": float(data.get("seconds") or 0.0),
            "problem": data.get("problem")}  # fmt: skip


def check_program(task: RouterTask) -> str:
    """The program that checks ``solution.py`` against the task's tests: exit 0 when they pass."""
    assert task.tests is not None
    return f"from solution import *  # noqa\n\n{task.tests}"


def attempt(task: RouterTask, candidate: Candidate, options: OracleOptions) -> tuple[bool, int, str | None]:
    """Run ``task`` with ``candidate`` in a fresh workspace; return (passed, tokens spent, problem)."""
    tokens = 0

    def count(event: dict[str, Any]) -> None:
        nonlocal tokens
        if event.get("type") == "usage":
            tokens += int(event.get("total_tokens", 0))

    with tempfile.TemporaryDirectory(prefix="routeshell-oracle-") as folder:
        root = Path(folder)
        (root / "solution.py").write_text(task.prompt or "", encoding="utf-8")
        problem: str | None = None
        with AgentSession(root, options.profile, options.session, count, router=_FixedRouter(candidate)) as session:
            try:
                outcome = session.start(f"Implement the function in solution.py: {task.text}")
                if outcome.status != "done" or outcome.final is None or not outcome.final.get("ok"):
                    problem = "the agents did not finish the task"
            except EndpointError:
                raise
            except RouteshellError as err:
                problem = f"the run failed: {err}"
        (root / CHECK_FILE).write_text(check_program(task), encoding="utf-8")
        limits = Limits.from_profile(options.profile.data.get("sandbox", {}))
        result = run_command(root, ["python3", "-B", CHECK_FILE], CHECK_TIMEOUT_S, limits, bwrap=bubblewrap())
        passed = result.exit_code == 0
        if not passed:
            tail = result.output_tail.strip().splitlines()[-1:] if result.output_tail.strip() else []
            problem = problem or f"the check failed: {tail[0][:200] if tail else 'no output'}"
    return passed, tokens, problem if not passed else None


def oracle_labels(tasks: Sequence[RouterTask], options: OracleOptions,
                  on_event: Callable[[Any], None], *, source: str, out: Path) -> OracleOutcome:  # fmt: skip
    """Label ``tasks`` by running every candidate on each; return the labels and every record.

    Raises :class:`UsageError` for tasks without tests, :class:`EndpointError` (exit code 3) when
    the endpoint fails (every record made so far is kept), and :class:`LabelWriteError` when the
    records cannot be written.
    """
    missing = [task.task_id for task in tasks if task.tests is None]
    if missing:
        raise UsageError(f"--labeler oracle needs tasks with tests (--source humaneval); "
                         f"{display_name(missing[0])} has none")  # fmt: skip
    outcome = OracleOutcome()
    endpoint = resolve_endpoint(options.profile, "builder", options.session)
    model = f"{endpoint.base_url} {endpoint.model}"
    shown = display_name(str(options.records))
    busy = f"another routeshell labelling run is using {shown} (wait for it, or give another --cache)"
    with AppendOnlyCache(options.records, _parse, busy=busy, error=LabelWriteError) as cache:
        cached = sum(1 for t in tasks for c in options.candidates if _key(t, c, model) in cache.records)
        on_event({"type": "label_start", "source": source, "labeler": "oracle", "tasks": len(tasks),
                  "cached": cached // max(1, len(options.candidates)), "concurrency": 1, "out": str(out)})  # fmt: skip
        for done, task in enumerate(tasks, start=1):
            records = []
            for candidate in options.candidates:
                key = _key(task, candidate, model)
                record = cache.records.get(key)
                if record is None:
                    started = time.monotonic()
                    passed, tokens, problem = attempt(task, candidate, options)
                    record = {"key": key, "task_id": task.task_id, "candidate": candidate.key, "passed": passed,
                              "tokens": tokens, "seconds": round(time.monotonic() - started, 3),
                              "problem": problem}  # fmt: skip
                    cache.append(key, record, record)
                    outcome.attempted += 1
                records.append(record)
            outcome.records.extend(records)
            passing = [r for r in records if r["passed"]]
            if passing:
                best = min(passing, key=lambda r: r["tokens"])
                reason = f"oracle: the cheapest passing topology ({best['tokens']} tokens)"
                outcome.labels.append((task, candidate_by_key(best["candidate"]).decision(reason, router="oracle")))
            else:
                outcome.unsolved.append(task.task_id)
            on_event({"type": "label_task", "task_id": task.task_id, "status": "labelled" if passing else "dropped",
                      "attempts": len(records), "problem": None if passing else "no candidate passed",
                      "done": done, "total": len(tasks)})  # fmt: skip
    return outcome


def _key(task: RouterTask, candidate: Candidate, model: str) -> str:
    return cache_key("oracle", ORACLE_VERSION, model, task.task_id, task.text, candidate.key)
