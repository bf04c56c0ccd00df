from __future__ import annotations

import pytest

from engine.config.interpolate import InterpolationError, Unset, expand


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-y", {"A": "1"}, "x-1-y"),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-${B:-deep}}", {}, "deep"),
        ("${A:-${B}}", {"B": "b"}, "b"),
        ("${A:-${B}}", {"A": "a"}, "a"),
        ("cost $$5", {}, "cost $5"),
        ("lone $ sign", {}, "lone $ sign"),
        ("${A:-}", {}, ""),
    ],
)
def test_expand(text: str, env: dict[str, str], expected: str) -> None:
    assert expand(text, env) == expected


def test_unset_names_every_variable_tried() -> None:
    with pytest.raises(Unset) as info:
        expand("${OPENAI_API_KEY:-${LLM_API_KEY}}", {})
    assert info.value.name == "OPENAI_API_KEY/LLM_API_KEY"


@pytest.mark.parametrize("text", ["${A", "${1A}", "${A-x}", "${A:-${B}"])
def test_bad_syntax(text: str) -> None:
    with pytest.raises(InterpolationError):
        expand(text, {"A": "1", "B": "2"})


def test_defaults_nested_past_the_bound_are_one_error_not_a_recursion() -> None:
    deep = "${A:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(InterpolationError, match=r"'\$\{' nested more than 32 deep"):
        expand(deep, {})
    assert expand("${A:-" * 32 + "x" + "}" * 32, {}) == "x"
    assert expand("$${" * 100, {}) == "${" * 100  # literal dollars open nothing
