"""The built-in SFT sets: HumanEval-shaped stdlib pairs, valid plans, and word problems that add up."""

from __future__ import annotations

import ast
import json
import re
from fractions import Fraction

import pytest

from engine.plans.model import parse_plan, plan_problems
from engine.plans.op_table import OPS
from engine.tinyllm.builtin_sets import (
    PLAN_SYSTEM_PROMPT,
    default_sft_conversations,
    plan_examples,
    reasoning_problems,
    stdlib_function_pairs,
)
from engine.tinyllm.sft_data import Markers, ReasoningRow, row_problem


def test_stdlib_pairs_are_humaneval_prompts_and_their_bodies() -> None:
    pairs = stdlib_function_pairs(limit=60)
    assert len(pairs) == 60
    assert stdlib_function_pairs(limit=60) == pairs
    full = stdlib_function_pairs()
    assert len(full) > 300
    assert all(pair in full for pair in pairs)
    for user, assistant in pairs:
        prompt, body = user["content"], assistant["content"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert prompt.startswith(("def ", "async def "))
        function = ast.parse(prompt + body).body[0]
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        assert not function.name.startswith("_")
        assert ast.get_docstring(function)
        # The prompt is the signature and the docstring alone; the body holds the rest.
        prompt_only = ast.parse(prompt + "    ...\n").body[0]
        assert isinstance(prompt_only, (ast.FunctionDef, ast.AsyncFunctionDef))
        assert len(prompt_only.body) == 2
        assert isinstance(prompt_only.body[0], ast.Expr)
        assert body.startswith((" ", "\t"))
        assert body.split("\n", 1)[0].strip()
        compile(prompt + body, "<pair>", "exec")


def test_plan_examples_validate_and_cover_every_op() -> None:
    examples = plan_examples()
    assert len(examples) >= 24
    ops_seen: set[str] = set()
    for system, user, assistant in examples:
        assert system == {"role": "system", "content": PLAN_SYSTEM_PROMPT}
        assert user["role"] == "user"
        assert user["content"]
        document = json.loads(assistant["content"])
        assert plan_problems(document) == []
        parse_plan(assistant["content"], "example")
        ops_seen |= {step["op"] for step in document["steps"]}
    assert ops_seen == set(OPS)
    assert len({user["content"] for _, user, _ in examples}) == len(examples)
    for op in OPS.values():
        assert op.usage in PLAN_SYSTEM_PROMPT
    # The examples teach exactly the prompt the builder role is given.
    from agents.roles import SYSTEM_PROMPTS

    assert SYSTEM_PROMPTS["builder"] == PLAN_SYSTEM_PROMPT


def test_default_sft_set_is_pairs_then_plans() -> None:
    conversations = default_sft_conversations()
    assert conversations == stdlib_function_pairs() + plan_examples()


def _numbers(text: str) -> list[Fraction]:
    return [Fraction(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


def _expected(row: ReasoningRow) -> Fraction:
    """The answer of a problem worked out here from the question's numbers, without the calculator."""
    question = row["user"]
    n = _numbers(question)
    if "change" in question or "找回" in question:
        price, quantity, paid = n
        return paid - price * quantity
    if "in total" in question or "一共要付" in question:
        p1, p2, n1, n2 = n
        return p1 * n1 + p2 * n2
    if "km/h for" in question or "行驶了" in question:
        speed, hours, minutes = n
        return speed * (hours + minutes / 60)
    if "average speed" in question:
        distance, hours = n
        return distance / hours
    if "平均每小时" in question:
        hours, distance = n
        return distance / hours
    if "How many metres" in question or "等于多少米" in question:
        km, metres = n
        return km * 1000 + metres
    if "How many kilometres" in question or "是多少千米" in question:
        (metres,) = n
        return metres / 1000
    if "How many minutes" in question or "是多少分钟" in question:
        hours, minutes = n
        return hours * 60 + minutes
    if "% off" in question or "打折" in question:
        price, off = n
        return price * (100 - off) / 100
    raise AssertionError(f"a kind of problem this test does not know: {question}")


@pytest.mark.parametrize("markers", ["zh", "en"])
def test_reasoning_finals_are_right(markers: Markers) -> None:
    rows = reasoning_problems(120, seed=7, markers=markers)
    assert len(rows) == 120
    assert len({row["user"] for row in rows}) == 120
    kinds_seen = set()
    for row in rows:
        assert row_problem(dict(row)) is None
        value, unit = row["final"].split(" ", 1)
        assert Fraction(value) == _expected(row), row
        assert unit
        assert value in row["cot"]  # the last step shows the answer it gives
        if markers == "zh":
            sentences = row["cot"].count("。")
            assert re.search(r"[\u4e00-\u9fff]", row["user"])
        else:
            sentences = len(re.split(r"(?<=[.?])\s+", row["cot"].strip()))
            assert row["user"].isascii()
        assert 3 <= sentences <= 8, row["cot"]
        kinds_seen.add(re.sub(r"[\d.]+", "N", row["user"])[:12])
    assert len(kinds_seen) >= 8


def test_reasoning_problems_are_deterministic_per_seed() -> None:
    assert reasoning_problems(30, seed=1) == reasoning_problems(30, seed=1)
    assert reasoning_problems(30, seed=1) != reasoning_problems(30, seed=2)
    assert reasoning_problems(0) == []
