"""Tags and archives in the Files pane: tag or untag marked files, filter by tag, archive and extract.

Each change is one plan (``tag``/``untag``, ``archive``, ``extract``), checked and expanded off the
event loop, then applied by the pane like every file operation: journaled, in ``routeshell plan
history``, undoable with ``u``, with progress and Escape to cancel when it is long, and only if
the entries its questions named did not change while they were open. The tag filter reads the
tags of a directory's files in a thread worker.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.errors import RouteshellError, UsageError
from engine.files.archives import archive_format
from engine.files.tags import TagError, check_tag, tags_of
from engine.names import display_line, display_name
from engine.plans.expand import expand_plan
from engine.plans.file_plans import goal_text, join
from engine.plans.model import InvalidPlan, normalise, plan_problems
from engine.plans.seen import Found
from engine.workspace.sandbox import Entry, Workspace
from tui.error_line import one_line
from tui.screens.keep_or_remove_screen import KeepOrRemoveScreen
from tui.screens.prompt_screen import PromptScreen
from tui.widgets.file_operations import typed_name

if TYPE_CHECKING:
    from tui.widgets.files_pane import FilesPane

TAG_ARCHIVE_BINDINGS: list[Binding] = [
    Binding("t", "tag", "Tags", show=False, id="files.tag",
            tooltip="Add or remove tags of marked files (or this one): +a -b"),
    Binding("T", "tag_filter", "Tag filter", show=False, id="files.tag_filter",
            tooltip="Show only files here with a tag (empty answer shows all)"),
    Binding("a", "archive", "Archive", show=False, id="files.archive",
            tooltip="Pack marked entries (or this one) into .zip, .tar.gz, .tar.xz"),
    Binding("X", "extract", "Extract", show=False, id="files.extract",
            tooltip="Unpack this .zip, .tar.gz or .tar.xz into a new directory"),
]  # fmt: skip

#: The tag filter reads the tags of at most this many files of a directory.
TAG_FILTER_LIMIT = 10_000
_ARCHIVE_SUFFIXES = ".zip, .tar.gz or .tar.xz"


class TagChangeError(ValueError):
    """What was typed at the tag prompt cannot be read; the message is one line."""


@dataclass(frozen=True)
class TagChange:
    """Tags to add and tags to remove, each valid and listed once."""

    add: tuple[str, ...]
    remove: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join([*(f"+{tag}" for tag in self.add), *(f"-{tag}" for tag in self.remove)])


def parse_tag_change(text: str) -> TagChange:
    """Read ``+draft -old`` (a word without a sign adds it) into a :class:`TagChange`.

    Raises :class:`TagChangeError` for an invalid tag, a lone sign, a tag both added and removed,
    or nothing at all.
    """
    add: dict[str, None] = {}
    remove: dict[str, None] = {}
    for word in text.split():
        sign, tag = (word[0], word[1:]) if word[0] in "+-" else ("+", word)
        if not tag:
            raise TagChangeError(f"a lone {sign!r}: write the tag right after it, as in +draft or -old")
        if (why := check_tag(tag)) is not None:
            raise TagChangeError(f"the tag {display_name(tag)} {why}")
        (add if sign == "+" else remove)[tag] = None
    if both := [tag for tag in add if tag in remove]:
        raise TagChangeError(f"the tag {display_name(both[0])} is both added and removed")
    if not add and not remove:
        raise TagChangeError("no tags: write them as +draft to add, -old to remove")
    return TagChange(tuple(add), tuple(remove))


def tag_plan(paths: list[str], change: TagChange) -> dict[str, Any]:
    """A plan with a ``tag`` step and/or an ``untag`` step over ``paths``."""
    steps: list[dict[str, Any]] = []
    if change.add:
        steps.append({"op": "tag", "paths": paths, "tags": list(change.add)})
    if change.remove:
        steps.append({"op": "untag", "paths": paths, "tags": list(change.remove)})
    return {"version": 1, "goal": goal_text(f"tags of {_what(paths, 'files', shown=False)}: {change}"), "steps": steps}


def _what(paths: list[str], plural: str, *, shown: bool = True) -> str:
    """The one path, or how many there are ("3 files"): escaped for a question, as it is for a goal."""
    if len(paths) != 1:
        return f"{len(paths):,} {plural}"
    return display_name(paths[0]) if shown else paths[0]


def _directories_among(paths: list[str]) -> Callable[[Workspace], str | None]:
    """A check refusing directories in a tag plan, in one line."""

    def check(ws: Workspace) -> str | None:
        found = [path for path in paths if (info := ws.lstat(path)) is not None and stat.S_ISDIR(info.st_mode)]
        if not found:
            return None
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return f"only files carry tags: {display_name(found[0])}{more} is a directory; unmark it and try again"

    return check


def _first_problem(exc: InvalidPlan) -> str:
    """The first reason an :class:`InvalidPlan` gives, escaped, with how many more there are."""
    more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
    return display_line(exc.problems[0].reason) + more


class TagArchiveMixin:
    """Actions of :class:`~tui.widgets.files_pane.FilesPane` (a mixin; see ``file_operations.py`` for the pattern)."""

    #: The tag the entry list is filtered by, or None.
    tag_filter: str | None = None
    _tagged: frozenset[str] = frozenset()  # names here that carry the tag, as last read
    _tag_generation = 0

    def _tag_pane(self) -> FilesPane:
        return self  # type: ignore[return-value]

    def _chosen(self) -> list[str]:
        """The marked paths, or the highlighted entry when nothing is marked."""
        pane = self._tag_pane()
        if pane.marks:
            return sorted(pane.marks)
        entry = pane.entry_list.highlighted
        return [join(pane.directory, entry.name)] if entry else []

    async def _expand_and_apply(
        self, plan: dict[str, Any], *, refuse: Callable[[Workspace], str | None] | None = None,
        select: str | None = None, found: Found | None = None,
    ) -> bool:  # fmt: skip
        """Check ``plan`` (and ``refuse``), expand it off the event loop, apply it. True on success.

        ``found``: the entries the questions asked named, as they were then
        (:meth:`~tui.widgets.file_operations.FileOperationsMixin._look`).
        """
        pane = self._tag_pane()
        warnings: list[str] = []  # what the expansion warns of (a file index it could not use)

        def prepare() -> dict[str, Any]:
            if refuse is not None:
                with Workspace(pane.root) as ws:
                    if (reason := refuse(ws)) is not None:
                        raise UsageError(reason)
            if problems := plan_problems(plan):
                raise InvalidPlan("plan", problems)
            return expand_plan(pane.root, normalise(plan), pane.policy, warn=warnings.append)

        try:
            concrete = await asyncio.to_thread(prepare)
        except InvalidPlan as exc:
            pane.notify(_first_problem(exc), title="Not applied", severity="error", markup=False)
            return False
        except (RouteshellError, OSError) as exc:
            pane.notify(display_line(str(exc)), title="Not applied", severity="error", markup=False)
            return False
        except Exception as exc:
            # A bug in the engine must leave the pane usable: one line, and nothing changes.
            pane.notify(one_line(exc, unexpected=True), title="Not applied", severity="error", markup=False)
            return False
        finally:
            for warning in warnings:
                pane.notify(display_line(warning), title="File index", severity="warning", markup=False)
        return await pane._apply(concrete, select=select, found=found)

    def _refused(self, message: str) -> None:
        self._tag_pane().notify(message, title="Not applied", severity="error", markup=False)

    # -- tags -----------------------------------------------------------------------------

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_tag(self) -> None:
        pane = self._tag_pane()
        paths = self._chosen()
        if not paths:
            return
        found = await pane._look(paths)
        noun = "file" if len(paths) == 1 else "files"
        question = f"Tags for {len(paths)} {noun}: +add -remove (e.g. +draft -old)"
        text = await pane.app.push_screen_wait(PromptScreen(question))
        if text is None:
            return
        try:
            change = parse_tag_change(text)
        except TagChangeError as exc:
            self._refused(f"Tags not changed: {exc}")
            return
        await self._expand_and_apply(tag_plan(paths, change), refuse=_directories_among(paths), found=found)

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_tag_filter(self) -> None:
        pane = self._tag_pane()
        current = display_name(self.tag_filter) if self.tag_filter is not None else ""
        tag = await pane.app.push_screen_wait(PromptScreen("Show only the files here tagged (empty: all):", current))
        if tag is None:
            if self.tag_filter is not None:
                self.clear_tag_filter()
                pane._apply_filter()
            return
        if (why := check_tag(tag)) is not None:
            self._refused(f"The tag {display_name(tag)} {why}")
            return
        self.tag_filter = tag
        self._tagged = frozenset()
        self.refresh_tag_filter()
        pane._apply_filter()

    def tag_filtered(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` less those without the filter's tag, and less directories, while a tag filter is on."""
        if self.tag_filter is None:
            return entries
        return [entry for entry in entries if not entry.is_dir and entry.name in self._tagged]

    def refresh_tag_filter(self) -> None:
        """With a tag filter on, show it in the path bar and read the tags of this directory again."""
        if self.tag_filter is None:
            return
        pane = self._tag_pane()
        self._show_path()
        self._tag_generation += 1
        names = [entry.name for entry in pane._all if not entry.is_dir]
        self._read_tags(self._tag_generation, pane.directory, self.tag_filter, names)

    def clear_tag_filter(self) -> None:
        """Turn the tag filter off (the caller filters the entries again)."""
        if self.tag_filter is None:
            return
        self.tag_filter = None
        self._tagged = frozenset()
        self._tag_generation += 1  # a read still running is ignored
        self._show_path()

    def _show_path(self) -> None:
        pane = self._tag_pane()
        path = Text(pane._relative(pane.directory), style="bold")
        if self.tag_filter is not None:
            path.append(f"  tag: {display_name(self.tag_filter)}")
        pane.query_one("#files-path", Static).update(path)

    @work(thread=True, exclusive=True, group="tag-filter", exit_on_error=False)
    def _read_tags(self, generation: int, directory: str, tag: str, names: list[str]) -> None:
        pane = self._tag_pane()
        worker = get_current_worker()
        found: set[str] = set()
        try:
            with Workspace(pane.root) as ws:
                fd = ws.open(directory, os.O_PATH | os.O_DIRECTORY)
                try:
                    for name in names[:TAG_FILTER_LIMIT]:
                        if worker.is_cancelled:
                            return
                        try:
                            if tag in tags_of(fd, name):
                                found.add(name)
                        except TagError:
                            continue  # a file whose tags cannot be read does not carry the tag
                finally:
                    os.close(fd)
        except (RouteshellError, OSError) as exc:
            message = f"Cannot read the tags here: {display_line(str(exc))}"
            pane.app.call_from_thread(pane.notify, message, severity="error", markup=False)
            return
        if not worker.is_cancelled:
            pane.app.call_from_thread(self._tags_read, generation, frozenset(found), len(names))

    def _tags_read(self, generation: int, tagged: frozenset[str], files: int) -> None:
        if generation != self._tag_generation or self.tag_filter is None:
            return
        pane = self._tag_pane()
        self._tagged = tagged
        pane._apply_filter()
        if files > TAG_FILTER_LIMIT:
            message = (
                f"Only the first {TAG_FILTER_LIMIT:,} of {files:,} files here were checked for the tag "
                f"{display_name(self.tag_filter)}"
            )
            pane.notify(message, severity="warning", markup=False)

    # -- archives -------------------------------------------------------------------------

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_archive(self) -> None:
        pane = self._tag_pane()
        paths = self._chosen()
        if not paths:
            return
        found = await pane._look(paths)
        what = _what(paths, "entries")
        default = f"archive-{time.strftime('%Y%m%d')}.tar.gz"
        question = f"Archive {what} as ({_ARCHIVE_SUFFIXES}):"
        name = typed_name(await pane.app.push_screen_wait(PromptScreen(question, default)))
        if not name:
            return
        if archive_format(name) is None:
            self._refused(f"{display_name(name)}: name the archive {_ARCHIVE_SUFFIXES}")
            return
        try:
            to = join(pane.directory, name)
        except RouteshellError as exc:
            self._refused(display_line(str(exc)))
            return
        question = f"Archive {what} into {display_name(to)}.\nAlso move the originals to the trash? (u undoes it)"
        remove = await pane.app.push_screen_wait(KeepOrRemoveScreen(question))
        if remove is None:
            pane.notify("Archive cancelled; nothing changed", severity="warning")
            return
        step = {"op": "archive", "paths": paths, "to": to, "remove": remove}
        goal = goal_text(f"archive {_what(paths, 'entries', shown=False)} into {to}"
                         + (", originals to the trash" if remove else ""))  # fmt: skip
        plan = {"version": 1, "goal": goal, "steps": [step]}
        if await self._expand_and_apply(plan, select=name, found=found) and remove:
            pane.marks.difference_update(paths)
            pane.refresh_marks()

    @work(exclusive=True, group="file-op", exit_on_error=False)
    async def action_extract(self) -> None:
        pane = self._tag_pane()
        entry = pane.entry_list.highlighted
        if entry is None:
            return
        fmt = archive_format(entry.name)
        if entry.is_dir or fmt is None:
            message = f"{display_name(entry.name)} is not a {_ARCHIVE_SUFFIXES} archive; X extracts those"
            pane.notify(message, severity="warning", markup=False)
            return
        found = await pane._look([join(pane.directory, entry.name)])
        stem = entry.name[: -len(fmt) - 1] or "extracted"
        question = f"Extract {display_name(entry.name)} into the new directory:"
        name = typed_name(await pane.app.push_screen_wait(PromptScreen(question, display_name(stem))))
        if not name:
            return
        try:
            source, to = join(pane.directory, entry.name), join(pane.directory, name)
        except RouteshellError as exc:
            self._refused(display_line(str(exc)))
            return
        goal = goal_text(f"extract {source} into {to}")
        plan = {"version": 1, "goal": goal, "steps": [{"op": "extract", "from": source, "to": to}]}
        await self._expand_and_apply(plan, select=name, found=found)
