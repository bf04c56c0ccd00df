"""What every plan op is made of: the :class:`Op` base, its path keys, and what apply hands it.

The ops themselves are in ``engine/plans/ops.py`` (one file at a time) and
``engine/plans/bulk_ops.py`` (tags and archives); :data:`engine.plans.ops.OPS` is their table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from engine.errors import RouteshellError
from engine.files.archives import ArchiveLimits
from engine.names import quoted_name
from engine.plans.files import mounted_inside
from engine.plans.journal import Journal
from engine.plans.runner import Limits, RunResult
from engine.plans.view import Overlay, UndoSimulation, View, WorkspaceView
from engine.workspace.links import leads_outside, symlink_on_the_way
from engine.workspace.sandbox import SandboxError, Workspace


class StepFailed(RouteshellError):
    """A step could not be carried out; everything before it was rolled back (exit code 1)."""


class SymlinkRefused(SandboxError):
    """A step refused because a directory on its way is a symlink; nothing of the step was done."""


class ChangedMeanwhile(SandboxError):
    """A step's precondition (a write's ``if_sha256``) no longer holds: something else changed its file."""


@dataclass(frozen=True)
class PathKey:
    """A key of a step that names a path."""

    key: str
    write: bool  # the step changes what is at this path
    names_file: bool = False  # the path names a file, so a trailing "/" is a mistake
    many: bool = False  # the key holds a list of paths
    root_ok: bool = False  # the workspace root itself may be named (a directory to put things in)
    makes: bool = False  # the step makes what is at this path (a refusal says nothing is "made" there)


@dataclass(frozen=True)
class ApplyContext:
    """What carrying out a step needs besides the step: where, its journal, and how to run commands."""

    ws: Workspace
    journal: Journal
    limits: Limits
    bwrap: str | None
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass(frozen=True)
class Change:
    """What a step does to one file's content, for the preview's diff (``old`` None: a new file)."""

    path: str
    old: bytes | None
    new: bytes


StepT = TypeVar("StepT")
RecordT = TypeVar("RecordT")


class Op(Generic[StepT, RecordT]):
    """One plan op, generic in its step and record TypedDicts (``engine/plans/steps.py``).

    A subclass sets ``name``, ``usage`` (one line of the rules the model is given), ``paths``
    (checked by the sandbox at validation, and again against the real workspace before a
    written one is touched), ``texts`` (refused unless they are real text) and ``defaults``
    (filled in by ``normalise``), and overrides ``summary``, ``prepare`` and ``execute``; and
    ``simulate``, ``undo`` and ``undo_conflicts`` when the op changes files.
    """

    name: ClassVar[str]
    usage: ClassVar[str]  # the step's shape as the model is told it
    paths: ClassVar[tuple[PathKey, ...]] = ()
    texts: ClassVar[tuple[str, ...]] = ()  # text fields written as UTF-8
    defaults: ClassVar[dict[str, object]] = {}

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        """Return (key, reason) for what the schema cannot say is wrong with a step (its paths are checked apart)."""
        return []

    def summary(self, step: StepT) -> str:
        """Return the step in one line, as the preview and the transcript show it."""
        raise NotImplementedError

    def prepare(self, view: View, index: int, step: StepT) -> RecordT:
        """Check the step's preconditions in ``view``; return its record, holding what undo needs."""
        raise NotImplementedError

    def execute(self, ctx: ApplyContext, record: RecordT, step: StepT) -> RunResult | None:
        """Carry out a prepared step (its record is already durable in the journal)."""
        raise NotImplementedError

    def simulate(self, overlay: Overlay, record: RecordT, step: StepT) -> Change | None:
        """Make the prepared step's effect in ``overlay``; return the content change to show."""
        return None

    def undo(self, ws: Workspace, journal: Journal, record: RecordT, *, rollback: bool = False) -> None:
        """Reverse a record. Idempotent: the step may have run fully, partly or not at all.

        ``rollback``: the plan never took effect (its apply failed or was interrupted), so what the
        step made and still holds only what the plan put there is removed outright rather than
        moved to the trash. An undo of an applied plan keeps it in the trash.
        """

    def undo_unwritable(self, view: WorkspaceView, record: RecordT) -> str | None:
        """Why undoing the record must change a file this user may not change (beyond the directories
        it writes, which undo checks for every op), with what to do; None when nothing stops it."""
        return None

    def undo_conflicts(self, sim: UndoSimulation, record: RecordT) -> list[str]:
        """Return why undoing the record would lose later work; update ``sim`` to after its undo."""
        return []


def require_parent(view: View, path: str) -> None:
    """Raise when the directory that would hold ``path`` is missing or not a directory."""
    head = path.rpartition("/")[0]
    if not head:
        return
    kind = view.kind(head)
    if kind is None:
        raise SandboxError(f"the directory {quoted_name(head)} does not exist (add a mkdir step before)")
    if kind != "dir":
        raise not_a_directory(view, head, kind, exists=False)


def not_a_directory(view: View, path: str, kind: str, *, exists: bool = True) -> SandboxError:
    """The refusal for a step that needs a directory at ``path`` and finds ``kind`` there.

    A symlink is named as one, even when it leads to a directory: a step makes things in a
    directory itself, never through the symlink that names it, and "not a directory" would mislead.
    """
    if kind == "link":
        return through_symlink(view, path, made=True)
    shown = quoted_name(path)
    return SandboxError(f"{shown} exists and is not a directory" if exists else f"{shown} is not a directory")


def through_symlink(view: View, link: str, *, made: bool) -> SymlinkRefused:
    """The refusal for a step whose path goes through the symlink ``link``, which names a directory.

    ``made``: the step makes what is at its path (else it changes, moves or deletes it). One that
    leads outside the workspace is named so, with no hint to use where it leads.
    """
    rule = f"nothing is {'made' if made else 'changed'} in a directory through the symlink that names it"
    if leads_outside(view, link):
        outside = f"{rule}, nor outside the workspace"
        return SymlinkRefused(f"{quoted_name(link)} is a symlink leading outside the workspace: {outside}")
    return SymlinkRefused(f"{quoted_name(link)} is a symlink: {rule}; use the directory it leads to")


def refuse_symlinks_on_the_way(view: View, path: str, *, made: bool, inclusive: bool = False) -> None:
    """Raise :func:`through_symlink` when a directory on the way to ``path`` is a symlink in ``view``.

    A step changes files in a directory itself, never through a symlink that names it, however deep
    in its path (``inclusive``: ``path`` itself is a directory things are put in).
    """
    link = symlink_on_the_way(view, path, inclusive=inclusive)
    if link is not None:
        raise through_symlink(view, link, made=made)


def refuse_mounts_inside(view: View, path: str) -> None:
    """Raise when another filesystem is mounted at ``path`` or anywhere beneath it.

    A step that moves or deletes ``path`` would take that filesystem with it (into the trash, where
    emptying it would delete its files), so it is refused, naming the mount point.
    """
    found = view.mounts_inside(path)
    if found:
        raise mounted_inside(path, found[0])


def tmp_name(journal: Journal, index: int) -> str:
    """The temporary name step ``index`` writes before renaming it into place."""
    return f".rs-tmp-{journal.id}-{index}"


#: The keys that select many files in one step: a match object, or a list of paths.
SELECTORS = ("match", "paths")


def is_selection(step: dict[str, Any]) -> bool:
    """Whether a step selects its files (``match`` or ``paths``) rather than naming one."""
    return any(key in step for key in SELECTORS)


def selection_problems(step: dict[str, Any], single: str | None) -> list[tuple[str, str]]:
    """(key, reason) when a step does not name exactly one of ``single``, ``match`` and ``paths``."""
    keys = ((single,) if single else ()) + SELECTORS
    wanted = ", ".join(repr(key) for key in keys[:-1]) + f" or {keys[-1]!r}"
    given = [key for key in keys if key in step]
    if not given:
        return [(keys[0], f"missing: give {wanted}")]
    if len(given) > 1:
        return [(given[1], f"give only one of {wanted}, not {given[0]!r} and {given[1]!r}")]
    return []
