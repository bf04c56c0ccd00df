"""The four roles: what each is asked, which schema its reply must satisfy, and the repair loop.

A role's reply is one JSON document, bare or in one fenced block. A reply that does not parse, or
does not validate against the role's schema (and, for plans, the sandbox path rules and a dry run
against the workspace), is sent back with the problems at most ``REPAIRS`` times; after that the
role fails. No unvalidated plan ever leaves this module.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config.profiles import ContextPolicy
from engine.errors import RouteshellError
from engine.jsonl import NumberTooLong, decode_error_reason, parse_json
from engine.kinds import Role
from engine.llm.client import ChatClient, ChatReply, EndpointError, Usage
from engine.llm.wire import ChatMessage, ResponseFormat
from engine.names import display_line, display_name
from engine.planner.effect import repetitions, without_repeated_steps
from engine.planner.effect import reply_problems as planner_reply_problems
from engine.planner.guided import dry_run_problems, guided_schema, refused_values, unrepeated_schema
from engine.planner.parts import with_parents
from engine.planner.prompt import PLANNER_GUIDED_RETRIES, PLANNER_RETRIES, PLANNER_RETRY_TEMPERATURE
from engine.plans.dry_run import preview_plan
from engine.plans.expand import expand_plan
from engine.plans.model import BUILDER_PROMPT, PLAN_RULES, InvalidPlan, normalise, plan_problems
from engine.plans.policy import Policy
from engine.schemas import describe_error, load_schema, pointer, validator
from engine.workspace.sandbox import SandboxError, Workspace
from engine.workspace.tools import glob

#: Repairs of an invalid reply. routeshell's own planner (``planner_schema``) is instead asked
#: again from the same prompt, sampled, at most ``PLANNER_RETRIES`` times
#: (:data:`engine.planner.prompt.PLANNER_RETRY_TEMPERATURE`), as ``eval planner``'s ``agent`` does.
REPAIRS = 2
MAX_PROBLEMS_SHOWN = 10
#: How much of an invalid reply is sent back with a repair request: its head and its tail.
REPAIR_HEAD_CHARS = 3000
REPAIR_TAIL_CHARS = 1000
CONTEXT_FILES = 200
CONTEXT_CHARS = 24_000

#: The schema each role's reply must validate against (``engine/schemas/<name>.schema.json``).
ROLE_SCHEMAS: dict[Role, str] = {"planner": "planner", "builder": "plan", "tester": "tester", "refactor": "plan"}


SYSTEM_PROMPTS: dict[Role, str] = {
    "planner": """You are the planner of a coding agent working in a workspace directory.
Break the task into a short ordered list of concrete steps for the builder, who edits the files.
The builder changes many files in one step by a pattern (move, copy, delete, rename, classify,
tag, archive or extract every file a glob and filters select), so a step names a kind of file,
for example "move every .log file older than 30 days into archive/", never each file in turn.
Reply with one JSON document and nothing else: {"steps": ["step", ...], "notes": "optional"}.""",
    "builder": BUILDER_PROMPT,
    "tester": f"""You are the tester of a coding agent working in a workspace directory.
Write tests for the task (or reuse the existing ones) and run them, by emitting a plan that writes
the test files and ends with at least one run step, for example
{{"op": "run", "argv": ["python", "-m", "pytest", "-q"]}}. The exit code of the run steps decides
whether the tests pass. Do not change the code under test.
{PLAN_RULES}""",
    "refactor": f"""You are the refactoring role of a coding agent working in a workspace directory.
Improve the structure and readability of the code the builder changed without changing its
behaviour: the tests are run again afterwards, and a refactor that breaks them is undone.
Do not add run steps.
{PLAN_RULES}""",
}


class RoleFailed(RouteshellError):
    """A role gave no valid reply after the repairs (exit code 1)."""


@dataclass(frozen=True)
class RoleReply:
    """A validated reply: the document (a normalised plan for plan roles) and what it cost."""

    document: dict[str, Any]
    usage: Usage
    attempts: int
    #: routeshell's own planner: the log probability it gives its answer, under the grammar it was
    #: decoded with (None when the server sent none).
    logprob: float | None = None


def extract_json(text: str) -> tuple[Any, str | None]:
    """Return the JSON document in a reply and ``None``, or ``None`` and the reason it has none.

    The reply must be the document alone, or contain exactly one fenced block holding it.
    """
    stripped = text.strip()
    fences = re.findall(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", stripped, re.S)
    if not stripped.startswith(("{", "[")) and fences:
        if len(fences) > 1:
            return None, f"the reply has {len(fences)} fenced blocks; send exactly one JSON document"
        stripped = fences[0].strip()
    try:
        return parse_json(stripped), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {decode_error_reason(exc)} at line {exc.lineno} column {exc.colno}"
    except NumberTooLong as exc:
        return None, f"not valid JSON: {exc}"
    except RecursionError:
        return None, "JSON nested too deeply"


def reply_problems(
    role: Role, document: Any, root: Path, policy: Policy | None = None, *, warn: Callable[[str], None] | None = None
) -> list[str]:
    """Return every reason ``document`` is not an acceptable reply from ``role`` (empty when it is).

    A problem may quote the reply (an unknown key, a path): its control characters are escaped,
    since problems reach the terminal in repair events and in the error that ends the role.
    ``warn`` gets what expanding a plan's selections warns of (a file index it could not use).
    """
    return [display_line(problem) for problem in _reply_problems(role, document, root, policy, warn)]


def _reply_problems(
    role: Role, document: Any, root: Path, policy: Policy | None, warn: Callable[[str], None] | None
) -> list[str]:
    schema = ROLE_SCHEMAS[role]
    if schema == "planner":
        errors = sorted(validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
        return [f"{pointer(path)}: {reason}" for path, reason in map(describe_error, errors)]
    problems = [str(problem) for problem in plan_problems(document)]
    if schema == "tester" and not problems:
        errors = validator(schema).iter_errors(document)
        problems = [f"{pointer(path)}: {reason}" for path, reason in map(describe_error, errors)]
    if role == "refactor" and not problems and any(step["op"] == "run" for step in document["steps"]):
        problems.append("/steps: a refactor plan must not have run steps; the tests are re-run for it")
    if problems:
        return problems
    # Valid in itself: now check it against the workspace as it is, so that a plan that would fail
    # (patching text that is not there, writing over a file without overwrite) goes back for repair.
    try:
        previews = preview_plan(root, expand_plan(root, normalise(document), policy, warn=warn), policy)
    except InvalidPlan as exc:
        return [str(problem) for problem in exc.problems]
    except SandboxError as exc:
        return [f"/: {exc}"]
    return [f"/steps/{p.index}: {p.problem}" for p in previews if p.problem]


def response_format(role: Role) -> ResponseFormat:
    """Return the OpenAI ``response_format`` asking for a reply that fits ``role``'s schema."""
    name = ROLE_SCHEMAS[role]
    schema = load_schema("plan" if name == "tester" else name)
    return {"type": "json_schema", "json_schema": {"name": f"routeshell_{role}", "schema": schema, "strict": False}}


def planner_response_format(schema: dict[str, Any]) -> ResponseFormat:
    """The ``response_format`` of routeshell's own planner model: ``schema``, a planner reply schema."""
    return {"type": "json_schema", "json_schema": {"name": "routeshell_plan", "schema": schema, "strict": True}}


def reply_excerpt(content: str) -> str:
    """Return ``content`` as sent back in a repair request: whole when short, else its head and tail.

    A model that answered with megabytes must not have them all sent back to it on every repair.
    """
    if len(content) <= REPAIR_HEAD_CHARS + REPAIR_TAIL_CHARS:
        return content
    left_out = len(content) - REPAIR_HEAD_CHARS - REPAIR_TAIL_CHARS
    return f"{content[:REPAIR_HEAD_CHARS]}\n[... {left_out} characters left out ...]\n{content[-REPAIR_TAIL_CHARS:]}"


def ask_role(
    client: ChatClient,
    role: Role,
    messages: list[ChatMessage],
    root: Path,
    *,
    on_delta: Callable[[str], None] | None = None,
    on_repair: Callable[[int, list[str]], None] | None = None,
    on_usage: Callable[[Usage], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_saw: Callable[[str, os.stat_result], None] | None = None,
    stream: bool = True,
    policy: Policy | None = None,
    planner_schema: dict[str, Any] | None = None,
    planner_folders: set[str] | None = None,
) -> RoleReply:
    """Ask ``role`` and return its validated reply, repairing an invalid one at most ``REPAIRS`` times.

    ``messages`` are the system and user messages; the conversation grows with each repair.
    ``on_usage`` sees each call's usage as it happens (so budgets are checked between repairs).
    A plan that selects files comes back expanded, one step per file, checked against ``policy``;
    ``on_warning`` gets what each expansion warns of (a file index it could not use as it is);
    ``on_saw`` what the selections of the plan returned found, path and ``lstat``, before they read
    it (:func:`engine.plans.expand.expand_plan`'s ``saw``), for its preview to compare with.
    ``planner_schema``: the role is routeshell's own planner, whose reply is decoded under this
    schema (the planner reply schema, narrowed to the task): a file plan, or no steps at all when
    the task is not one for file operations. An answer the dry run refuses because a step selects
    nothing, or that does a step twice, is asked again greedily under the schema without the choice
    at fault, at most ``PLANNER_GUIDED_RETRIES`` times (:mod:`engine.planner.guided`); its retries
    resend the same messages, sampled (see :data:`PLANNER_RETRY_TEMPERATURE`). With
    ``planner_folders`` (the workspace's folders), each answer first gets a ``mkdir`` of a folder it
    writes into that is not there (:func:`engine.planner.parts.with_parents`).
    Raises :class:`RoleFailed` when no valid reply came, and ``EndpointError`` from the client.
    """
    conversation = list(messages)
    total = Usage()
    problems: list[str] = []
    files_planner = planner_schema is not None
    kept: tuple[Any, int, float | None] | None = None  # a planner's answer that is valid but repeats itself
    wanted = planner_response_format(planner_schema) if planner_schema is not None else response_format(role)
    repairs = PLANNER_RETRIES if files_planner else REPAIRS
    guides = PLANNER_GUIDED_RETRIES if files_planner else 0
    attempt = asked = 0  # (a guided ask is not one of the repairs)
    guided = False
    unguided: tuple[dict[str, Any] | None, ResponseFormat] | None = None  # the schema before a guided ask
    while attempt <= repairs:
        attempt += 1
        asked += 1
        temperature = (0.0 if attempt == 1 or guided else PLANNER_RETRY_TEMPERATURE) if files_planner else None
        guided = False
        try:
            reply: ChatReply = client.chat(
                conversation,
                response_format=wanted,
                stream=stream,
                on_delta=on_delta,
                temperature=temperature,
                logprobs="processed" if files_planner else None,
            )
        except EndpointError:
            if unguided is not None:
                # A server that refuses the narrower schema is asked again as before, sampled.
                (planner_schema, wanted), unguided, guides = unguided, None, 0
                continue
            if kept is None:
                raise
            break  # a retry that cannot be asked does not lose the plan at hand
        unguided = None
        total = total + reply.usage
        if on_usage is not None:
            on_usage(reply.usage)
        # A reply cut off at the size limit or not valid UTF-8 goes back like any invalid one.
        document: Any
        document, parse_problem = extract_json(reply.content) if reply.defect is None else (None, reply.defect)
        if not parse_problem and planner_folders is not None:
            document = with_parents(document, planner_folders)
        if parse_problem:
            problems = [f"/: {parse_problem}"]
        elif files_planner and isinstance(document, dict) and document.get("steps") == []:
            problems = [display_line(problem) for problem in planner_reply_problems(document)]
            if not problems:
                return RoleReply(document, total, asked, reply.logprob)
        else:
            problems = reply_problems(role, document, root, policy, warn=on_warning)
            if files_planner and not problems:
                # (An endpoint that ignores the schema may answer ops no planner gives: a command to run.)
                problems = [display_line(problem) for problem in planner_reply_problems(document)]
        # Invalid because it did a step twice ("delete a.txt" twice: the second finds nothing): ask
        # again, and keep it done once should no retry do better.
        once = without_repeated_steps(document) if problems and files_planner and kept is None else document
        if once is not document and not reply_problems(role, once, root, policy, warn=on_warning):
            kept = (once, asked, reply.logprob)
        if not problems and files_planner and (repeated := repetitions(document)):
            # Valid, but it went round in circles: ask again, and keep the first such answer should
            # no retry do better.
            kept = kept or (document, asked, reply.logprob)
            problems = [display_line(problem) for problem in repeated[:MAX_PROBLEMS_SHOWN]]
        elif not problems:
            result = (
                document if ROLE_SCHEMAS[role] == "planner" else _expanded(root, document, policy, on_warning, on_saw)
            )
            return RoleReply(result, total, asked, reply.logprob if files_planner else None)
        if guides and planner_schema is not None and not parse_problem and isinstance(document, dict):
            # Refused by the dry run, or a step done twice: ask again, greedily, without the choice at fault.
            found = dry_run_problems(root, document, policy=policy)
            narrower = guided_schema(planner_schema, refused_values(root, document, found, policy=policy))
            narrower = narrower or unrepeated_schema(planner_schema, document)
            if narrower is not None and narrower != planner_schema:
                guides -= 1
                unguided = (planner_schema, wanted)
                planner_schema, wanted = narrower, planner_response_format(narrower)
                attempt, guided = attempt - 1, True
                if on_repair is not None:
                    on_repair(asked, problems)
                continue
        if attempt > repairs:
            break
        if on_repair is not None:
            on_repair(asked, problems)
        if files_planner:
            continue
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"\n(and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        conversation += [
            {"role": "assistant", "content": reply_excerpt(reply.content)},
            {
                "role": "user",
                "content": "Your reply was not accepted:\n"
                + "\n".join(f"- {p}" for p in shown)
                + more
                + "\nReply again with only the corrected JSON document.",
            },
        ]
    if kept is not None:
        return RoleReply(_expanded(root, kept[0], policy, on_warning, on_saw), total, kept[1], kept[2])
    raise RoleFailed(
        f"the {role} gave no valid reply after {asked} attempts: {problems[0]}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    )


def _expanded(
    root: Path, document: Any, policy: Policy | None, warn: Callable[[str], None] | None,
    saw: Callable[[str, os.stat_result], None] | None,
) -> Any:  # fmt: skip
    try:
        return expand_plan(root, normalise(document), policy, warn=warn, saw=saw)
    except InvalidPlan as exc:  # the workspace changed since the check: the review's dry run says so
        raise RoleFailed(f"the plan could not be expanded: {exc}") from None


def workspace_context(root: Path, task: str, extra: str = "", policy: ContextPolicy | None = None) -> str:
    """Describe the workspace for a role: its files, and the text of the files the task names.

    Bounded by ``CONTEXT_FILES`` paths and ``CONTEXT_CHARS`` characters of file text, so a large
    workspace cannot flood the prompt. Files named in ``task`` or ``extra`` come first. ``policy``
    (the profile's ``[context]``) withholds the text of secret-looking paths, of files over its
    size limit and of binary files: they are listed with the reason, their contents never sent.
    Names are shown escaped (:func:`engine.names.display_name`), so a name that is not UTF-8
    or holds control characters reaches the model as plain, encodable text.
    """
    policy = policy or ContextPolicy()
    with Workspace(root) as ws:
        listing = glob(ws, "**", limit=CONTEXT_FILES * 5)
        paths = [path for path in listing["matches"] if _worth_showing(ws, path)][:CONTEXT_FILES]
        mentioned = [path for path in paths if path in task or path in extra or Path(path).name in task]
        chosen = mentioned + [path for path in paths if path not in mentioned]
        texts: dict[str, str] = {}
        withheld: dict[str, str] = {}
        budget = CONTEXT_CHARS
        for path in chosen:
            text, reason = _context_text(ws, path, policy)
            if reason is not None:
                withheld[path] = reason
            elif text is not None and len(text) <= budget:
                budget -= len(text)
                texts[path] = text
    parts = ["Files in the workspace:" if paths else "The workspace is empty."]
    parts += [f"  {display_name(path)}" + (f"  ({withheld[path]})" if path in withheld else "") for path in paths]
    if listing["truncated"] or len(paths) == CONTEXT_FILES:
        parts.append(f"  (only the first {CONTEXT_FILES} are listed)")
    parts += [f"\n--- {display_name(path)} ---\n{text}" for path, text in texts.items()]
    return "\n".join(parts)


def _context_text(ws: Workspace, path: str, policy: ContextPolicy) -> tuple[str | None, str | None]:
    """Return (the text a role may see, None), or (None, why it is withheld); (None, None) if unreadable."""
    if policy.withholds(path):
        return None, "contents withheld: the profile's context.never_send"
    if path != display_name(path):
        # A plan cannot name it as shown, and its text would be read under a name the model never sees.
        return None, "name shown escaped; contents not sent"
    info = ws.lstat(path)
    if info is None or not stat.S_ISREG(info.st_mode):
        return None, None
    if info.st_size > policy.max_file_bytes:
        return None, f"{info.st_size} bytes, over the context.max_file_bytes limit of {policy.max_file_bytes}"
    try:
        data = ws.read_bytes(path, limit=policy.max_file_bytes + 1)
    except SandboxError:
        return None, None
    if len(data) > policy.max_file_bytes:
        return None, f"over the context.max_file_bytes limit of {policy.max_file_bytes}"
    if b"\0" in data[:8192]:
        return None, "binary, not shown"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text, not shown"


def _worth_showing(ws: Workspace, path: str) -> bool:
    # Regular files outside hidden directories and caches: what a role may want to read or change.
    if any(part.startswith(".") or part == "__pycache__" for part in path.split("/")):
        return False
    info = ws.lstat(path)
    return info is not None and stat.S_ISREG(info.st_mode)
