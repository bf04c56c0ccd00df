"""What the planner model reads and writes: a compact view of the workspace, the request, a plan.

The view lists every folder with its first files (names and tags), folders in path order,
and stays within :data:`VIEW_CHARS` characters: past that, a folder is summarised in one line (how
many files of which kinds). Names are escaped as the rest of routeshell shows them, so a name
with a newline or an escape character is one line of plain text. The same view is made from a
fixture (training, evaluation) and from a real workspace (serving); a test holds them equal.

The answer is a plan in compact JSON with its keys in one order (:func:`canonical`), the order
the decoding schema (:func:`reply_schema`) asks for: what a step acts on first, then how, then
where to. A request that file operations cannot do is answered with no steps and a goal that
says why; a plan with steps has no goal (its steps say what it does).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import posixpath
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from engine.files.archives import FORMATS
from engine.files.tags import front_matter_tags, is_markdown
from engine.llm.wire import ChatMessage
from engine.names import display_name
from engine.planner.fixtures import Fixture, archive_bytes
from engine.planner.workspaces import when
from engine.schemas import load_schema

#: A plain name, for a path the planner makes up: it starts with a letter, a digit or ``_``, so it is
#: never ``..``, ``.git`` or ``.routeshell``.
_PLAIN = "[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}"
#: A path of plain names: one the sandbox lets a plan change.
SAFE_PATH = f"^{_PLAIN}(?:/{_PLAIN}){{0,7}}$"
#: The end of a name :func:`archives.archive_format` knows (any case): what the archive ops take.
ARCHIVE_SUFFIX = (
    "\\.(?:"
    + "|".join("".join(f"[{ch}{ch.upper()}]" if ch.isalpha() else "\\." for ch in fmt) for fmt in FORMATS)
    + ")$"
)
#: A path of plain names with such a suffix: an archive name the planner makes up.
ARCHIVE_NAME = SAFE_PATH.removesuffix("$") + ARCHIVE_SUFFIX
#: The longest view, in characters (about 400 tokens of the shipped base's tokenizer).
VIEW_CHARS = 1000
#: Files listed one by one per folder before the rest are counted. The plan's names come from the
#: request and, under constrained decoding, from the whole workspace: a few names per folder show
#: the model what a folder holds, and a shorter prompt trains and answers faster (the view and the
#: request of a generated case are about 350 tokens on average).
FOLDER_FILES = 4
#: The most entries a view reads from a real workspace.
MAX_ENTRIES = 5000
MAX_REQUEST_CHARS = 600
#: How much of a Markdown file the view reads for the tags in its front matter.
FRONT_MATTER_BYTES = 8192

SYSTEM_PROMPT = (
    "You turn a request about the files of a workspace into a routeshell plan (JSON). Use the names in the "
    "listing. Answer with no steps when file operations cannot do it."
)

#: Ops the planner writes: every file op but ``run`` and ``patch``.
PLANNER_OPS = ("mkdir", "write", "append", "move", "copy", "delete", "rename", "classify", "tag", "untag",
               "archive", "extract")  # fmt: skip
STEP_ORDER = ("op", "path", "from", "paths", "match", "template", "find", "replace", "rules", "tags", "content",
              "overwrite", "to", "keep_tree", "remove")  # fmt: skip
RULE_ORDER = ("contains", "regex", "ext", "glob", "default", "to")
MAX_STEPS = 20
#: The planner answers greedily first; an answer that is invalid or that the dry run refuses is
#: asked again from the same prompt, sampled at this temperature so that it can differ, at most
#: :data:`PLANNER_RETRIES` times. The prompt never grows: the model was not trained on repair
#: turns, and a rejected answer appended to it could overrun a small model's context.
PLANNER_RETRY_TEMPERATURE = 0.7
PLANNER_RETRIES = 2
#: Before those, an answer the dry run refuses because a step selects nothing, or that does a step
#: twice, is asked again greedily under the schema without the folder or filter that selects nothing
#: or, there, that step (:mod:`engine.planner.guided`), at most this often.
PLANNER_GUIDED_RETRIES = 3
#: The least probability the planner must give its plan for the local profile to offer it
#: (``planner.min_probability`` in profiles/local.toml). Chosen, with every plan scored as the Agent
#: pane asks, on four hand-written sets no rule was shaped by (the seventeenth to the twentieth, 96
#: requests) as the bound of 20%, 30%, 40%, 50% or 60% under which the right plans it offers
#: outnumber most the plans it offers that change a path the gold plan leaves alone: 29 and 13 at 40%,
#: against 31 and 21 at 20%. On the four sets after them (the twenty-first to the twenty-fourth) it
#: offers 14 right and 17 such plans, against 20 and 29 at 20%; it keeps 195 of 199 right plans on
#: 200 generated held-out cases, and 42 of 45 on the first hand-written set.
PLANNER_MIN_PROBABILITY = 0.4


def joint_logprob(logprobs: Sequence[float | None]) -> float | None:
    """The log probability of a plan planned part by part: the sum of its parts', or None when a
    part has none (an unscored part says nothing of the whole)."""
    return None if None in logprobs else sum(value for value in logprobs if value is not None)


def unsure(logprob: float | None, least: float) -> bool:
    """Whether a plan the planner gives the log probability ``logprob`` is under ``least`` (never
    when there is no probability to judge by, or ``least`` is 0)."""
    import math

    return logprob is not None and least > 0 and math.exp(logprob) < least


def as_percent(probability: float) -> str:
    """``probability`` in whole percent, as said to a person: ``14%``; ``under 1%`` rather than ``0%``."""
    return "under 1%" if probability < 0.005 else f"{probability:.0%}"


#: The most paths one step of a planner reply lists.
MAX_LISTED = 32
MAX_GOAL = 160


@dataclass(frozen=True)
class ViewEntry:
    """One file or folder as the view shows it."""

    path: str
    is_dir: bool
    size: int
    day: dt.date
    tags: tuple[str, ...] = ()


def entries_from_fixture(fixture: Fixture, today: dt.date) -> list[ViewEntry]:
    """The entries of ``fixture`` as :func:`entries_from_root` finds them once it is written: no
    hidden name (``.env``, ``.DS_Store``) nor what is inside one, and a folder that holds only such
    names as an empty one."""
    entries = []
    hidden_in: dict[str, dt.date] = {}  # the shown folders that hold hidden names
    for spec in fixture.files:
        parts = spec.path.split("/")
        if any(part.startswith(".") for part in parts):
            depth = next(at for at, part in enumerate(parts) if part.startswith("."))
            if depth:
                hidden_in["/".join(parts[:depth])] = when(today, spec.age_days)
            continue
        if spec.kind == "dir":
            entries.append(ViewEntry(spec.path, True, 0, when(today, spec.age_days)))
            continue
        if spec.text is not None:
            size = len(spec.text.encode("utf-8", "surrogateescape"))
        elif spec.members is not None:
            size = len(archive_bytes(spec.path, spec.members))
        else:
            size = spec.size
        entries.append(ViewEntry(spec.path, False, size, when(today, spec.age_days), spec.tags))
    held = {parent for entry in entries for parent in [*_parents(entry.path), entry.path]}
    for folder in sorted(hidden_in, key=lambda path: -path.count("/")):
        if folder not in held:
            entries.append(ViewEntry(folder, True, 0, hidden_in[folder]))
            held.update([*_parents(folder), folder])
    return entries


def entries_from_root(root: Path, *, limit: int = MAX_ENTRIES) -> list[ViewEntry]:
    """The entries of a real workspace: never through a link, never in ``.git`` or ``.routeshell``."""
    from engine.files.tags import XATTR, decode_tags

    entries: list[ViewEntry] = []
    folders: dict[str, dt.date] = {}  # the folders that hold something, shown or not
    pending = [(os.fsencode(root), "")]
    while pending and len(entries) < limit:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as listing:
                found = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in found:
            name = os.fsdecode(entry.name)
            if name.lower() in (".git", ".routeshell") or name.startswith("."):
                continue
            relative = f"{prefix}{name}"
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            day = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC).date()
            if entry.is_dir(follow_symlinks=False):
                if not any(True for _ in _quick(entry.path)):
                    entries.append(ViewEntry(relative, True, 0, day))
                else:
                    folders[relative] = day
                pending.append((entry.path, f"{relative}/"))
            elif entry.is_file(follow_symlinks=False):
                tags: tuple[str, ...] = ()
                try:
                    if is_markdown(name):
                        with open(entry.path, "rb", opener=_no_follow) as handle:
                            tags = tuple(front_matter_tags(handle.read(FRONT_MATTER_BYTES)))
                    else:
                        tags = tuple(decode_tags(os.getxattr(entry.path, XATTR, follow_symlinks=False)))
                except OSError:
                    pass
                entries.append(ViewEntry(relative, False, info.st_size, day, tags))
            if len(entries) >= limit:
                break
    if not pending and len(entries) < limit:
        # A folder that holds only what the view leaves out (links, hidden names, FIFOs) is shown as
        # the empty folder it is to the planner: left out, a request that names it ("delete the notes
        # folder") would name a place the planner does not know, and it would choose from everywhere.
        # (Only where the whole workspace was walked: elsewhere a folder not reached would look so.)
        held = {parent for entry in entries for parent in _parents(entry.path)}
        for folder in sorted(folders, key=lambda path: -path.count("/")):
            if folder not in held and len(entries) < limit:
                entries.append(ViewEntry(folder, True, 0, folders[folder]))
                held.update(_parents(folder))
    return sorted(entries, key=lambda entry: entry.path)


def _parents(path: str) -> list[str]:
    """The folders ``path`` is in, nearest last (``a/b/c`` -> ``a``, ``a/b``)."""
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def _quick(path: bytes) -> Iterable[str]:
    try:
        with os.scandir(path) as listing:
            for entry in listing:
                yield entry.name.decode("utf-8", "replace")
                return
    except OSError:
        return


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def _name(entry: ViewEntry) -> str:
    tags = "".join(f" #{tag}" for tag in entry.tags)
    return f"{display_name(posixpath.basename(entry.path))}{tags}"


def _kinds(files: list[ViewEntry]) -> str:
    kinds = Counter(posixpath.splitext(entry.path)[1].lower() or "(none)" for entry in files)
    return ", ".join(f"{count} {ext}" for ext, count in kinds.most_common(4))


def workspace_view(entries: list[ViewEntry], today: dt.date, *, budget: int = VIEW_CHARS) -> str:
    """The compact view of ``entries`` as of ``today``: one line per folder with its files' names (and
    tags); past ``FOLDER_FILES`` names, or when the budget runs short, the rest are counted by kind.

    No sizes or days: a plan selects by age and size relative to today ("older than a month" is
    ``30d``) with values from the request, never copied from the view, and the days cost about a
    quarter of a prompt's tokens (this tokenizer spells digits one by one), so training took that
    much longer per step."""
    folders: dict[str, list[ViewEntry]] = defaultdict(list)
    empty: list[str] = []
    for entry in entries:
        if entry.is_dir:
            empty.append(entry.path)
        else:
            folders[posixpath.dirname(entry.path)].append(entry)
    lines = [f"Today: {today.isoformat()}"]
    used = len(lines[0]) + 1
    for folder in sorted(set(folders) | set(empty)):
        files = sorted(folders.get(folder, []), key=lambda entry: entry.path)
        header = f"{display_name(folder)}/" if folder else "./"
        if not files:
            line = f"{header} (empty)"
        else:
            head = f"{header}: "
            names = [_name(entry) for entry in files[:FOLDER_FILES]]
            if len(files) > FOLDER_FILES:
                names.append(f"... {len(files) - FOLDER_FILES} more: {_kinds(files[FOLDER_FILES:])}")
            line = head + ", ".join(names)
            if used + len(line) + 1 > budget:
                line = f"{head}... {_kinds(files)}"
        if used + len(line) + 1 > budget:
            lines.append("... more folders not shown")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def seen_request(request: str) -> str:
    """The request as the model reads it: one line, at most :data:`MAX_REQUEST_CHARS` characters."""
    return " ".join(request.split())[:MAX_REQUEST_CHARS]


def user_message(view: str, request: str) -> str:
    return f"{view}\nRequest: {seen_request(request)}"


def canonical(plan: dict[str, Any]) -> dict[str, Any]:
    """``plan`` with its keys in the order the decoding schema asks for."""

    def ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
        keys = [key for key in order if key in mapping] + [key for key in mapping if key not in order]
        return {key: mapping[key] for key in keys}

    steps = []
    for step in plan.get("steps", []):
        step = ordered(step, STEP_ORDER)
        if isinstance(step.get("match"), dict):
            step["match"] = ordered(step["match"], _match_order())
        if isinstance(step.get("rules"), list):
            step["rules"] = [ordered(rule, RULE_ORDER) if isinstance(rule, dict) else rule for rule in step["rules"]]
        steps.append(step)
    head = {"version": plan.get("version", 1)}
    if "goal" in plan:
        head["goal"] = plan["goal"]
    return {**head, "steps": steps}


def answer_text(plan: dict[str, Any]) -> str:
    """The plan as the model writes it: compact JSON, keys in canonical order, and a goal only when
    there are no steps (then it says why): the steps say what a plan does, and every token the
    model writes costs time and can go wrong."""
    answer = canonical(plan)
    if answer["steps"]:
        answer.pop("goal", None)
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)


@cache
def _match_order() -> tuple[str, ...]:
    return tuple(load_schema("plan")["$defs"]["match"]["properties"])


@cache
def _reply_schema_text() -> str:
    schema = copy.deepcopy(load_schema("plan"))
    schema["$id"] = "https://routeshell.dev/schemas/planner-reply.schema.json"
    schema["title"] = "routeshell planner reply"
    schema["required"] = ["version", "steps"]
    props = schema["properties"]
    props.pop("expanded_from", None)
    props["goal"] = {**props["goal"], "maxLength": MAX_GOAL}
    props["steps"] = {**props["steps"], "minItems": 0, "maxItems": MAX_STEPS}
    defs = schema["$defs"]
    step = defs["step"]
    step["properties"]["op"] = {"enum": list(PLANNER_OPS)}
    step["allOf"] = [rule for rule in step["allOf"] if rule["if"]["properties"]["op"]["const"] in PLANNER_OPS]
    for op in PLANNER_OPS:
        definition = defs[op]
        properties = definition["properties"]
        keys = [key for key in STEP_ORDER if key in properties] + [key for key in properties if key not in STEP_ORDER]
        definition["properties"] = {key: properties[key] for key in keys}
    for name in ("run", "patch"):
        defs.pop(name, None)
    # An edit's precondition: the planner writes a file's content whole, never from what it read.
    defs["write"]["properties"].pop("if_sha256", None)
    # Choosing by meaning needs the embedder's index, which the planner was never taught to use:
    # without it, a match needs its glob.
    for key in ("semantic", "top_k"):
        defs["match"]["properties"].pop(key, None)
    defs["match"]["required"] = ["glob"]
    # An archive is made and read by the suffix of its name.
    archive_name = {**defs["path"], "pattern": ARCHIVE_NAME}
    defs["archive"]["properties"]["to"] = archive_name
    defs["extract"]["properties"]["from"] = archive_name
    # A planner lists a few names, never thousands: short lists keep a looping answer short.
    defs["paths"] = {**defs["paths"], "maxItems": MAX_LISTED}
    defs["tags"] = {**defs["tags"], "maxItems": 8}
    for key in ("ext", "exclude"):
        defs["match"]["properties"][key] = {**defs["match"]["properties"][key], "maxItems": 8}
    rules = defs["classify"]["properties"]["rules"]
    defs["classify"]["properties"]["rules"] = {**rules, "maxItems": 16}
    return json.dumps(schema)


def base_reply_schema() -> dict[str, Any]:
    """:func:`reply_schema` before :func:`one_way`: each op one object, for narrowing its keys."""
    result: dict[str, Any] = json.loads(_reply_schema_text())
    return result


def reply_schema() -> dict[str, Any]:
    """The JSON Schema of a planner reply: a plan of file ops (no ``run``, no ``patch``), keys in
    canonical order, at most :data:`MAX_STEPS` steps, and possibly none; every answer it allows
    passes the plan's own checks too (:func:`one_way`)."""
    return one_way(base_reply_schema())


#: For each op that may name one file or select many: the key that names one (None: it selects only).
SINGLE_KEYS = {"move": "from", "copy": "from", "delete": "path", "tag": "path", "untag": "path", "rename": None,
               "classify": None, "archive": None}  # fmt: skip
#: What a classify rule may select by, in the order a rule lists them.
RULE_CONDITIONS = ("contains", "regex", "ext", "glob")


def _variant(definition: dict[str, Any], drop: Iterable[str], need: Iterable[str]) -> dict[str, Any]:
    dropped = set(drop)
    properties = {key: value for key, value in definition["properties"].items() if key not in dropped}
    required = list(dict.fromkeys([*definition.get("required", []), *need]))
    return {**definition, "properties": properties, "required": required}


def one_way(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, a planner reply schema (narrowed or not), with the plan's checks that JSON Schema
    does not state written into it as alternatives, so that every answer decoded under it is a valid
    plan: a step names one file or selects many (``match``, ``paths``), exactly one of them
    (``keep_tree`` only with a selection); a rename takes a ``template``, or ``find`` with
    ``replace``; a classify rule has a condition or is the default. Changes ``schema`` in place."""
    defs = schema["$defs"]
    rules = defs["classify"]["properties"]["rules"]
    rule = rules["items"]
    conditions = [key for key in RULE_CONDITIONS if key in rule["properties"]]
    variants = [_variant(rule, [*conditions[:at], "default"], [key]) for at, key in enumerate(conditions)]
    default = _variant(rule, conditions, ["default"])
    default["properties"]["default"] = {"const": True}
    rules["items"] = {"anyOf": [*variants, default]}
    for op, single in SINGLE_KEYS.items():
        definition = defs[op]
        ways = [key for key in (single, "match", "paths") if key]
        variants = []
        for way in ways:
            drop = [key for key in ways if key != way] + (["keep_tree"] if way == single else [])
            variant = _variant(definition, drop, [way])
            if op == "rename":
                variants += [_variant(variant, ["find", "replace"], ["template"]),
                             _variant(variant, ["template"], ["find", "replace"])]  # fmt: skip
            else:
                variants.append(variant)
        defs[op] = {"anyOf": variants}
    return schema


def planner_messages(entries: list[ViewEntry], request: str, today: dt.date) -> list[ChatMessage]:
    """The chat messages that ask routeshell's planner model for a plan of ``request`` over a
    workspace of ``entries`` (:func:`entries_from_root`) as of ``today``."""
    view = workspace_view(entries, today)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_message(view, request)}]
