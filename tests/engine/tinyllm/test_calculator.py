"""The calculator: exact arithmetic, and nothing but arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest

from engine.tinyllm.calculator import CalculatorError, evaluate, find_arithmetic, format_number


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", Fraction(7)),
        ("(1 + 2) * 3", Fraction(9)),
        ("0.1 + 0.2", Fraction(3, 10)),
        ("7 / 2", Fraction(7, 2)),
        ("7 // 2", Fraction(3)),
        ("7 % 3", Fraction(1)),
        ("-3 ** 2", Fraction(-9)),
        ("2 ** -2", Fraction(1, 4)),
        ("12 × 3 ÷ 4 − 1", Fraction(8)),
        ("（2 + 3）× 4", Fraction(20)),
        ("+5", Fraction(5)),
    ],
)
def test_arithmetic_is_exact(expression: str, value: Fraction) -> None:
    assert evaluate(expression) == value
    assert isinstance(evaluate(expression), Fraction)


def test_a_fractional_power_is_a_float() -> None:
    assert evaluate("2 ** 0.5") == pytest.approx(1.41421356)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "x + 1",
        "abs(-1)",
        "(1).real",
        "'a' * 3",
        "[1] * 3",
        "True + 1",
        "1 if 1 else 2",
        "lambda: 1",
        "1 < 2",
        "1 & 3",
        "2 ^ 3",
        "1j",
        "9**9**9",
        "10 ** 100000",
        "2 ** 2 ** 2 ** 2 ** 2",
        "1e400",
        "1 / 0",
        "1 // 0",
        "5 % 0",
        "0 ** -1",
        "(-8) ** (1 / 3)",
        "(" * 240 + "1" + ")" * 240,
        "1 +" * 300 + "1",
        "",
        "1 +",
        "1; 2",
    ],
)
def test_anything_else_is_refused(expression: str) -> None:
    with pytest.raises(CalculatorError):
        evaluate(expression)


def test_results_too_large_are_refused_before_they_are_computed() -> None:
    with pytest.raises(CalculatorError, match="too large"):
        evaluate("9**9**9")
    with pytest.raises(CalculatorError, match="too large"):
        evaluate("99999999999 ** 99999")
    assert evaluate("2 ** 100") == 2**100


def test_find_arithmetic_finds_the_expressions_in_a_question() -> None:
    assert find_arithmetic("What is 12 * (3 + 4) and 7 - 2? Then (5+5)).") == ["12 * (3 + 4)", "7 - 2", "(5+5)"]
    assert find_arithmetic("一本书 12 元，买 3 本：12 × 3 = ?") == ["12 × 3"]
    assert find_arithmetic("Tom has 3 apples and 4 pears.") == []
    assert find_arithmetic("Divide 1 / 0 or __import__('os')") == []
    assert find_arithmetic("2.5 * 4") == ["2.5 * 4"]


def test_find_arithmetic_survives_huge_input() -> None:
    text = "1+" * 200_000 + "1"
    assert isinstance(find_arithmetic(text), list)


def test_format_number() -> None:
    assert format_number(Fraction(24)) == "24"
    assert format_number(Fraction(25, 2)) == "12.5"
    assert format_number(Fraction(1, 3)) == "0.3333"
    assert format_number(1.5) == "1.5"


def test_runs_of_parentheses_longer_than_an_operand_takes_still_find_what_they_hold() -> None:
    # An operand takes at most 64 of them before its number, so that text of many "(" is scanned
    # once, not again from each position: what the run wraps is still found, balanced.
    assert find_arithmetic("(" * 200 + "1 + 2") == ["1 + 2"]
    (wrapped,) = find_arithmetic("(" * 200 + "(1 + 2) * 3" + ")" * 200)
    assert wrapped.strip("()") == "1 + 2) * 3"
    assert evaluate(wrapped) == 9
    assert find_arithmetic("(" * 5000 + " and 4 * 5") == ["4 * 5"]
