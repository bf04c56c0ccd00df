"""Patterns from users and models: workspace globs and regular expressions, each use bounded in time.

A glob has ``*`` and ``?`` within a name, ``**`` across directories and ``[abc]`` classes. Both kinds
are compiled with the ``regex`` engine, which matches the globs' nested ``.*`` without the
exponential backtracking of ``re``; and every match, search or substitution gives up after
:data:`MATCH_SECONDS` with a one-line :class:`PatternTooSlow`, so a pattern written to backtrack
(``(a+)+$`` against a long name or a megabyte of text) costs a second, never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import cache
from typing import Any

import regex

from engine.workspace.sandbox import SandboxError

MATCH_SECONDS = 1.0
#: All the uses of one regular expression (over every name of a selection) together get this long.
TOTAL_SECONDS = 5.0


class PatternTooSlow(SandboxError):
    """A pattern that took longer than :data:`MATCH_SECONDS` on one text."""


class Pattern:
    """A compiled glob or regular expression whose every use is bounded in time."""

    __slots__ = ("_compiled", "budget", "pattern", "shown", "spent")

    def __init__(self, compiled: Any, shown: str, budget: float | None = None) -> None:
        self._compiled = compiled
        self.pattern: str = compiled.pattern
        self.shown = shown  # the pattern as the user wrote it
        self.budget = budget  # seconds for every use together (None: each use is bounded alone)
        self.spent = 0.0

    def _run(self, method: Any, text: str, *args: Any) -> Any:
        if self.budget is None:
            return method(*args, text, timeout=MATCH_SECONDS)
        if self.spent > self.budget:
            raise PatternTooSlow(f"the pattern {self.shown!r} took over {self.budget:g} s in all; write a simpler one")
        start = time.monotonic()
        try:
            return method(*args, text, timeout=MATCH_SECONDS)
        finally:
            self.spent += time.monotonic() - start

    def _slow(self, text: str) -> PatternTooSlow:
        return PatternTooSlow(
            f"the pattern {self.shown!r} took over {MATCH_SECONDS:g} s on {text[:60]!r}; write a simpler one"
        )

    def match(self, text: str) -> bool:
        """Whether the pattern matches at the start of ``text``."""
        try:
            return self._run(self._compiled.match, text) is not None
        except TimeoutError:
            raise self._slow(text) from None

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in ``text``."""
        try:
            return self._run(self._compiled.search, text) is not None
        except TimeoutError:
            raise self._slow(text) from None

    def sub(self, replacement: str, text: str) -> str:
        """``text`` with every match replaced (``\\1`` and ``\\g<name>`` name groups)."""
        try:
            return str(self._run(self._compiled.sub, text, replacement))
        except TimeoutError:
            raise self._slow(text) from None

    @property
    def groups(self) -> int:
        return int(self._compiled.groups)

    @property
    def groupindex(self) -> Mapping[str, int]:
        return dict(self._compiled.groupindex)


def compile_pattern(text: str, *, ignore_case: bool = False) -> Pattern:
    """Compile a regular expression (Python's syntax); raises ``regex.error`` when it is not one."""
    flags = regex.VERSION0 | (regex.IGNORECASE if ignore_case else 0)
    return Pattern(regex.compile(text, flags), text, TOTAL_SECONDS)


@cache
def glob_regex(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """Compile a workspace glob: ``*`` and ``?`` within a name, ``**`` across directories, ``[...]`` classes."""
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[" and (end := pattern.find("]", index + 2)) != -1:
            body = pattern[index + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            out.append(regex.escape(pattern[index]))
            index += 1
    flags = regex.VERSION0 | regex.DOTALL | (regex.IGNORECASE if ignore_case else 0)
    return Pattern(regex.compile("".join(out) + r"\Z", flags), pattern)
