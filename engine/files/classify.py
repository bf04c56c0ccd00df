"""Classify rules: where each file goes, decided by the first rule that holds.

A rule is ``{"contains": TEXT, "to": DIR}``, ``{"regex": RE, "to": DIR}``, ``{"ext": [".png"],
"to": DIR}``, ``{"glob": "**/draft-*", "to": DIR}`` or ``{"default": true, "to": DIR}``; a rule
with several conditions needs all of them. ``contains`` (ignoring case) and ``regex`` look at the
text of the file's first :data:`~engine.files.match.CONTENT_BYTES`. A file no rule takes stays
where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.files.match import MatchError, check_glob, compile_regex
from engine.workspace.globs import Pattern, glob_regex


@dataclass(frozen=True)
class Rule:
    """One parsed rule."""

    to: str
    contains: str | None = None
    regex: Pattern | None = None
    ext: tuple[str, ...] = ()
    glob: Pattern | None = None
    default: bool = False

    @property
    def reads(self) -> bool:
        """Whether the rule looks at the file's content."""
        return self.contains is not None or self.regex is not None

    def holds(self, path: str, head: Callable[[], Head | None]) -> bool:
        """Whether the rule takes ``path``; ``head`` reads the start of the file, only when needed."""
        if self.default:
            return True
        name = path.rpartition("/")[2].lower()
        if self.ext and not name.endswith(self.ext):
            return False
        if self.glob is not None and not self.glob.match(path):
            return False
        if self.reads:
            text = head()
            if text is None:
                return False
            if self.contains is not None and self.contains.casefold() not in text.folded:
                return False
            if self.regex is not None and not self.regex.search(text.text):
                return False
        return True


@dataclass(frozen=True)
class Head:
    """The start of a file as text, decoded and case-folded once for every rule that reads it."""

    text: str
    folded: str

    @classmethod
    def of(cls, data: bytes) -> Head:
        text = data.decode("utf-8", errors="replace")
        return cls(text, text.casefold())


def parse_rules(rules: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """Check rules (already shaped by the plan schema); raise :class:`MatchError` keyed ``<index>/<key>``."""
    parsed = []
    for index, rule in enumerate(rules):
        conditions = [key for key in ("contains", "regex", "ext", "glob") if key in rule]
        if rule.get("default") and conditions:
            raise MatchError(f"{index}/default", f"a default rule takes every file; drop {conditions[0]!r}")
        if not conditions and not rule.get("default"):
            raise MatchError(f"{index}", 'a rule needs a condition (contains, regex, ext or glob) or "default": true')
        exts = tuple(("" if e.startswith(".") else ".") + e.lower() for e in rule.get("ext", ()))
        regex = compile_regex(rule["regex"], f"{index}/regex") if "regex" in rule else None
        glob = glob_regex(check_glob(rule["glob"], f"{index}/glob")) if "glob" in rule else None
        parsed.append(Rule(rule["to"], rule.get("contains"), regex, exts, glob, bool(rule.get("default"))))
    return parsed


def destination(rules: Sequence[Rule], path: str, head: Callable[[], bytes | None]) -> str | None:
    """The directory of the first rule that takes ``path``, or None when none does."""
    cached: list[Head | None] = []

    def read_once() -> Head | None:
        if not cached:
            data = head()
            cached.append(None if data is None else Head.of(data))
        return cached[0]

    for rule in rules:
        if rule.holds(path, read_once):
            return rule.to
    return None
