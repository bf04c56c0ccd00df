"""What a plan would change, without changing anything: a summary per step and unified diffs."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.events import PreviewEvent, Seen
from engine.names import display_name
from engine.plans.expand import expand_plan, needs_expansion
from engine.plans.op_table import OPS, prepare_step
from engine.plans.policy import Policy
from engine.plans.seen import Found, FoundEntry, SeeingView, found_as, found_in
from engine.plans.view import Overlay, WorkspaceView
from engine.workspace.listing import split_lines
from engine.workspace.sandbox import SandboxError, Workspace


@dataclass(frozen=True)
class StepPreview:
    """One step as it would run: a one-line summary, a diff for text edits, and a problem if it would fail."""

    index: int
    op: str
    summary: str
    diff: str | None = None
    problem: str | None = None

    def as_event(self) -> PreviewEvent:
        """The ``preview`` JSON-lines event."""
        return {"type": "preview", "index": self.index, "op": self.op, "summary": self.summary,
                "diff": self.diff, "problem": self.problem}  # fmt: skip


def _diff(path: str, old: bytes | None, new: bytes) -> str:
    # The name is escaped as every name is shown: a newline in it would otherwise start lines of its own
    # in the diff ("+++ b/x" then a made-up hunk), and every line of a diff is taken as the file's.
    name = display_name(path)
    try:
        before = split_lines((old or b"").decode("utf-8"))
        after = split_lines(new.decode("utf-8"))
    except UnicodeDecodeError:
        return f"binary content of {name} changes\n"
    lines = difflib.unified_diff(before, after, "/dev/null" if old is None else f"a/{name}", f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def preview_plan(
    root: Path, plan: dict[str, Any], policy: Policy | None = None, *, warn: Callable[[str], None] | None = None
) -> list[StepPreview]:
    """Describe every step of a validated plan, each against the workspace as the earlier ones leave it.

    Each step is checked by the same code the apply runs (see :mod:`engine.plans.ops`), so a step
    is reported as failing here exactly when the apply would fail on it. ``run`` steps are shown
    but not simulated: what a command changes is not known before it runs. A plan that selects
    files is expanded first (:func:`engine.plans.expand.expand_plan`, which raises
    :class:`~engine.plans.model.InvalidPlan`); the previews are of its concrete steps, and ``warn``
    gets what the expansion warns of (a file index that could not be used as it is).
    """
    return _preview(root, plan, policy, WorkspaceView, warn, ())[0]


def preview_and_seen(
    root: Path, plan: dict[str, Any], policy: Policy | None = None, *, warn: Callable[[str], None] | None = None,
    selected: Iterable[FoundEntry | tuple[str, os.stat_result]] = (),
) -> tuple[list[StepPreview], Seen]:  # fmt: skip
    """:func:`preview_plan`, and what it read of the workspace: pass that to the apply of what was shown
    (:func:`engine.plans.apply.apply_plan`), which then applies nothing if any of it changed meanwhile.

    ``selected``: for a plan expanded before (:func:`~engine.plans.expand.expand_plan`), what its
    selections found (each path and ``lstat`` its ``saw`` was given, or that with a file's edit mark
    then, as :func:`look_selected` takes it), so that what changed since the selection read it
    counts, not only what changes after this preview.
    """
    entries = [entry if isinstance(entry, FoundEntry) else FoundEntry(*entry) for entry in selected]
    return _preview(root, plan, policy, SeeingView, warn, entries)


def look(root: Path, paths: Iterable[str]) -> Found:
    """Each of ``paths`` that is there now, with its ``lstat`` and a file's edit mark: take it when a
    question names them, before the answer, and give it to :func:`seen_since` with the plan the
    answer makes.
    """
    with Workspace(root) as ws:
        return found_in(ws, paths)


def look_selected(root: Path, chosen: Iterable[tuple[str, os.stat_result]]) -> Found:
    """What selections ``chosen`` (each path and the ``lstat`` an expansion's ``saw`` was given),
    with each file's edit mark: take it right after the expansion, and give it to
    :func:`preview_and_seen` however much later the preview is made. A file is compared by its
    content, not its change time, so a chmod or a tag in between is no change, and an edit is one.
    """
    with Workspace(root) as ws:
        return found_as(ws, chosen)


def seen_since(root: Path, plan: dict[str, Any], policy: Policy | None, found: Found) -> Seen:
    """What the apply of the concrete ``plan`` must still find (``seen`` of
    :func:`engine.plans.apply.apply_plan`): what its preview reads now and, of the entries
    :func:`look` ``found`` when a question named them, each the plan works on (or within), as it was
    then. A file edited or replaced, or a directory replaced, while the question was open is then
    refused, and nothing is applied; a chmod or a tag is no change, nor is what was added to or
    removed from a directory that is still the same (what of it the plan reads, its preview notes).
    An entry the plan leaves alone (a sibling in a bulk rename, a target renamed around) may change
    freely.
    """
    worked_on = {path for step in plan["steps"] for path in _paths_of(step)}
    named = [entry for entry in found if any(_within(entry.path, top) for top in worked_on)]
    return _preview(root, plan, policy, SeeingView, None, named)[1]


def _paths_of(step: dict[str, Any]) -> Iterable[str]:
    for key in OPS[step["op"]].paths:
        value = step.get(key.key)
        if isinstance(value, str):
            yield value
        elif key.many and isinstance(value, list):
            yield from (item for item in value if isinstance(item, str))


def _within(path: str, top: str) -> bool:
    return top == "." or path == top or path.startswith(top + "/")


def _preview(
    root: Path, plan: dict[str, Any], policy: Policy | None, real: type[WorkspaceView],
    warn: Callable[[str], None] | None, selected: Iterable[FoundEntry],
) -> tuple[list[StepPreview], Seen]:  # fmt: skip
    previews = []
    archive = (policy or Policy()).archive
    with Workspace(root) as ws:
        view = real(ws, archive)
        if isinstance(view, SeeingView):
            for entry in selected:
                view.saw(entry.path, entry.info, entry.mark)
        if needs_expansion(plan):
            # What is noted of a selected file is what the selection found, before it read it: an
            # edit made while a semantic match ranks (seconds) is a change, as one made later is.
            saw = view.saw if isinstance(view, SeeingView) else None
            plan = expand_plan(root, plan, policy, warn=warn, saw=saw)
        overlay = Overlay(ws, archive, real=view)
        for index, step in enumerate(plan["steps"]):
            op = OPS[step["op"]]
            summary = op.summary(step)
            try:
                record = prepare_step(overlay, index, step)
                change = op.simulate(overlay, record, step)
            except (SandboxError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                previews.append(StepPreview(index, step["op"], summary, problem=reason))
                continue
            if record.get("_remark"):  # what the step does that its summary does not say (a copy's .git left out)
                summary = f"{summary} ({record['_remark']})"
            diff = None if change is None else _diff(change.path, change.old, change.new)
            previews.append(StepPreview(index, step["op"], summary, diff=diff))
    seen = view.seen(plan["steps"]) if isinstance(view, SeeingView) else Seen(steps="", paths={})
    return previews, seen
