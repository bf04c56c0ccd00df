"""The file-management ops: rename and classify (which become moves), tags, archives and extraction.

``rename`` and ``classify`` exist only before expansion: :mod:`engine.plans.expand` turns them
into concrete ``mkdir`` and ``move`` steps, which the journal records. ``tag``, ``untag``,
``archive`` and ``extract`` also run as concrete steps, one file (or one archive) each.
"""

from __future__ import annotations

from typing import Any

from engine.files.classify import parse_rules
from engine.files.match import MatchError, compile_regex
from engine.files.rename import replacement_problem, template_problem
from engine.plans.archive_ops import Archive, Extract
from engine.plans.op_base import (
    Op,
    StepFailed,
    selection_problems,
)
from engine.plans.tag_ops import SELECTION, Tag, Untag
from engine.plans.view import View
from engine.workspace.sandbox import SandboxError, check_relpath


class _Expanded(Op[dict[str, Any], dict[str, Any]]):
    """An op that exists only until :func:`engine.plans.expand.expand_plan` turns it into moves."""

    def summary(self, step: dict[str, Any]) -> str:
        selection = "match" if "match" in step else f"{len(step.get('paths', []))} paths"
        return f"{self.name} ({selection})"

    def prepare(self, view: View, index: int, step: dict[str, Any]) -> dict[str, Any]:
        raise StepFailed(f"a {self.name} step runs only after its files are chosen (expand the plan first)")


class Rename(_Expanded):
    name = "rename"
    usage = (
        '{"op": "rename", "match": MATCH, "template": "photo_{n:03}{ext}"}   (each keeps its directory;\n'
        "    placeholders {name} {stem} {ext} {n} {n:03} {parent} {mtime:%Y-%m-%d})\n"
        '  {"op": "rename", "match": MATCH, "find": REGEX, "replace": "\\\\1-new"}   (over the name only)'
    )
    paths = SELECTION

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, None)
        has_template, has_find = "template" in step, "find" in step
        if has_template == has_find:
            problems.append(("template", "give either 'template' or 'find' with 'replace'"))
        elif has_template and isinstance(step["template"], str) and (why := template_problem(step["template"])):
            problems.append(("template", why))
        elif has_find:
            if "replace" not in step:
                problems.append(("replace", "missing: 'find' needs 'replace'"))
            elif isinstance(step["find"], str) and isinstance(step["replace"], str):
                try:
                    find = compile_regex(step["find"], "find")
                except MatchError as exc:
                    problems.append(("find", exc.reason))
                else:
                    if why := replacement_problem(find, step["replace"]):
                        problems.append(("replace", why))
        if "replace" in step and not has_find:
            problems.append(("replace", "'replace' goes with 'find'"))
        return problems


class Classify(_Expanded):
    name = "classify"
    usage = (
        '{"op": "classify", "match": MATCH, "rules": [{"contains": TEXT, "to": DIR}, {"regex": RE, "to": DIR},\n'
        '    {"ext": [".png"], "to": DIR}, {"glob": GLOB, "to": DIR}, {"default": true, "to": DIR}]}\n'
        "    (the first rule that holds moves the file into its DIR; files no rule takes stay)"
    )
    paths = SELECTION

    def problems(self, step: dict[str, Any]) -> list[tuple[str, str]]:
        problems = selection_problems(step, None)
        rules = step.get("rules")
        if isinstance(rules, list) and all(isinstance(rule, dict) for rule in rules):
            for index, rule in enumerate(rules):
                if isinstance(rule.get("to"), str):
                    try:
                        check_relpath(rule["to"], write=True)
                    except SandboxError as exc:
                        problems.append((f"rules/{index}/to", str(exc)))
            try:
                parse_rules(rules)
            except MatchError as exc:
                problems.append((f"rules/{exc.key}", exc.reason))
            except (KeyError, TypeError):
                pass  # the schema says what is wrong with its shape
        return problems


#: The ops of this module and of tag_ops and archive_ops, in the order the rules list them.
BULK_OPS: tuple[Op[Any, Any], ...] = (Rename(), Classify(), Tag(), Untag(), Archive(), Extract())
