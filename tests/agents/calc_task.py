"""A scripted calculator task for the agent tests: the workspace, the model's replies, and helpers.

The workspace holds ``calc.py`` with a wrong ``add``; ``FIX`` patches it and ``TESTS`` writes and
runs a test of it. Helpers read the events and the requests the scripted model received.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agents.roles import ROLE_SCHEMAS
from agents.session import Outcome
from engine.config.profiles import Endpoint
from engine.llm.client import ChatClient
from engine.plans.journal import journals
from tests.scripted_llm import ScriptedLLM

Event = dict[str, Any]

CALC = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
# -B: no bytecode, so a file restored by undo (same size, same second) is never shadowed by a stale .pyc.
TEST_RUN = ["python3", "-B", "test_calc.py"]
TEST_CODE = 'from calc import add\n\nresult = add(2, 3)\nassert result == 5, f"add(2, 3) returned {result}"\n'


def patch(find: str, replace: str, path: str = "calc.py") -> dict[str, Any]:
    return {"version": 1, "goal": f"{find} -> {replace}", "steps": [{"op": "patch", "path": path, "find": find,
                                                                      "replace": replace}]}  # fmt: skip


FIX = patch("a - b", "a + b")
TESTS: dict[str, Any] = {"version": 1, "goal": "test add", "steps": [
    {"op": "write", "path": "test_calc.py", "content": TEST_CODE, "overwrite": True},
    {"op": "run", "argv": TEST_RUN, "timeout_s": 30},
]}  # fmt: skip


def chat_clients(llm: ScriptedLLM, **endpoint: Any) -> dict[str, ChatClient]:
    """One client for every role; ``sleep`` (if given) replaces the backoff sleep."""
    sleep = endpoint.pop("sleep", time.sleep)
    settings = {"timeout_s": 10.0, "max_retries": 0, **endpoint}
    client = ChatClient(Endpoint(base_url=llm.base_url, model="scripted", api_key=None, **settings), sleep=sleep)
    return dict.fromkeys(ROLE_SCHEMAS, client)


def of(events: list[Event], kind: str) -> list[Event]:
    return [event for event in events if event["type"] == kind]


def role_requests(llm: ScriptedLLM, role: str) -> list[dict[str, Any]]:
    return [r for r in llm.requests if r["messages"][0]["content"].startswith(f"You are the {role}")]


def finished_ok(outcome: Outcome) -> dict[str, Any]:
    """The run finished and its final event says ok; return that final outcome."""
    assert outcome.status == "done"
    assert outcome.final is not None
    assert outcome.final["ok"] is True
    return outcome.final


def journal_count(root: Path) -> int:
    return len(journals(root))
