"""Classify files into directories by rules typed one a line, with a live preview of where each goes.

A rule is ``KIND ARGUMENT -> DIR``; the first rule that holds for a file decides::

    contains invoice -> invoices        text in the file (its first MiB, ignoring case)
    regex ^total: \\d+ -> reports        a regular expression over that text
    ext .png,.jpg -> images             the name's extension
    glob **/draft-* -> drafts           a workspace glob over the path
    default -> other                    every file no earlier rule took

Blank lines and lines starting with ``#`` are left out. A file no rule takes stays where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NotRequired, TypedDict, get_args

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, TextArea

from engine.names import display_name
from engine.plans.model import PlanProblem
from tui.screens.plan_preview import ROWS_SHOWN, PlanPreviewScreen, Preview, arrow_row, plural

RuleKind = Literal["contains", "regex", "ext", "glob", "default"]
RULE_KINDS: tuple[RuleKind, ...] = get_args(RuleKind)

EXAMPLE_RULES = """\
# One rule a line; the first rule that holds decides.
ext .png,.jpg,.gif -> images
contains invoice -> invoices
glob **/draft-* -> drafts
# regex ^total: \\d+ -> reports
# default -> other
"""


class ClassifyRule(TypedDict):
    """One rule as the plan schema writes it (``classify`` step, ``rules`` item)."""

    to: str
    contains: NotRequired[str]
    regex: NotRequired[str]
    ext: NotRequired[list[str]]
    glob: NotRequired[str]
    default: NotRequired[bool]


@dataclass(frozen=True)
class ParsedRules:
    """The rules typed, the line number of each, and one line for each line that is not a rule."""

    rules: list[ClassifyRule]
    lines: list[int]
    errors: list[str]


def parse_rule_lines(text: str) -> ParsedRules:
    """Read rules written one a line as ``KIND ARGUMENT -> DIR`` (see the module docstring)."""
    rules: list[ClassifyRule] = []
    lines: list[int] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            rules.append(_parse_rule(stripped))
            lines.append(number)
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    return ParsedRules(rules, lines, errors)


def _parse_rule(line: str) -> ClassifyRule:
    condition, arrow, directory = line.rpartition("->")
    if not arrow:
        raise ValueError("no '-> DIR' at the end; write it like 'ext .png,.jpg -> images'")
    word, _, argument = condition.strip().partition(" ")
    kind = word.lower()
    argument = argument.strip()
    directory = directory.strip()
    if not directory:
        raise ValueError("give the directory the files go to after '->'")
    if kind == "default":
        if argument:
            raise ValueError("a default rule takes every file; write it as 'default -> DIR'")
        return {"default": True, "to": directory}
    if kind not in RULE_KINDS:
        raise ValueError(f"{word!r} is not a rule; start the line with {', '.join(RULE_KINDS)}")
    if not argument:
        raise ValueError(f"{kind} needs {_ARGUMENTS[kind]} before '->'")
    if kind == "ext":
        return {"ext": [item.strip() for item in argument.split(",") if item.strip()], "to": directory}
    if kind == "contains":
        return {"contains": argument, "to": directory}
    if kind == "regex":
        return {"regex": argument, "to": directory}
    return {"glob": argument, "to": directory}


_ARGUMENTS = {
    "contains": "the text to look for",
    "regex": "a regular expression",
    "ext": "extensions such as .png,.jpg",
    "glob": "a pattern such as **/draft-*",
}


class ClassifyScreen(PlanPreviewScreen):
    """Write classify rules for ``paths``; dismiss with its preview (the expanded plan) on Ctrl+S, or None on Escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "apply", "Apply", id="classify.apply", tooltip="Move the files as the preview shows"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rule_lines: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog plan-dialog"):
            yield Label(f"Classify {plural(len(self.paths), 'file')} into directories", markup=False)
            yield TextArea(EXAMPLE_RULES, id="classify-rules", soft_wrap=False, tab_behavior="focus")
            yield Label("Kinds: contains TEXT · regex RE · ext .a,.b · glob PATTERN · default", classes="dialog-hint")
            yield from self.compose_preview()
            yield Label("Ctrl+S moves the files · Enter adds a line · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        super().on_mount()

    @on(TextArea.Changed)
    def _typed(self) -> None:
        self.refresh_preview()

    def written_plan(self) -> dict[str, Any] | Preview:
        parsed = parse_rule_lines(self.query_one(TextArea).text)
        if parsed.errors:
            return Preview(None, problems=parsed.errors)
        if not parsed.rules:
            return Preview.asking("Write a rule, one a line, such as 'ext .png -> images'")
        self._rule_lines = parsed.lines
        goal = f"classify {plural(len(self.paths), 'file')}"
        return {"version": 1, "goal": goal, "steps": [{"op": "classify", "paths": self.paths, "rules": parsed.rules}]}

    def problem_line(self, problem: PlanProblem) -> str:
        # "/steps/0/rules/2/regex" is the rule on the third line that holds a rule.
        parts = problem.pointer.split("/")
        if len(parts) > 4 and parts[3] == "rules" and parts[4].isdigit() and int(parts[4]) < len(self._rule_lines):
            return f"line {self._rule_lines[int(parts[4])]}: {problem.reason}"
        return problem.reason

    def preview_rows(self, preview: Preview) -> tuple[list[Text], int, str]:
        targets = dict(preview.moves)
        rows = []
        for path in self.paths[:ROWS_SHOWN]:
            target = targets.get(path)
            rows.append(arrow_row(path, target) if target else Text.assemble(display_name(path), (" stays", "dim")))
        staying = len(self.paths) - len(targets)
        return rows, len(self.paths), f"{plural(len(targets), 'file')} to move, {staying:,} staying"
