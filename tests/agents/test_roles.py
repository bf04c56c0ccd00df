"""Roles: finding the JSON in a reply, checking it per role, and the repair loop over real HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agents.roles import (
    REPAIR_HEAD_CHARS,
    REPAIR_TAIL_CHARS,
    REPAIRS,
    ROLE_SCHEMAS,
    SYSTEM_PROMPTS,
    RoleFailed,
    ask_role,
    extract_json,
    reply_problems,
    response_format,
)
from agents.session import AgentSession, SessionOptions
from engine.config.profiles import Endpoint, load_profile
from engine.errors import ExitCode
from engine.llm.client import ChatClient, Usage
from engine.plans.journal import journals
from engine.schemas import load_schema, validator
from tests.scripted_llm import Raw, Reply, ScriptedLLM

PLAN: dict[str, Any] = {"version": 1, "goal": "add b", "steps": [{"op": "write", "path": "b.txt", "content": "b\n"}]}
GOOD: dict[str, dict[str, Any]] = {
    "planner": {"steps": ["write b.txt"], "notes": "small"},
    "builder": PLAN,
    "tester": {"version": 1, "steps": [{"op": "run", "argv": ["python3", "-c", "pass"]}]},
    "refactor": {"version": 1, "steps": [{"op": "patch", "path": "a.txt", "find": "a", "replace": "A"}]},
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("a\n")
    return workspace


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '  \n{"a": 1}\n  ',
        'Here is the plan:\n```json\n{"a": 1}\n```\nDone.',
        '```\n{"a": 1}\n```',
        '```JSON\n{"a": 1}\n```',
    ],
)
def test_extract_json_accepts_a_bare_document_or_one_fenced_block(text: str) -> None:
    assert extract_json(text) == ({"a": 1}, None)


def test_extract_json_reads_a_bare_document_whose_strings_hold_fences() -> None:
    document = {"steps": [{"op": "write", "path": "README.md", "content": "```json\n{}\n```\n```\nx\n```\n"}]}
    assert extract_json(json.dumps(document)) == (document, None)


def test_extract_json_accepts_a_list() -> None:
    assert extract_json("[1, 2]") == ([1, 2], None)


def test_extract_json_rejects_two_fenced_blocks() -> None:
    document, problem = extract_json('```json\n{"a": 1}\n```\nor\n```json\n{"a": 2}\n```')
    assert document is None
    assert problem == "the reply has 2 fenced blocks; send exactly one JSON document"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("I will write the file now.", "not valid JSON: Expecting value at line 1 column 1"),
        ('{"a": 1', "not valid JSON"),
        ('{"a": 1} and more', "not valid JSON: Extra data"),
        ("```json\n{oops}\n```", "not valid JSON"),
        ("", "not valid JSON"),
        pytest.param("[" * 100_000, "JSON nested too deeply", id="deep"),
        pytest.param(
            '{"a": 1' + "0" * 4300 + "}", "not valid JSON: a number of more than 4300 digits", id="huge-number"
        ),
        pytest.param('{"a": 1e999}', "not valid JSON: a number too large to hold (1e999)", id="huge-float"),
        pytest.param('{"a": NaN}', "not valid JSON: NaN, which is not a JSON number", id="nan"),
    ],
)
def test_extract_json_says_why_there_is_no_document(text: str, needle: str) -> None:
    document, problem = extract_json(text)
    assert document is None
    assert problem is not None
    assert needle in problem


@pytest.mark.parametrize("role", sorted(ROLE_SCHEMAS))
def test_known_good_replies_have_no_problems(role: str, root: Path) -> None:
    assert reply_problems(role, GOOD[role], root) == []


def test_role_schemas_all_load_and_validate_a_good_document() -> None:
    assert set(ROLE_SCHEMAS) == set(SYSTEM_PROMPTS) == {"planner", "builder", "tester", "refactor"}
    for role, name in ROLE_SCHEMAS.items():
        load_schema(name)
        validator(name).validate(GOOD[role])


@pytest.mark.parametrize(
    ("role", "document", "expected"),
    [
        ("planner", {"steps": []}, "/steps: must have at least 1 items"),
        ("planner", {"steps": ["a"], "why": "x"}, "/why: unknown key"),
        ("planner", PLAN, "/goal: unknown key"),
        ("tester", PLAN, "/steps: must contain at least one 'run' step"),
        ("tester", {"version": 1, "steps": []}, "/steps: must have at least 1 items"),
        ("builder", {"version": 2, "steps": []}, "/steps: must have at least 1 items"),
        ("builder", {"steps": [{"op": "rm", "path": "a.txt"}]}, "/steps/0/op: must be one of"),
    ],
)
def test_schema_problems_name_the_place(role: str, document: Any, expected: str, root: Path) -> None:
    problems = reply_problems(role, document, root)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_refactor_must_not_run_anything(root: Path) -> None:
    document = {"version": 1, "steps": [*GOOD["refactor"]["steps"], {"op": "run", "argv": ["python3", "-c", "1"]}]}
    assert reply_problems("refactor", document, root) == [
        "/steps: a refactor plan must not have run steps; the tests are re-run for it"
    ]
    assert reply_problems("builder", document, root) == []


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b.txt", "/etc/passwd", ".routeshell/x", ".git/config"])
def test_paths_outside_the_workspace_are_problems(path: str, root: Path) -> None:
    document = {"version": 1, "steps": [{"op": "write", "path": path, "content": "x"}]}
    problems = reply_problems("builder", document, root)
    assert problems
    assert problems[0].startswith("/steps/0/path: ")


def test_a_plan_that_would_fail_on_this_workspace_goes_back(root: Path) -> None:
    patch_missing = {"version": 1, "steps": [{"op": "patch", "path": "a.txt", "find": "zzz", "replace": "y"}]}
    assert reply_problems("builder", patch_missing, root) == ["/steps/0: 'a.txt': the text to find does not occur"]
    overwrite = {"version": 1, "steps": [{"op": "write", "path": "a.txt", "content": "x"}]}
    [problem] = reply_problems("builder", overwrite, root)
    assert problem == "/steps/0: 'a.txt' already exists (set \"overwrite\": true to replace it)"
    patch_then_test = [{"op": "patch", "path": "nope.txt", "find": "a", "replace": "b"}, *GOOD["tester"]["steps"]]
    missing_file = {"version": 1, "steps": patch_then_test}
    assert reply_problems("tester", missing_file, root) == ["/steps/0: 'nope.txt' does not exist"]
    # Steps see what earlier steps of the same plan did.
    chained = {"version": 1, "steps": [PLAN["steps"][0], {"op": "patch", "path": "b.txt", "find": "b", "replace": "c"}]}
    assert reply_problems("builder", chained, root) == []


@pytest.mark.parametrize("role", sorted(ROLE_SCHEMAS))
def test_response_format_shape(role: str) -> None:
    shape = response_format(role)
    assert shape["type"] == "json_schema"
    assert set(shape["json_schema"]) == {"name", "schema", "strict"}
    assert shape["json_schema"]["name"] == f"routeshell_{role}"
    assert shape["json_schema"]["strict"] is False
    # The tester's schema refers to the plan schema by file name, which a server cannot resolve:
    # it is sent the plan schema itself and the run-step rule is checked here.
    expected = "plan" if role == "tester" else ROLE_SCHEMAS[role]
    assert shape["json_schema"]["schema"] == load_schema(expected)
    json.dumps(shape)


def client(llm: ScriptedLLM) -> ChatClient:
    return ChatClient(Endpoint(base_url=llm.base_url, model="scripted", api_key=None, timeout_s=5, max_retries=0))


def messages(role: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM_PROMPTS[role]}, {"role": "user", "content": "Task: add b.txt"}]


@pytest.mark.parametrize("stream", [True, False])
def test_ask_role_repairs_a_non_json_then_an_invalid_reply(scripted_llm: ScriptedLLM, root: Path, stream: bool) -> None:
    invalid = {"version": 1, "steps": [{"op": "write", "path": "../b.txt", "content": "b"}]}
    scripted_llm.enqueue(Reply("Sure! I will add the file."), Reply(invalid), Reply(PLAN))
    repairs: list[tuple[int, list[str]]] = []
    usages: list[Usage] = []
    deltas: list[str] = []
    with client(scripted_llm) as chat:
        reply = ask_role(chat, "builder", messages("builder"), root, stream=stream, on_delta=deltas.append,
                         on_repair=lambda n, found: repairs.append((n, found)), on_usage=usages.append)  # fmt: skip
    assert reply.attempts == 3
    assert reply.document == {**PLAN, "steps": [{**PLAN["steps"][0], "overwrite": False}]}
    assert reply.usage == Usage(30, 15)
    assert usages == [Usage(10, 5)] * 3
    assert "".join(deltas).startswith("Sure! I will add the file.")
    assert [n for n, _ in repairs] == [1, 2]
    assert repairs[0][1][0].startswith("/: not valid JSON")
    assert repairs[1][1][0].startswith("/steps/0/path: ")
    requests = scripted_llm.requests
    assert len(requests) == 3
    assert all(r["response_format"] == response_format("builder") for r in requests)
    assert all(bool(r.get("stream")) is stream for r in requests)
    # Each repair sends the whole conversation back with the problems found.
    second, third = requests[1]["messages"], requests[2]["messages"]
    assert second[:2] == messages("builder")
    assert second[2] == {"role": "assistant", "content": "Sure! I will add the file."}
    assert "Your reply was not accepted:\n- /: not valid JSON" in second[3]["content"]
    assert third[:4] == second
    assert third[4] == {"role": "assistant", "content": json.dumps(invalid)}
    assert f"- {repairs[1][1][0]}" in third[5]["content"]
    assert third[5]["content"].endswith("Reply again with only the corrected JSON document.")


def test_ask_role_fails_after_three_invalid_replies(scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply("no"), Reply({"steps": []}), Reply(GOOD["builder"]))
    with client(scripted_llm) as chat, pytest.raises(RoleFailed) as caught:
        ask_role(chat, "tester", messages("tester"), root)
    assert REPAIRS + 1 == 3 == len(scripted_llm.requests)
    assert caught.value.exit_code == ExitCode.FAILED
    assert str(caught.value) == (
        "the tester gave no valid reply after 3 attempts: /steps: must contain at least one 'run' step"
    )
    assert scripted_llm.pending() == 0


def test_ask_role_accepts_one_fenced_block_and_repairs_two(scripted_llm: ScriptedLLM, root: Path) -> None:
    fenced = f"```json\n{json.dumps(GOOD['planner'])}\n```"
    scripted_llm.enqueue(Reply(fenced + "\nand also\n" + fenced), Reply("Steps:\n" + fenced))
    problems: list[list[str]] = []
    with client(scripted_llm) as chat:
        reply = ask_role(chat, "planner", messages("planner"), root, on_repair=lambda n, p: problems.append(p))
    assert (reply.document, reply.attempts) == (GOOD["planner"], 2)
    assert problems == [["/: the reply has 2 fenced blocks; send exactly one JSON document"]]


def test_ask_role_shows_at_most_ten_problems(scripted_llm: ScriptedLLM, root: Path) -> None:
    many = {"version": 1, "steps": [{"op": "write", "path": f"../{n}", "content": ""} for n in range(12)]}
    scripted_llm.enqueue(Reply(many), Reply(PLAN))
    with client(scripted_llm) as chat:
        ask_role(chat, "builder", messages("builder"), root)
    repair = scripted_llm.requests[1]["messages"][-1]["content"]
    assert repair.count("\n- /steps/") == 10
    assert "(and 2 more)" in repair


# -- the same through a session: events, and nothing applied from a role that failed -----------------


def run_session(root: Path, llm: ScriptedLLM, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Run one task with approval ``all`` on the ``ci`` profile pointed at ``llm``; return the final outcome."""
    env = {**os.environ, "LLM_API_BASE": llm.base_url}
    with AgentSession(root, load_profile("ci", env), SessionOptions(approval="all", env=env), events.append) as session:
        return session.start("add b.txt", thread="t").final


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def test_session_reports_repairs(scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply("Let me think."), Reply({"version": 1, "steps": [{"op": "rm"}]}), Reply(PLAN))
    events: list[dict[str, Any]] = []
    final = run_session(root, scripted_llm, events)
    assert final is not None
    assert final["ok"] is True
    [role_end] = of(events, "role_end")
    assert (role_end["role"], role_end["attempts"], role_end["tokens"]) == ("builder", 3, 45)
    repairs = of(events, "repair")
    assert [(r["role"], r["attempt"]) for r in repairs] == [("builder", 1), ("builder", 2)]
    assert repairs[0]["problems"][0].startswith("/: not valid JSON")
    assert repairs[1]["problems"][0].startswith("/steps/0/op: must be one of")
    assert repairs[1]["problems"][0] in scripted_llm.requests[2]["messages"][-1]["content"]
    assert [u["run_total"] for u in of(events, "usage")] == [15, 30, 45]
    assert (root / "b.txt").read_text() == "b\n"


def test_session_applies_nothing_when_the_role_fails(scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply("no"), Reply("still no"), Reply(f"```json\n{json.dumps(PLAN)}\n```\n```json\n{{}}\n```"))
    events: list[dict[str, Any]] = []
    with pytest.raises(RoleFailed) as caught:
        run_session(root, scripted_llm, events)
    assert caught.value.exit_code == ExitCode.FAILED
    assert "the builder gave no valid reply after 3 attempts: /: the reply has 2 fenced blocks" in str(caught.value)
    assert of(events, "error") == [{"type": "error", "message": str(caught.value), "exit_code": 1, "thread": "t"}]
    assert not of(events, "plan")
    assert not (root / "b.txt").exists()
    assert journals(root) == []


def test_session_accepts_a_fenced_reply(scripted_llm: ScriptedLLM, root: Path) -> None:
    scripted_llm.enqueue(Reply(f"Here you go:\n```json\n{json.dumps(PLAN, indent=2)}\n```\n"))
    events: list[dict[str, Any]] = []
    final = run_session(root, scripted_llm, events)
    assert final is not None
    assert final["ok"] is True
    assert of(events, "role_end")[0]["attempts"] == 1
    assert (root / "b.txt").read_text() == "b\n"


# -- hostile replies: not UTF-8, too big ----------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_reply_with_half_an_emoji_goes_back_for_repair(scripted_llm: ScriptedLLM, root: Path, stream: bool) -> None:
    half = json.dumps({**PLAN, "goal": "add b \x00"}).encode().replace(b"\\u0000", "😀".encode()[:2])
    if stream:
        event = b'data: {"choices": [{"delta": {"content": ' + json.dumps(half.decode("latin-1")).encode() + b"}}]}"
        event = event.replace(b"\\u00f0\\u009f", "😀".encode()[:2])
        bad = Raw(event + b"\n\ndata: [DONE]\n\n", content_type="text/event-stream", chunked=True)
    else:
        bad = Raw(b'{"choices": [{"message": {"content": "' + half.replace(b'"', b'\\"') + b'"}}]}')
    scripted_llm.enqueue(bad, Reply(PLAN))
    problems: list[list[str]] = []
    with client(scripted_llm) as chat:
        reply = ask_role(chat, "builder", messages("builder"), root, stream=stream,
                         on_repair=lambda n, found: problems.append(found))  # fmt: skip
    assert reply.attempts == 2
    assert problems == [["/: the reply is not valid UTF-8 (bytes or half a character that were replaced by U+FFFD)"]]
    sent_back = scripted_llm.requests[1]["messages"][2]["content"]
    assert sent_back.startswith('{"version": 1, "goal": "add b \ufffd')


def test_a_reply_over_the_size_limit_goes_back_and_only_an_excerpt_is_returned(
    scripted_llm: ScriptedLLM, root: Path
) -> None:
    endpoint = Endpoint(base_url=scripted_llm.base_url, model="scripted", api_key=None, timeout_s=5, max_retries=0,
                        max_reply_bytes=100_000)  # fmt: skip
    scripted_llm.enqueue(Reply("A" * 90_000 + "Z" * 30_000), Reply("B" * 50_000), Reply(PLAN))
    problems: list[list[str]] = []
    with ChatClient(endpoint) as chat:
        reply = ask_role(chat, "builder", messages("builder"), root, on_repair=lambda n, p: problems.append(p))
    assert reply.attempts == 3
    assert problems[0][0].startswith("/: the reply was cut off at 100000 bytes")
    assert problems[1][0].startswith("/: not valid JSON")
    first, second = (scripted_llm.requests[n]["messages"][2 + 2 * (n - 1)]["content"] for n in (1, 2))
    assert first.startswith("A" * REPAIR_HEAD_CHARS + "\n[... ")
    assert "Z" not in first
    assert second == "B" * REPAIR_HEAD_CHARS + "\n[... 46000 characters left out ...]\n" + "B" * REPAIR_TAIL_CHARS
    assert len(json.dumps(scripted_llm.requests[2])) < 40_000


def test_problems_quoting_the_reply_are_escaped(scripted_llm: ScriptedLLM, root: Path) -> None:
    hostile = {"version": 1, "steps": [{"op": "write", "path": "a", "content": "", "k\x1b]0;x\x07": 1}]}
    scripted_llm.enqueue(*[Reply(hostile)] * 3)
    with client(scripted_llm) as chat, pytest.raises(RoleFailed) as caught:
        ask_role(chat, "builder", messages("builder"), root)
    assert str(caught.value).endswith("/steps/0/k\\x1b]0;x\\x07: unknown key")
    assert reply_problems("planner", {"steps": ["x"], "\x1b[2J": 1}, root) == ["/\\x1b[2J: unknown key"]
