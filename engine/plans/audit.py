"""The audit log of plans: ``<workspace>/.routeshell/audit.jsonl``, one JSON object per line, append only.

Each line says who (user, origin, agent thread) did what (applied, failed, undone, refused,
rejected) with which plan (its journal id, goal, ops and the paths it names), and when.
Appending never raises: a log that cannot be written is a warning, never a reason to stop a plan.
Reading never trusts the file: every line that is not a whole record is skipped with a warning.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, get_args

from engine.events import AuditAction, AuditEvent, AuditFields, AuditResult
from engine.plans.journal import Via
from engine.workspace.state import (
    StateError,
    existing_state_dir,
    move_aside_hint,
    os_problem,
    state_dir,
    state_path,
    write_all,
)

__all__ = [
    "AUDIT_FILE",
    "HEADER",
    "Action",
    "AuditRecord",
    "Origin",
    "append_audit",
    "audit",
    "audit_entry",
    "read_audit",
]

AUDIT_FILE = "audit.jsonl"
Action = AuditAction
Origin = Via
ACTIONS: tuple[Action, ...] = get_args(AuditAction)
RESULTS: tuple[AuditResult, ...] = get_args(AuditResult)
_RESULT: dict[Action, AuditResult] = {
    "applied": "ok", "undone": "ok", "failed": "failed", "refused": "refused", "rejected": "rejected"
}  # fmt: skip
#: At most this many paths are written per record; ``paths_total`` keeps the real count.
MAX_PATHS = 10_000
#: A longer line is not read into memory: it is skipped as damaged.
MAX_LINE = 64 * 1024 * 1024
# A warning quotes at most this much of what was wrong (a bad value may be a megabyte long).
_MAX_WHY = 200


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry for the uid (a bare container)
        return str(os.getuid())


def _step_paths(step: Mapping[str, Any]) -> Iterator[str]:
    for key in ("path", "from", "to"):
        if isinstance(step.get(key), str):
            yield step[key]
    if isinstance(step.get("paths"), list):
        yield from (path for path in step["paths"] if isinstance(path, str))
    match = step.get("match")
    glob = match.get("glob") if isinstance(match, dict) else match
    if isinstance(glob, str):
        yield f"match:{glob}"


def audit_entry(
    *,
    action: Action,
    origin: str,
    plan: Mapping[str, Any] | None,
    plan_id: str | None = None,
    thread: str | None = None,
    reason: str | None = None,
    goal: str | None = None,
) -> AuditFields:
    """Return the audit record of ``action`` on ``plan`` (None when there was no plan to read).

    ``goal`` overrides the plan's own goal. The ops and paths are read from ``plan["steps"]``
    as they are, whether or not the plan is valid: a refused plan is recorded too.
    """
    steps = plan.get("steps") if plan is not None else None
    steps = [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []
    ops = sorted({step["op"] for step in steps if isinstance(step.get("op"), str)})
    # A dict keeps the order in which the steps name each path, without repeats.
    paths = list(dict.fromkeys(path for step in steps for path in _step_paths(step)))
    if goal is None and plan is not None and isinstance(plan.get("goal"), str):
        goal = plan["goal"]
    return {"time": _now_text(), "user": _user(), "origin": origin, "thread": thread, "plan_id": plan_id,
            "action": action, "goal": goal, "ops": ops, "paths": paths[:MAX_PATHS], "paths_total": len(paths),
            "result": _RESULT[action], "reason": reason}  # fmt: skip


def append_audit(root: Path, entry: Mapping[str, Any]) -> str | None:
    """Append ``entry`` as one line of ``root``'s audit log, durably (fsynced).

    The whole line or nothing is written. Never raises: returns None when the line is written,
    else a one-line warning (``audit log not written: <reason>``) for a full or read-only disk,
    a state directory that is not ours, or a log that is a symlink or not a regular file.
    """
    path = state_path(root) / AUDIT_FILE
    try:
        # ASCII: a non-UTF-8 file name is a lone surrogate here, and only its \u escape can be stored.
        line = (json.dumps(entry, ensure_ascii=True) + "\n").encode()
        path = state_dir(root) / AUDIT_FILE
        # Read and write, to see whether the last line was ended; O_NONBLOCK: a FIFO in the log's
        # place must not hang the plan.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(path, flags, 0o600)
        try:
            _append_line(fd, path, line)
        finally:
            os.close(fd)
    except (StateError, TypeError, ValueError) as exc:  # TypeError, ValueError: an entry JSON cannot hold
        return f"audit log not written: {exc}"
    except OSError as exc:
        return f"audit log not written: {os_problem(exc, 'cannot append to the audit log', path)}"
    return None


def audit(
    root: Path, action: Action, plan: Mapping[str, Any] | None, *, via: str, origin: str | None = None,
    plan_id: str | None = None, reason: str | None = None, emit: Callable[[Any], None] | None = None,
) -> None:  # fmt: skip
    """Append one record; an agent's ``origin`` (``<thread>/<plan>``) names its thread. A log that
    cannot be written is reported to ``emit`` as a ``warning`` event, never raised."""
    thread = origin.split("/")[0] if origin else None
    entry = audit_entry(action=action, origin=via, plan=plan, plan_id=plan_id, thread=thread, reason=reason)
    warning = append_audit(root, entry)
    if warning is not None and emit is not None:
        emit({"type": "warning", "message": warning})


def _append_line(fd: int, path: Path, line: bytes) -> None:
    # Writers take turns: a failed write is cut back to where it began, and that must not cut
    # a line another routeshell appended meanwhile. A file system without locks still gets the line.
    with suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise StateError(f"{path} is not a regular file; {move_aside_hint(path)}")
    if info.st_nlink > 1:  # appended to, the file would grow under its other names too
        raise StateError(f"{path} is a hard link ({info.st_nlink} names for one file); {move_aside_hint(path)}")
    size = info.st_size
    # A line torn by a crash stays a damaged line of its own, not the start of this one.
    if size and os.pread(fd, 1, size - 1) != b"\n":
        line = b"\n" + line
    try:
        write_all(fd, line)
        os.fsync(fd)
    except OSError:
        with suppress(OSError):
            os.ftruncate(fd, size)
            os.fsync(fd)
        raise


@dataclass(frozen=True)
class AuditRecord:
    """One record of the audit log, as read back; ``time`` is seconds since the epoch, ``time_text`` as logged."""

    time: float
    time_text: str
    user: str
    origin: str
    thread: str | None
    plan_id: str | None
    action: Action
    goal: str | None
    ops: tuple[str, ...]
    paths: tuple[str, ...]
    paths_total: int
    result: AuditResult
    reason: str | None

    def fields(self) -> AuditFields:
        """The record as the log holds it."""
        return {"time": self.time_text, "user": self.user, "origin": self.origin, "thread": self.thread,
                "plan_id": self.plan_id, "action": self.action, "goal": self.goal, "ops": list(self.ops),
                "paths": list(self.paths), "paths_total": self.paths_total, "result": self.result,
                "reason": self.reason}  # fmt: skip

    def as_event(self) -> AuditEvent:
        """The ``audit`` JSON-lines event."""
        return {"type": "audit", **self.fields()}

    @property
    def local_time(self) -> str:
        """When, as local time text, as ``plan history`` shows times."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))

    def line(self, escape: Callable[[str], str] = str) -> str:
        """The table row (see :data:`HEADER`); ``escape`` makes each text from the log safe to show."""
        origin = f"{self.origin}/{self.thread}" if self.thread else self.origin
        goal = escape(self.goal) if self.goal else "-"
        why = f" ({escape(self.reason)})" if self.reason else ""
        ops = escape(",".join(self.ops)) or "-"
        return (f"{self.local_time:<19}  {self.action:<8}  {escape(self.user):<10}  {escape(origin):<12}  "
                f"{escape(self.plan_id or '-'):<21}  {ops:<14}  {self.paths_total:>5}  {goal}{why}")  # fmt: skip


#: The header line above :meth:`AuditRecord.line` rows.
HEADER = f"{'time':<19}  {'action':<8}  {'user':<10}  {'origin':<12}  {'plan':<21}  {'ops':<14}  {'paths':>5}  goal"

_TEXT = ("user", "origin")
_OPTIONAL_TEXT = ("thread", "plan_id", "goal", "reason")


def _record(data: Any) -> AuditRecord:
    """Turn one parsed line into a record; raise ValueError saying what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    missing = [key for key in ("time", "action", "ops", "paths", "paths_total", "result", *_TEXT) if key not in data]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    for key in _TEXT:
        if not isinstance(data[key], str):
            raise ValueError(f"{key} is not text")
    for key in _OPTIONAL_TEXT:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{key} is neither text nor null")
    for key in ("ops", "paths"):
        if not (isinstance(data[key], list) and all(isinstance(item, str) for item in data[key])):
            raise ValueError(f"{key} is not a list of text")
    total = data["paths_total"]
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError("paths_total is not a count")
    if data["action"] not in ACTIONS:
        raise ValueError(f"unknown action {data['action']!r}")
    if data["result"] not in RESULTS:
        raise ValueError(f"unknown result {data['result']!r}")
    if not isinstance(data["time"], str):
        raise ValueError("time is not text")
    moment = datetime.fromisoformat(data["time"])  # ValueError names the bad text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return AuditRecord(moment.timestamp(), data["time"], data["user"], data["origin"], data.get("thread"),
                       data.get("plan_id"), data["action"], data.get("goal"), tuple(data["ops"]),
                       tuple(data["paths"]), total, data["result"], data.get("reason"))  # fmt: skip


def _lines(log: IO[bytes]) -> Iterator[tuple[bytes | None, str | None]]:
    """Each line of ``log`` as (its bytes, None), or as (None, why) when it is cut short or too long to read."""
    while raw := log.readline(MAX_LINE):
        if raw.endswith(b"\n"):
            yield raw, None
        elif len(raw) < MAX_LINE:
            yield None, "cut short: no end of line"
        else:
            while (rest := log.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            yield None, f"longer than {MAX_LINE // (1024 * 1024)} MiB"


def read_audit(root: Path, since: float | None = None) -> tuple[list[AuditRecord], list[str]]:
    """Return ``root``'s audit records, oldest first, from ``since`` (epoch seconds) on, and warnings.

    Each line that is not a whole record (torn by a crash, not UTF-8, not JSON, fields missing or
    of the wrong type) is skipped with a one-line warning. A missing log gives no records;
    one that cannot be read raises :class:`StateError`. Creates nothing.
    """
    directory = existing_state_dir(root)
    if directory is None:
        return [], []
    path = directory / AUDIT_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise os_problem(exc, "cannot read the audit log", path) from None
    records: list[AuditRecord] = []
    warnings: list[str] = []
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError(f"{path} is not a regular file; {move_aside_hint(path)}")
    with os.fdopen(fd, "rb") as log:
        try:
            for number, (raw, problem) in enumerate(_lines(log), 1):
                try:
                    if raw is None:
                        raise ValueError(problem)
                    record = _record(json.loads(raw.decode("utf-8", errors="strict")))
                # ValueError includes UnicodeDecodeError and JSONDecodeError; RecursionError: nesting
                # too deep to parse; OverflowError: a time past what the clock can count.
                except (ValueError, RecursionError, OverflowError) as exc:
                    why = " ".join(str(exc).split())[:_MAX_WHY]
                    warnings.append(f"{AUDIT_FILE} line {number}: damaged ({why}), skipped")
                    continue
                if since is None or record.time >= since:
                    records.append(record)
        except OSError as exc:
            raise os_problem(exc, "cannot read the audit log", path) from None
    return records, warnings
