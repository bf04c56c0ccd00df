"""A test set on disk and scripted model and judge servers that answer by what they are asked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from engine.config.profiles import Endpoint
from engine.evaluation.judge import JudgeOptions
from tests.scripted_llm import Reply, Respond, ScriptedLLM, Step

#: One row of each shape the reader takes; the reference answers are A1..A4.
ROWS: list[dict[str, Any]] = [
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "A1"}]},
    {"instruction": "Q2", "input": "", "output": "A2"},
    {"system": "S", "user": "Q3", "assistant": "A3"},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                  {"role": "user", "content": "Q4"}, {"role": "assistant", "content": "A4"}]},
]  # fmt: skip


def scores(value: int, reason: str = "fine") -> dict[str, Any]:
    """A valid judge reply giving ``value`` on every criterion."""
    return {"accuracy": value, "completeness": value, "fluency": value, "professionalism": value,
            "overall": value, "reason": reason}  # fmt: skip


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def question(body: dict[str, Any]) -> str:
    """The last user turn of a request to the model under test."""
    return str(body["messages"][-1]["content"])


def candidate(body: dict[str, Any]) -> str:
    """The answer a request to the judge asks about."""
    found = re.search(r"<candidate_answer>\n(.*)\n</candidate_answer>", body["messages"][1]["content"], re.DOTALL)
    assert found, body
    return found.group(1)


def answering(times: int) -> list[Step]:
    """Steps of a model that answers "answer to Qn" to the question Qn."""
    return [Respond(lambda body: Reply(f"answer to {question(body)}")) for _ in range(times)]


def judging(times: int, by_answer: dict[str, Any]) -> list[Step]:
    """Steps of a judge that replies ``by_answer[candidate]`` (a dict is sent as JSON)."""
    return [Respond(lambda body: Reply(by_answer[candidate(body)])) for _ in range(times)]


def chat_requests(server: ScriptedLLM) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["_path"].endswith("/chat/completions")]


def options(data: Path, model: ScriptedLLM, judge: ScriptedLLM, out: Path, **extra: Any) -> JudgeOptions:
    """Evaluation options against two scripted servers, with few retries to keep failures quick."""
    return JudgeOptions(
        data=(data,),
        model=Endpoint(base_url=model.base_url, model="tiny", api_key=None, timeout_s=10, max_retries=1),
        judge=Endpoint(base_url=judge.base_url, model="judge", api_key=None, timeout_s=10, max_retries=1),
        out=out,
        **extra,
    )
