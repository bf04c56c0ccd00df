"""The default SFT sets, built on this machine with nothing downloaded.

- :func:`stdlib_function_pairs`: functions of the standard library with a docstring, as HumanEval
  shapes them: the prompt is the ``def`` line and the docstring, the answer is the body.
- :func:`plan_examples`: tasks answered with the plan JSON that routeshell's agents write, each
  checked by the real plan validation.
- :func:`reasoning_problems` (from :mod:`engine.tinyllm.word_problems`): arithmetic and unit word
  problems whose answers the calculator computes.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from typing import Any

from engine.plans.model import BUILDER_PROMPT, plan_problems
from engine.tinyllm.corpus import ReadReport, default_corpus_files, read_documents
from engine.tinyllm.sft_data import Conversation, Message, ReasoningRow
from engine.tinyllm.word_problems import reasoning_problems

__all__ = [
    "PLAN_SYSTEM_PROMPT",
    "ReasoningRow",
    "default_sft_conversations",
    "plan_examples",
    "reasoning_problems",
    "stdlib_function_pairs",
]

#: Bounds on a mined function: bodies of 2-40 lines, and prompt plus body within the SFT length filter.
MIN_BODY_LINES = 2
MAX_BODY_LINES = 40
MAX_PAIR_CHARS = 2000


def stdlib_function_pairs(limit: int | None = None) -> list[Conversation]:
    """Return docstring-to-function pairs mined from the standard library with ``ast``.

    Each is a conversation whose user turn is a HumanEval-shaped prompt (the ``def`` line with
    its signature and the indented docstring, as source) and whose assistant turn is the body
    without the docstring, so that prompt + answer is the function. Only public module-level
    functions without decorators are taken, with bodies of 2-40 lines. The order is the sorted
    file order; ``limit`` takes that many spread evenly over all of them.
    """
    pairs = _stdlib_pairs()
    if limit is not None and limit < len(pairs):
        pairs = tuple(pairs[index * len(pairs) // limit] for index in range(max(limit, 0)))
    return [[Message(role="user", content=prompt), Message(role="assistant", content=body)] for prompt, body in pairs]


@cache
def _stdlib_pairs() -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for document in read_documents(default_corpus_files(), ReadReport()):
        try:
            tree = ast.parse(document.text)
        except (SyntaxError, ValueError, RecursionError):
            continue  # not Python this interpreter reads (a template, a file for another version)
        lines = document.text.splitlines(keepends=True)
        for node in tree.body:
            pair = _function_pair(node, lines)
            if pair is not None:
                pairs.append(pair)
    return tuple(pairs)


def _function_pair(node: ast.stmt, lines: list[str]) -> tuple[str, str] | None:
    """The (prompt, body) of a function definition that qualifies, or None."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
        return None
    if node.decorator_list or len(node.body) < 2 or ast.get_docstring(node) is None:
        return None
    docstring, first = node.body[0], node.body[1]
    if docstring.end_lineno is None or node.end_lineno is None:
        return None  # only a tree built by hand lacks positions
    if first.lineno <= docstring.end_lineno:
        return None  # a statement on the docstring's line: no clean cut
    prompt = "".join(lines[node.lineno - 1 : docstring.end_lineno])
    body_lines = lines[docstring.end_lineno : node.end_lineno]
    while body_lines and not body_lines[0].strip():
        del body_lines[0]  # the answer starts with code, not with the blank line after the docstring
    body = "".join(body_lines)
    if not MIN_BODY_LINES <= len(body_lines) <= MAX_BODY_LINES or len(prompt) + len(body) > MAX_PAIR_CHARS:
        return None
    prompt, body = prompt.rstrip("\n") + "\n", body.rstrip("\n") + "\n"
    try:
        ast.parse(prompt + body)  # the cut must give back a function that compiles
    except SyntaxError:
        return None
    return prompt, body


#: The system prompt of the plan examples: the one the builder role is given.
PLAN_SYSTEM_PROMPT = BUILDER_PROMPT


#: Values the plan templates are filled with: (module name, what it does, a function in it).
_MODULES = (
    ("greet", "greets people", "def greet(name):\n    return f'hello {name}'\n"),
    ("mathutil", "adds numbers", "def add(a, b):\n    return a + b\n"),
    ("slug", "makes URL slugs", "def slugify(text):\n    return '-'.join(text.lower().split())\n"),
    ("temps", "converts temperatures", "def c_to_f(c):\n    return c * 9 / 5 + 32\n"),
    ("stack", "is a small stack", "class Stack(list):\n    def push(self, item):\n        self.append(item)\n"),
    ("wordcount", "counts words", "def count_words(text):\n    return len(text.split())\n"),
)
_DOCS = (("README.md", "Project"), ("docs/guide.md", "Guide"), ("NOTES.txt", "Notes"), ("CHANGELOG.md", "Changes"))


def plan_examples() -> list[Conversation]:
    """Return tasks answered with a plan (the JSON routeshell's agents write), a few dozen, deterministic.

    The plans cover every op, the file-management ones with a ``match`` over many files. Each one is
    checked with the real plan validation here; a template that made an invalid plan would raise.
    """
    conversations: list[Conversation] = []
    for task, plan in _plan_tasks():
        problems = plan_problems(plan)
        if problems:
            raise ValueError(f"built-in plan example for {task!r} is invalid: {problems[0]}")
        conversations.append(
            [
                Message(role="system", content=PLAN_SYSTEM_PROMPT),
                Message(role="user", content=task),
                Message(role="assistant", content=json.dumps(plan, ensure_ascii=False)),
            ]
        )
    return conversations


def _plan(goal: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "goal": goal, "steps": list(steps)}


def _plan_tasks() -> list[tuple[str, dict[str, Any]]]:
    tasks: list[tuple[str, dict[str, Any]]] = []
    for name, does, code in _MODULES:
        path, test = f"src/{name}.py", f"tests/test_{name}.py"
        function = code.split("(")[0].split()[-1]
        tasks += [
            (
                f"Create {path}, a module that {does}.",
                _plan(f"add {path}", {"op": "write", "path": path, "content": code}),
            ),
            (
                f"Add a test for {function} in {path} and run it.",
                _plan(
                    f"test {function}",
                    {"op": "mkdir", "path": "tests"},
                    {
                        "op": "write",
                        "path": test,
                        "content": f"from src.{name} import {function}\n\n\n"
                        f"def test_{function.lower()}_exists():\n    assert callable({function})\n",
                    },
                    {"op": "run", "argv": ["python", "-m", "pytest", "-q", test], "timeout_s": 120},
                ),
            ),
            (
                f"Rename {path} to src/{name}_lib.py.",
                _plan(f"rename {name}", {"op": "move", "from": path, "to": f"src/{name}_lib.py"}),
            ),
            (
                f"Make a backup copy of {path} next to it.",
                _plan(f"back up {name}", {"op": "copy", "from": path, "to": f"{path}.bak"}),
            ),
            (
                f"Delete the old backup {path}.bak.",
                _plan(f"remove the backup of {name}", {"op": "delete", "path": f"{path}.bak"}),
            ),
            (
                f"In {path}, rename {function} to {function}_v2 (the name occurs twice in the file).",
                _plan(
                    f"rename {function}",
                    {"op": "patch", "path": path, "find": function, "replace": f"{function}_v2", "count": 2},
                ),
            ),
        ]
    for path, title in _DOCS:
        tasks += [
            (
                f"Write {path} with the heading '{title}' and one line saying what the project is.",
                _plan(
                    f"write {path}",
                    {
                        "op": "write",
                        "path": path,
                        "content": f"# {title}\n\nA small Python project.\n",
                        "overwrite": True,
                    },
                ),
            ),
            (
                f"Append a line 'See also: LICENSE' to {path}.",
                _plan(
                    f"link the license from {path}", {"op": "append", "path": path, "content": "See also: LICENSE\n"}
                ),
            ),
            (
                f"Change the heading of {path} from '{title}' to '{title} (draft)'.",
                _plan(
                    f"mark {path} as a draft",
                    {"op": "patch", "path": path, "find": f"# {title}\n", "replace": f"# {title} (draft)\n"},
                ),
            ),
            (
                f"Move {path} into an archive directory.",
                _plan(
                    f"archive {path}",
                    {"op": "mkdir", "path": "archive"},
                    {"op": "move", "from": path, "to": f"archive/{path.rsplit('/', 1)[-1]}"},
                ),
            ),
        ]
    tasks += [
        ("Run the test suite.", _plan("run the tests", {"op": "run", "argv": ["python", "-m", "pytest", "-q"]})),
        (
            "Check the code with ruff, but do not fail the plan if it finds problems.",
            _plan("lint", {"op": "run", "argv": ["ruff", "check", "."], "timeout_s": 60, "check": False}),
        ),
        (
            "Set up a package layout: src/app with an empty __init__.py and a main.py that prints hello.",
            _plan(
                "package layout",
                {"op": "mkdir", "path": "src/app"},
                {"op": "write", "path": "src/app/__init__.py", "content": ""},
                {"op": "write", "path": "src/app/main.py", "content": "print('hello')\n"},
                {"op": "run", "argv": ["python", "src/app/main.py"], "timeout_s": 30},
            ),
        ),
        (
            "Add .venv and __pycache__ to .gitignore.",
            _plan("ignore build files", {"op": "append", "path": ".gitignore", "content": ".venv/\n__pycache__/\n"}),
        ),
        (
            "Replace every 'print(' with 'logging.info(' in src/app/main.py (it occurs 3 times).",
            _plan(
                "log instead of print",
                {"op": "patch", "path": "src/app/main.py", "find": "print(", "replace": "logging.info(", "count": 3},
            ),
        ),
        (
            "Remove the build directory and the dist directory.",
            _plan("clean", {"op": "delete", "path": "build"}, {"op": "delete", "path": "dist"}),
        ),
        (
            "Write data/config.json with debug off and a port of 8080.",
            _plan(
                "config",
                {"op": "mkdir", "path": "data"},
                {"op": "write", "path": "data/config.json", "content": '{"debug": false, "port": 8080}\n'},
            ),
        ),
    ]
    return tasks + _file_management_tasks()


def _file_management_tasks() -> list[tuple[str, dict[str, Any]]]:
    """Requests over many files, answered with one step that selects them (never a step per file)."""
    logs = {"glob": "**/*.log", "exclude": ["archive/**"]}
    return [
        (
            "Move every .log file into archive/.",
            _plan("archive the logs", {"op": "move", "match": logs, "to": "archive"}),
        ),
        (
            "Copy the photos under photos/ to backup/, keeping their folders.",
            _plan(
                "back up the photos",
                {"op": "copy", "match": {"glob": "photos/**/*.jpg"}, "to": "backup", "keep_tree": True},
            ),
        ),
        (
            "Delete the .tmp files older than 30 days.",
            _plan("drop old temp files", {"op": "delete", "match": {"glob": "**/*.tmp", "modified_before": "30d"}}),
        ),
        (
            "Number the pictures in photos/ as photo_001.jpg, photo_002.jpg and so on.",
            _plan(
                "number the photos",
                {"op": "rename", "match": {"glob": "photos/*.jpg"}, "template": "photo_{n:03}{ext}"},
            ),
        ),
        (
            "Replace the spaces in the file names under notes/ with dashes.",
            _plan("dashes in names", {"op": "rename", "match": {"glob": "notes/**"}, "find": " ", "replace": "-"}),
        ),
        (
            "Sort the markdown notes in docs/ by topic: architecture, API, everything else in misc.",
            _plan(
                "sort the notes",
                {
                    "op": "classify",
                    "match": {"glob": "docs/*.md"},
                    "rules": [
                        {"contains": "architecture", "to": "docs/architecture"},
                        {"regex": "\\bAPI\\b", "to": "docs/api"},
                        {"default": True, "to": "docs/misc"},
                    ],
                },
            ),
        ),
        (
            "Tag the notes that mention the roadmap with 'roadmap'.",
            _plan(
                "tag roadmap notes",
                {"op": "tag", "match": {"glob": "**/*.md", "contains": "roadmap"}, "tags": ["roadmap"]},
            ),
        ),
        (
            "Remove the 'draft' tag from everything.",
            _plan("untag drafts", {"op": "untag", "match": {"glob": "**", "tag": "draft"}, "tags": ["draft"]}),
        ),
        (
            "Archive the logs bigger than 1MB into old-logs.tar.gz and remove the originals.",
            _plan(
                "archive big logs",
                {
                    "op": "archive",
                    "match": {"glob": "**/*.log", "larger_than": "1MB"},
                    "to": "old-logs.tar.gz",
                    "remove": True,
                },
            ),
        ),
        (
            "Unpack export.zip into export/.",
            _plan("unpack the export", {"op": "extract", "from": "export.zip", "to": "export"}),
        ),
    ]


def default_sft_conversations() -> list[Conversation]:
    """Return the default SFT set: the standard library function pairs, then the plan examples."""
    return stdlib_function_pairs() + plan_examples()
