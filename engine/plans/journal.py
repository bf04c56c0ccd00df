"""The write-ahead journal of plan applies, kept in the workspace's state directory.

Layout under ``<workspace>/.routeshell/`` (the rest of it: engine.workspace.state)::

    journal/<id>/plan.json    the normalised plan, when it was started, and who asked (via); once
                              the plan is rolled back, without the text its steps would have written
    journal/<id>/log.jsonl    one record per step, written whole and fsynced before the step runs
    journal/<id>/state        applying | applied | rolled-back | undoing | undone
    journal/<id>/backup/<n>   the previous content of a file step n replaced (a hard link)
    journal/<id>/backup/made-<n>.json
                              what an archive or extract step n made (a tree fingerprint), kept
                              before it was put in place: a rollback removes outright what still is
    trash/<id>/<n>            what step n deleted, or what undoing step n displaced (undo-<n>)

Plans cannot write into the state directory (the sandbox refuses it), and ``run`` steps see it
read-only. A journal directory killed inside :meth:`Journal.create` before its plan.json was
written holds nothing that ran: recovery removes it. One that is damaged (a full disk, a damaged
file) or holds what no journal of ours holds is listed as damaged with what is wrong; it never
stops the others.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.errors import UsageError
from engine.events import HistoryEvent, HistoryFields
from engine.kinds import JOURNAL_STATES, JournalState
from engine.names import display_line, display_name
from engine.textfile import read_capped
from engine.workspace.state import (
    JOURNAL_DIR,
    RESERVE_BYTES,
    TRASH_DIR,
    StateError,
    command_for,
    existing_state_dir,
    move_aside_hint,
    os_problem,
    release_reserve,
    state_dir,
    state_path,
    workspace_lock,
    write_all,
)

__all__ = [
    "STATES",
    "HistoryRow",
    "Journal",
    "JournalState",
    "Via",
    "applied_from",
    "find_journal",
    "history",
    "journals",
    "state_dir",
    "workspace_lock",
    "write_file_atomic",
]

STATES = JOURNAL_STATES
# Who asked for an apply: shown by 'plan show'. Journals written before this was kept say "unknown".
Via = Literal["agent", "cli", "files-pane", "unknown"]
# A journal's name; one with a dot in it (moved aside: "<id>.broken") is no longer ours.
_ID = re.compile(r"^(\d+)-[^.]+$")
_SEQUENCE = re.compile(r"^(\d+)-")
#: The temporary file plan.json is written through (see write_file_atomic).
_PLAN_TEMP = re.compile(r"^\.plan\.json\.tmp-[0-9a-f]+$")
#: The most bytes a journal's files are read up to; a longer one, or one that is no regular file
#: (a link to ``/dev/zero`` put there), is damaged rather than read into memory whole.
#: state: one word.
MAX_STATE_BYTES = 4 << 10
#: plan.json: the plan (its file may hold 64 MiB, engine.plans.model.MAX_PLAN_BYTES), expanded,
#: with every non-ASCII character written as a \u escape (up to three times its UTF-8 bytes).
MAX_PLAN_JSON_BYTES = 256 << 20
#: A rolled-back journal's plan.json longer than this may still hold the text its steps would have
#: written (rolled back by an earlier routeshell, or cut short before it was dropped): each command
#: that writes drops it (:meth:`Journal.drop_texts`); a shorter one is not worth reading to look.
DROP_TEXTS_ABOVE = 64 << 10
#: log.jsonl: a record per step, a few hundred bytes (a copy's lists every file it made); a plan
#: touches at most [policy] max_batch files (1,000 unless raised), so this leaves room for a million.
MAX_LOG_BYTES = 256 << 20


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory.

    Writes every byte or raises OSError; a failed write leaves no temp file behind.
    """
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_path(path.parent)


def _overwrite_in_place(path: Path, data: bytes) -> None:
    """Write a few bytes over an existing small file: needs no new blocks, for a full disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Journal:
    """One apply: its plan, its step records and its state."""

    root: Path
    id: str

    # The state directory was checked (a real directory, not a symlink) by whoever made this
    # Journal: journals() or create(); the paths below need no check per access.
    @property
    def dir(self) -> Path:
        return state_path(self.root) / JOURNAL_DIR / self.id

    @property
    def backup_dir(self) -> Path:
        return self.dir / "backup"

    @property
    def trash_dir(self) -> Path:
        return state_path(self.root) / TRASH_DIR / self.id

    def check_places(self) -> None:
        """Raise :class:`StateError` when a directory that undoing this journal reads or writes (its
        backup, the trash and its part of it) is something else on the way: a symlink, a file. Undo
        would act where a symlink leads, outside the workspace maybe; the message names it and says
        to move it aside. A place not there (nothing kept) is fine."""
        existing_state_dir(self.root, JOURNAL_DIR, self.id, "backup")
        existing_state_dir(self.root, TRASH_DIR, self.id)

    @property
    def sequence(self) -> int:
        return int(self.id.split("-")[0])

    @classmethod
    def create(
        cls, root: Path, plan: dict[str, Any], origin: str | None = None, via: Via | None = None, *, frees: bool = False
    ) -> Journal:
        """Start a journal for ``plan``; its state is ``applying`` until :meth:`set_state`.

        ``origin`` names who asked for the apply (an agent session's plan id), so that a resumed
        session can tell that a plan was already applied; ``via`` says from where (agent, CLI,
        Files pane). ``frees``: the plan only deletes or moves, so on a full disk the reserve may
        be released to journal it. Raises :class:`StateError` (and leaves no partial journal)
        when the journal cannot be written.
        """
        journals_dir = state_dir(root, JOURNAL_DIR)
        state_dir(root, TRASH_DIR)
        try:
            return cls._create(root, journals_dir, plan, origin, via or ("agent" if origin else "cli"))
        except OSError as exc:
            if not (frees and exc.errno in (errno.ENOSPC, errno.EDQUOT) and release_reserve(root)):
                raise _cannot_start(exc, journals_dir, plan) from None
        try:
            return cls._create(root, journals_dir, plan, origin, via or ("agent" if origin else "cli"))
        except OSError as exc:
            raise _cannot_start(exc, journals_dir, plan) from None

    @classmethod
    def _create(cls, root: Path, journals_dir: Path, plan: dict[str, Any], origin: str | None, via: str) -> Journal:
        # A sequence number first, so that names sort in the order the plans were applied.
        # Names moved aside count too, so that a new journal never takes the id of an old one.
        taken = (_SEQUENCE.match(name) for name in os.listdir(journals_dir))
        sequence = 1 + max((int(match.group(1)) for match in taken if match), default=0)
        journal_id = f"{sequence:05d}-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        journal = cls(root, journal_id)
        try:
            journal.dir.mkdir()
            journal.backup_dir.mkdir()
            journal.trash_dir.mkdir()
            meta = {"id": journal_id, "started": time.time(), "plan": plan, "origin": origin, "via": via}
            # ASCII: a non-UTF-8 file name is a lone surrogate here, and only its \u escape can be stored.
            write_file_atomic(journal.dir / "plan.json", json.dumps(meta, ensure_ascii=True).encode())
            journal.set_state("applying")
        except BaseException:
            # Nothing ran yet: a journal that could not be written whole is removed, not left damaged.
            shutil.rmtree(journal.dir, ignore_errors=True)
            shutil.rmtree(journal.trash_dir, ignore_errors=True)
            raise
        return journal

    def keep_made(self, index: int, tree: dict[str, str]) -> None:
        """Keep ``tree`` (a :func:`~engine.plans.files.fingerprint`) as what step ``index`` made,
        durably, before the step puts it in place; raises OSError when it cannot be written."""
        write_file_atomic(self.backup_dir / f"made-{index}.json", json.dumps(tree, ensure_ascii=True).encode())

    def made(self, index: int) -> dict[str, str] | None:
        """What step ``index`` made (:meth:`keep_made`), or None when that is not known (not kept, unreadable)."""
        try:
            tree = json.loads(read_capped(self.backup_dir / f"made-{index}.json", MAX_PLAN_JSON_BYTES))
        except (OSError, ValueError):
            return None
        if not isinstance(tree, dict) or not all(isinstance(value, str) for value in tree.values()):
            return None
        return tree

    def set_state(self, state: JournalState) -> None:
        """Record the journal's state durably; raise OSError if even that cannot be written."""
        assert state in STATES
        path = self.dir / "state"
        try:
            write_file_atomic(path, state.encode())
        except OSError as exc:
            # A full disk has no room for the temp file; the state file's own block is reused.
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.is_file():
                raise
            _overwrite_in_place(path, state.encode())

    @property
    def state(self) -> JournalState | None:
        """The journal's state; None when its state file is damaged (see :attr:`problem`)."""
        try:
            text = read_capped(self.dir / "state", MAX_STATE_BYTES).decode("utf-8", errors="replace").strip()
        except FileNotFoundError:
            return "applying"  # crashed before the state file was written: nothing ran yet
        except OSError:
            return None
        return text if text in STATES else None

    @property
    def meta(self) -> dict[str, Any]:
        """plan.json: id, started, plan, origin, via. Raises :class:`StateError` when it is damaged."""
        path = self.dir / "plan.json"
        try:
            meta = json.loads(read_capped(path, MAX_PLAN_JSON_BYTES).decode("utf-8"))
        except FileNotFoundError:
            if self.unstarted == "cut-short":
                raise StateError(f"journal {self.id} has no plan.json (cut short while it was being created)") from None
            raise StateError(f"journal {self.id} has no plan.json, but holds other files") from None
        except OSError as exc:
            raise StateError(f"journal {self.id}: {path} is damaged ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise StateError(f"journal {self.id}: {path} is damaged ({exc})") from None
        if not (isinstance(meta, dict) and isinstance(meta.get("plan"), dict)
                and isinstance(meta["plan"].get("steps"), list)):  # fmt: skip
            raise StateError(f"journal {self.id}: {path} is damaged (not a journal's plan.json)")
        return meta

    def drop_texts(self, *, above: int = 0) -> int:
        """Rewrite plan.json without the text the steps would have written (a write's or an append's
        ``content``, a patch's ``find`` and ``replace``), for a plan that was rolled back: nothing
        reads it any more (records are checked against the steps' ops and paths, which stay), and on
        a nearly full disk its room is what the next plan needs. ``above``: leave a plan.json of at
        most that many bytes alone, unread. Returns the bytes freed; 0 when there was nothing to
        drop, or no room even for the smaller file (the next command tries again). The file is
        replaced whole (:func:`write_file_atomic`), so a crash leaves the old one or the new one.
        """
        from engine.plans.op_table import OPS  # imported here: the ops' table imports this module

        path = self.dir / "plan.json"
        try:
            size = os.stat(path).st_size
            if size <= above:
                return 0
            meta = self.meta
        except (OSError, StateError):
            return 0
        steps = meta["plan"]["steps"]
        kept = [
            {key: value for key, value in step.items() if key not in OPS[step["op"]].texts}
            if isinstance(step, dict) and isinstance(step.get("op"), str) and step["op"] in OPS else step
            for step in steps
        ]  # fmt: skip
        if kept == steps:
            return 0
        data = json.dumps({**meta, "plan": {**meta["plan"], "steps": kept}}, ensure_ascii=True).encode()
        try:
            write_file_atomic(path, data)
        except OSError:
            return 0
        return size - len(data)

    @property
    def unstarted(self) -> Literal["cut-short", "foreign"] | None:
        """What a journal directory with neither plan.json nor step records is, or None for one that
        has either. No step ran from it (a step runs only once its plan and record are on disk).

        "cut-short": it holds only what :meth:`create` makes before plan.json (an empty ``backup/``,
        the temporary file plan.json is written through), so a kill came there; recovery removes it.
        "foreign": it holds anything else, so it is not ours: nothing writes to it or removes it, and
        ``plan history`` lists it as damaged with how to move it aside.
        """
        if any(os.path.lexists(self.dir / name) for name in ("plan.json", "log.jsonl")):
            return None
        try:
            for name in os.listdir(self.dir):
                kind = stat.S_IFMT(os.lstat(self.dir / name).st_mode)
                if name == "backup" and kind == stat.S_IFDIR and not os.listdir(self.backup_dir):
                    continue
                if _PLAN_TEMP.match(name) and kind == stat.S_IFREG:
                    continue
                return "foreign"
        except OSError:
            return "foreign"  # what cannot be read is not removed on a guess
        return "cut-short"

    def discard(self) -> None:
        """Remove a journal directory cut short in :meth:`create` (see :attr:`unstarted`), and its
        empty trash directory. Only what create makes is removed, each by its name: anything else
        put there meanwhile stays, and so does the directory (OSError)."""
        for name in os.listdir(self.dir):
            if _PLAN_TEMP.match(name):
                os.unlink(self.dir / name)
        with suppress(FileNotFoundError):
            os.rmdir(self.backup_dir)
        os.rmdir(self.dir)
        with suppress(OSError):  # gone already, or holding something: not ours to remove then
            os.rmdir(self.trash_dir)
        _fsync_path(self.dir.parent)

    @property
    def problem(self) -> str | None:
        """What is wrong with this journal's files (its records included) and what to do, or None when it is whole."""
        try:
            _ = self.meta
        except StateError as exc:
            return f"{exc}; {move_aside_hint(self.dir)}"
        if self.state is None:
            return f"journal {self.id}: its state file is damaged; {move_aside_hint(self.dir)}"
        try:
            self.records()
        except StateError as exc:
            return str(exc)
        return None

    def record(self, entry: dict[str, Any]) -> None:
        """Append one step record and make it durable before the step runs.

        Writes the whole line or nothing: on a short write or an error the log is cut back to
        where it was and OSError is raised, so the step must not run.
        """
        self.record_many([entry])

    def record_many(self, entries: list[dict[str, Any]]) -> None:
        """Append step records with one fsync, all or none (see :meth:`record`)."""
        line = "".join(json.dumps(entry, ensure_ascii=True) + "\n" for entry in entries).encode()  # see plan.json
        fd = os.open(self.dir / "log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                write_all(fd, line)
                os.fsync(fd)
            except OSError:
                with suppress(OSError):
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                raise
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Return the step records, each checked against its step of the plan.

        A torn last line is a crash while its record was written, before its step ran: it is left
        out while the plan is being applied (or was rolled back since). Raises :class:`StateError`,
        with what to move aside, for a log that cannot be read or does not hold the records of the
        plan's steps (one missing, cut short or garbled, or one that names other paths than its
        step, or paths no plan may write): nothing may be undone on a guess.
        """
        path = self.dir / "log.jsonl"
        try:
            text = read_capped(path, MAX_LOG_BYTES).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            # Not "no records": steps may have run, and nothing may be undone on a guess.
            raise StateError(
                f"journal {self.id}: {path} cannot be read ({exc.strerror}); {move_aside_hint(self.dir)}"
            ) from None
        state = self.state
        lines = text.splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            record = _parse_record(line)
            if record is None:
                if number == len(lines) and state in ("applying", "rolled-back"):
                    break  # torn by a crash while it was written: its step never ran
                raise self._damaged(f"line {number} of {path} is not a whole step record")
            records.append(record)
        try:
            steps = self.meta["plan"]["steps"]
        except StateError as exc:
            raise StateError(f"{exc}; {move_aside_hint(self.dir)}") from None
        # Imported here: the ops' table imports this module.
        from engine.plans.record_check import record_problem

        problem = record_problem(steps, records)
        if problem is None and state in ("applied", "undoing", "undone") and len(records) != len(steps):
            problem = f"{path} holds {len(records)} step records, but all {len(steps)} steps of its plan ran"
        if problem:
            raise self._damaged(problem)
        return records

    def _damaged(self, problem: str) -> StateError:
        return StateError(f"journal {self.id} is damaged: {problem}; {move_aside_hint(self.dir)}")


def _parse_record(line: str) -> dict[str, Any] | None:
    """One line of log.jsonl as a record, or None when it is not one."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("i"), int) or not isinstance(record.get("op"), str):
        return None
    return record


def _cannot_start(exc: OSError, journals_dir: Path, plan: dict[str, Any]) -> StateError:
    """The one line for a journal that could not be started: a plan too big for the room left is
    told apart from a full disk (the plan itself is what does not fit, so freeing a little will not do)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        needed = len(json.dumps(plan, ensure_ascii=True))  # as plan.json holds it
        with suppress(OSError):
            free = shutil.disk_usage(journals_dir).free
            if needed > free > RESERVE_BYTES:
                return StateError(
                    f"cannot start a journal in {journals_dir}: the plan takes {needed:,} bytes to record and "
                    f"only {free:,} bytes are free there; free more space than that, or split the plan into "
                    "smaller ones"
                )
    return os_problem(exc, "cannot start a journal", journals_dir)


def _entries(directory: Path) -> list[tuple[int, str]]:
    """(sequence, name) of every journal directory; other entries (.DS_Store, junk) are not ours."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                match = _ID.match(entry.name)
                # d_type, not a stat per entry: a workspace may hold thousands of journals.
                if match and entry.is_dir(follow_symlinks=False):
                    found.append((int(match.group(1)), entry.name))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise os_problem(exc, "cannot read the journals", directory) from None
    return sorted(found)


def journals(root: Path) -> list[Journal]:
    """Return every journal of the workspace, oldest first; creates nothing."""
    directory = existing_state_dir(root, JOURNAL_DIR)
    if directory is None:
        return []
    return [Journal(root, name) for _, name in _entries(directory)]


def find_journal(root: Path, journal_id: str) -> Journal:
    """Return the journal called ``journal_id`` (or its sequence number, as in ``plan undo 3``).

    Raises :class:`UsageError` (bad input, exit code 2) when there is none.
    """
    for journal in journals(root):
        if journal_id in (journal.id, str(journal.sequence), f"{journal.sequence:05d}"):
            return journal
    raise UsageError(f"no plan {journal_id!r} in {root}; {command_for(root, 'plan', 'history')} lists them")


def applied_from(root: Path, origin: str) -> Journal | None:
    """Return the applied (or since undone) journal whose plan came from ``origin``, if any."""
    for journal in reversed(journals(root)):
        whole = journal.state in ("applied", "undoing", "undone") and journal.problem is None
        if whole and journal.meta.get("origin") == origin:
            return journal
    return None


@dataclass(frozen=True)
class HistoryRow:
    """One line of ``plan history``: a journal, or a damaged one with what is wrong."""

    id: str
    state: JournalState | Literal["damaged"]
    started: float | None
    steps: int | None
    goal: str
    via: str
    problem: str | None = None

    def fields(self) -> HistoryFields:
        """The row as events carry it (started as local time text, as the table shows it)."""
        fields: HistoryFields = {"id": self.id, "state": self.state, "started": self.started_text,
                                 "steps": self.steps, "goal": self.goal, "via": self.via}  # fmt: skip
        if self.problem:
            fields["problem"] = self.problem
        return fields

    def as_event(self) -> HistoryEvent:
        """The ``history`` JSON-lines event."""
        return {"type": "history", **self.fields()}

    @property
    def started_text(self) -> str:
        if self.started is None:
            return "?"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))

    def line(self) -> str:
        """The table row, ready to show: the id (a directory's name) and the goal (text from a plan)
        with their control characters escaped; the problem too, its hint kept as it pastes."""
        steps = "?" if self.steps is None else str(self.steps)
        text = display_line(self.problem) if self.problem else display_line(self.goal)
        return f"{display_name(self.id)}  {self.state:<11}  {self.started_text:<19}  {steps:>5} step(s)  {text}"


def history_row(journal: Journal) -> HistoryRow:
    """Describe ``journal`` for ``plan history``; a damaged one says what is wrong and what to do."""
    state = journal.state
    try:
        meta = journal.meta
    except StateError as exc:
        return HistoryRow(journal.id, "damaged", None, None, "", "unknown", f"{exc}; {move_aside_hint(journal.dir)}")
    plan = meta["plan"]
    started = meta.get("started") if isinstance(meta.get("started"), (int, float)) else None
    via = str(meta.get("via") or ("agent" if meta.get("origin") else "unknown"))
    goal = plan.get("goal") if isinstance(plan.get("goal"), str) else ""
    if state is None:
        problem = f"journal {journal.id}: its state file is damaged; {move_aside_hint(journal.dir)}"
        return HistoryRow(journal.id, "damaged", started, len(plan["steps"]), goal, via, problem)
    try:
        journal.records()
    except StateError as exc:
        return HistoryRow(journal.id, "damaged", started, len(plan["steps"]), goal, via, str(exc))
    return HistoryRow(journal.id, state, started, len(plan["steps"]), goal, via)


def history(root: Path) -> list[HistoryRow]:
    """Return one row per journal of ``root``, oldest first; creates nothing."""
    return [history_row(journal) for journal in journals(root)]
