"""The typed event contract: every JSON-lines event routeshell emits, one ``TypedDict`` per ``type``.

Agent runs (``routeshell run --json``, the Agent pane, ``--plain``), plan commands (``plan apply
--json`` and friends) and the long jobs to come all speak these events. ``EVENT_TYPES`` lists
them; ``engine/schemas/events.schema.json`` is generated from it (``python -m engine.events``)
and a test keeps the two in step.

Adding an event is one change here (or in :mod:`engine.model_events` for the model jobs'):
write its ``TypedDict`` (a ``type`` field holding a one-value
``Literal``), add the class to the ``Event`` union, then regenerate the schema. Every emitter hands
its events to :func:`emit` (or :func:`json_line` for standard output), the one place where,
with ``ROUTESHELL_CHECK_EVENTS`` set, each event is validated against the schema.
"""

# No ``from __future__ import annotations``: the schema is generated from the live annotations.

import json
import os
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Literal, NotRequired, TypedDict, Union, cast, get_args, get_type_hints

from engine.jsonl import json_text
from engine.kinds import JournalState, Role, Topology

#: Set to a file path to validate every emitted event; each invalid one appends a line there.
CHECK_ENV = "ROUTESHELL_CHECK_EVENTS"

JsonSink = Callable[[dict[str, Any]], None]
Plan = dict[str, Any]  # a normalised plan, validated by plan.schema.json where it enters


class UsageCounts(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool


# -- an agent run ----------------------------------------------------------------------------------


class RouteEvent(TypedDict):
    """The router's decision for the run (after ``--topology``)."""

    type: Literal["route"]
    thread: str
    router: str
    note: str | None
    topology: Topology
    roles: list[Role]
    max_rounds: int
    reason: str


class RoleStartEvent(TypedDict):
    type: Literal["role_start"]
    role: Role
    round: int


class DeltaEvent(TypedDict):
    """A piece of a model reply as it streams in."""

    type: Literal["delta"]
    role: Role
    text: str


class RepairEvent(TypedDict):
    """An invalid reply went back to the model with (at most ten of) its problems."""

    type: Literal["repair"]
    role: Role
    attempt: int
    problems: list[str]


class UsageEvent(TypedDict):
    """The tokens of one model call, with the role's and the run's totals so far."""

    type: Literal["usage"]
    role: Role
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool
    role_total: int
    run_total: int


class RoleEndEvent(TypedDict):
    type: Literal["role_end"]
    role: Role
    attempts: int
    seconds: float
    tokens: int


class PlanEvent(TypedDict):
    """A validated plan from a role, before its review."""

    type: Literal["plan"]
    id: str
    role: Role
    plan: Plan


class PreviewEvent(TypedDict):
    """One step of a plan as it would run (dry run): summary, diff, and the problem if it would fail."""

    type: Literal["preview"]
    index: int
    op: str
    summary: str
    diff: str | None
    problem: str | None


class Seen(TypedDict):
    """What a plan's preview read of the workspace: a digest of the concrete steps it showed, and by
    path what it found there (a digest of a file's content where it read it, else of its identity:
    inode, size and times; what a directory holds; where a symlink leads). An approval applies the
    plan only while all of it is still so (``engine/plans/seen.py``)."""

    steps: str
    paths: dict[str, str]


class ApprovalRequest(TypedDict):
    """A plan waiting for the user's answer, as the run pauses with it; ``seen``: what its preview read."""

    id: str
    role: Role
    plan: Plan
    preview: list[PreviewEvent]
    runs: bool
    thread: str
    seen: NotRequired[Seen]


class ApprovalEvent(ApprovalRequest):
    """A plan waits for the user's answer (``routeshell run --resume --answer``)."""

    type: Literal["approval"]


#: What the user does with a plan waiting for approval; ``show`` is the answer of approval mode "never".
ApprovalAction = Literal["approve", "reject", "edit", "show"]


class ApprovalAnswer(TypedDict):
    """The answer to an ``approval`` event that a run resumes with: ``reason`` for a rejection, ``plan`` for an edit.

    ``seen`` is set by the session on an approval: the ``seen`` of the request it answers, which the
    apply checks (the plan is applied as it was shown, or not at all).
    """

    action: ApprovalAction
    reason: NotRequired[str]
    plan: NotRequired[Plan]
    seen: NotRequired[Seen]


class Verdict(TypedDict):
    """The tests' verdict from a plan's run steps: the first failing one, else the last."""

    passed: bool
    exit_code: int | None
    timed_out: bool
    tail: str
    runs: int


class VerdictEvent(Verdict):
    """The tests' verdict (``type`` "test")."""

    type: Literal["test"]


ReviewStatus = Literal["applied", "shown", "rejected", "failed", "reverted"]


class Review(TypedDict):
    """What became of a plan: ``journal`` is set when it was applied (and undoable)."""

    id: str
    role: Role
    round: int
    journal: str | None
    status: ReviewStatus
    summary: str


class ReviewedEvent(Review):
    """What became of a plan."""

    type: Literal["reviewed"]


class ErrorEvent(TypedDict):
    """A command or run ended with an error; ``exit_code`` is the process's."""

    type: Literal["error"]
    message: str
    exit_code: int
    thread: NotRequired[str]


class RunOutcome(TypedDict):
    """How a run ended: ``undo`` is the journal to undo, ``journals`` every plan it applied."""

    ok: bool
    summary: str
    undo: str | None
    journals: list[str]
    thread: str
    usage: NotRequired[UsageCounts]
    per_role: NotRequired[dict[str, UsageCounts]]


class FinalEvent(RunOutcome):
    """The last event of a run; ``paused``/``interrupted`` (and ``exit_code``) say why it is not done."""

    type: Literal["final"]
    exit_code: NotRequired[int]
    paused: NotRequired[bool]
    interrupted: NotRequired[bool]


class SessionEvent(TypedDict):
    """One row of ``routeshell sessions --json``."""

    type: Literal["session"]
    thread: str
    task: str
    updated: str
    status: Literal["done", "waiting for approval", "stopped"]
    ok: bool | None
    summary: str


# -- plans: apply, undo, recovery, history ---------------------------------------------------------


class StepEvent(TypedDict):
    """A plan step done; a ``run`` step adds its exit code (None on timeout) and output tail."""

    type: Literal["step"]
    index: int
    op: str
    exit_code: NotRequired[int | None]
    timed_out: NotRequired[bool]
    tail: NotRequired[str]


class AppliedEvent(TypedDict):
    """A plan is applied as journal ``journal``; ``replayed`` when it was applied before a resume."""

    type: Literal["applied"]
    journal: str
    steps: int
    replayed: NotRequired[bool]


class UndoneEvent(TypedDict):
    type: Literal["undone"]
    journal: str


class RecoveredEvent(TypedDict):
    """A journal an interrupted apply or undo left behind was finished; ``kept_in_trash``: what stays there."""

    type: Literal["recovered"]
    journal: str
    was: JournalState
    kept_in_trash: NotRequired[list[str]]


class HistoryFields(TypedDict):
    """A journal as ``plan history`` lists it; a damaged one has state "damaged" and a ``problem``."""

    id: str
    state: JournalState | Literal["damaged"]
    started: str
    steps: int | None
    goal: str
    via: str
    problem: NotRequired[str]


class HistoryEvent(HistoryFields):
    """One row of ``routeshell plan history --json``."""

    type: Literal["history"]


class JournalEvent(HistoryFields):
    """``routeshell plan show ID --json``: one applied plan, its steps, the files it touched, who asked."""

    type: Literal["journal"]
    origin: str | None
    plan_steps: list[dict[str, Any]]
    files: list[str]


class UndoPreviewEvent(TypedDict):
    """What undoing a journal would do (``plan undo --dry-run``), and what blocks it."""

    type: Literal["undo_preview"]
    journal: str
    actions: list[str]
    blocked: list[str]


class TrashFields(TypedDict):
    """One thing in the trash: ``id`` is ``JOURNAL/N``, ``origin`` the path it came from (None if unknown)."""

    id: str
    origin: str | None
    why: str
    size: int
    kind: Literal["file", "directory", "symlink", "other"]


class TrashEvent(TrashFields):
    """One row of ``routeshell trash list --json``."""

    type: Literal["trash"]


class RestoredEvent(TrashFields):
    """``routeshell trash restore ITEM --json``: the item put back."""

    type: Literal["restored"]


class TrashEmptiedEvent(TypedDict):
    type: Literal["trash_emptied"]
    items: int
    bytes: int


#: What an audit record says was done with a plan: ``refused`` by validation or policy,
#: ``rejected`` by the user when asked to approve it.
AuditAction = Literal["applied", "failed", "undone", "refused", "rejected"]
#: An audit record's outcome: "ok" for a plan applied or undone, else its action.
AuditResult = Literal["ok", "failed", "refused", "rejected"]


class AuditFields(TypedDict):
    """One line of ``.routeshell/audit.jsonl``: who did what with which plan, when (ISO 8601, UTC).

    ``paths`` holds at most 10,000 of the paths the plan names; ``paths_total`` counts them all.
    """

    time: str
    user: str
    origin: str
    thread: str | None
    plan_id: str | None
    action: AuditAction
    goal: str | None
    ops: list[str]
    paths: list[str]
    paths_total: int
    result: AuditResult
    reason: str | None


class AuditEvent(AuditFields):
    """One record of ``routeshell audit --json``."""

    type: Literal["audit"]


class WarningEvent(TypedDict):
    """Something a command skipped or could not do, and went on without (a damaged log line)."""

    type: Literal["warning"]
    message: str


# -- files: find, duplicates, disk usage -----------------------------------------------------------


class FoundEvent(TypedDict):
    """One entry ``routeshell files find --json`` selected; ``tags`` are a file's ([] for the others).

    With ``--semantic``, entries come best first and ``score`` is the cosine similarity (-1 to 1) of
    the file's name and first lines to the description."""

    type: Literal["found"]
    path: str
    kind: Literal["file", "dir", "link"]
    size: int
    mtime: float
    tags: list[str]
    score: NotRequired[float]


class DuplicateFile(TypedDict):
    path: str
    mtime: float


class DuplicatesEvent(TypedDict):
    """Files with the same content (``routeshell files duplicates --json``), newest first;
    ``wasted`` is ``size * (len(files) - 1)``."""

    type: Literal["duplicates"]
    size: int
    sha256: str
    files: list[DuplicateFile]
    wasted: int


class DiskUsageEvent(TypedDict):
    """One directory of ``routeshell files du --json``: apparent size and file count of all beneath it;
    ``depth`` is 0 for the directory asked about, 1 for one in it, and so on."""

    type: Literal["disk_usage"]
    path: str
    depth: int
    size: int
    files: int


from engine.model_events import (  # noqa: E402  (beside the union they join)
    CheckpointEvent,
    DataFilterEvent,
    DataReadyEvent,
    EvalDoneEvent,
    EvalSampleEvent,
    EvalStartEvent,
    LabelDoneEvent,
    LabelStartEvent,
    LabelTaskEvent,
    ServeReadyEvent,
    ServeRequestEvent,
    ServeStoppedEvent,
    TrainDoneEvent,
    TrainEvalEvent,
    TrainStartEvent,
    TrainStepEvent,
)

#: Every event, in the order they are documented: the one list to extend with a new event.
Event = Union[  # noqa: UP007  (a Union, so that EVENT_TYPES can be read from it at run time)
    RouteEvent,
    RoleStartEvent,
    DeltaEvent,
    RepairEvent,
    UsageEvent,
    RoleEndEvent,
    PlanEvent,
    PreviewEvent,
    ApprovalEvent,
    StepEvent,
    AppliedEvent,
    VerdictEvent,
    ReviewedEvent,
    ErrorEvent,
    FinalEvent,
    SessionEvent,
    UndoneEvent,
    RecoveredEvent,
    HistoryEvent,
    JournalEvent,
    UndoPreviewEvent,
    TrashEvent,
    RestoredEvent,
    TrashEmptiedEvent,
    AuditEvent,
    WarningEvent,
    FoundEvent,
    DuplicatesEvent,
    DiskUsageEvent,
    DataFilterEvent,
    DataReadyEvent,
    TrainStartEvent,
    TrainStepEvent,
    TrainEvalEvent,
    CheckpointEvent,
    TrainDoneEvent,
    ServeReadyEvent,
    ServeRequestEvent,
    ServeStoppedEvent,
    EvalStartEvent,
    EvalSampleEvent,
    EvalDoneEvent,
    LabelStartEvent,
    LabelTaskEvent,
    LabelDoneEvent,
]
EVENT_TYPES: tuple[type, ...] = get_args(Event)

#: Where an emitter hands its events (``on_event`` of apply, undo and recovery, an agent's stream).
EventSink = Callable[[Event], None]


def event_name(cls: type) -> str:
    """Return the ``type`` value of an event class."""
    (name,) = get_args(get_type_hints(cls)["type"])
    return str(name)


# -- emitting and checking -------------------------------------------------------------------------


def emit(sink: JsonSink, event: Mapping[str, Any]) -> None:
    """Hand ``event`` to ``sink``, checking it first when ``ROUTESHELL_CHECK_EVENTS`` is set."""
    check_event(event)
    sink(cast(dict[str, Any], event))


# Characters a terminal acts on that JSON leaves raw: DEL, C1 controls (ESC's 8-bit twins such as
# CSI, U+009B), bidirectional overrides and isolates, and the line and paragraph separators.
_TERMINAL_ACTIVE = re.compile("[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(event: Mapping[str, Any]) -> str:
    """Return ``event`` as one line of JSON (checked like :func:`emit`), printable on any UTF-8 stream.

    A number that is not finite is written as ``null`` (see :func:`engine.jsonl.json_text`). Text
    is kept as is where it can be; an event holding a lone surrogate (a file name that is
    not UTF-8) is written with ASCII escapes, and characters a terminal would act on (C1
    controls, bidirectional overrides) with ``\\u`` escapes: JSON readers turn both back into the
    same string.
    """
    check_event(event)
    line = json_text(event, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json_text(event)
    return _TERMINAL_ACTIVE.sub(_escaped, line)


def event_problem(event: Mapping[str, Any]) -> str | None:
    """Return why ``event`` breaks the contract (``events.schema.json``), or None when it keeps it."""
    from engine.schemas import describe_error, pointer

    kind = event.get("type") if isinstance(event, Mapping) else None
    known = _validators()
    if kind not in known:
        return (
            f"unknown event type {kind!r} (add a TypedDict for it to the Event union in engine/events.py, then "
            "python -m engine.events > engine/schemas/events.schema.json)"
        )
    errors = sorted(known[kind].iter_errors(dict(event)), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    path, reason = describe_error(errors[0])
    return f"{kind} event at {pointer(path)}: {reason}"


def check_event(event: Mapping[str, Any]) -> None:
    """With ``ROUTESHELL_CHECK_EVENTS`` naming a file, append a line there for an invalid ``event``.

    The test suite sets it for every test (subprocesses inherit it) and fails a test whose file
    is not empty afterwards. Without it this does nothing, so events cost no validation in use.
    """
    target = os.environ.get(CHECK_ENV)
    if not target:
        return
    problem = event_problem(event)
    if problem is not None:
        with open(target, "a", encoding="utf-8") as log:
            log.write(f"{problem}: {json.dumps(event, default=str)[:2000]}\n")


@cache
def _validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    from engine.schemas import load_schema

    schema = load_schema("events")
    return {
        name: Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})
        for name in schema["$defs"]
        if name in {event_name(cls) for cls in EVENT_TYPES}
    }


if __name__ == "__main__":
    from engine.event_schema import events_schema

    print(json.dumps(events_schema(), indent=2, ensure_ascii=False))
