"""A safe calculator: the arithmetic in a question, found and evaluated exactly.

:func:`evaluate` parses an expression with ``ast`` and walks only numbers, parentheses and the
operators ``+ - * / // % **``; names, calls, attributes and everything else are refused, and so
are results too large to compute quickly (``9**9**9``). Results are exact fractions; a fractional
power gives a float.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

#: The longest expression evaluated, in characters, and the most operators in one.
MAX_EXPRESSION_CHARS = 500
MAX_OPERATIONS = 100
#: The largest numerator or denominator, in bits, of any intermediate result (about 1,200 digits).
MAX_BITS = 4096

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

#: Other ways questions write the operators, as Python writes them.
_SPELLINGS = str.maketrans({"×": "*", "÷": "/", "−": "-", "（": "(", "）": ")", "＋": "+", "＊": "*", "／": "/"})


class CalculatorError(ValueError):
    """An expression the calculator refuses: not arithmetic, too large, or dividing by zero."""


def evaluate(expression: str) -> Fraction | float:
    """Return the value of an arithmetic expression: an exact ``Fraction``, or a float after a fractional power.

    Accepts numbers (integers and decimals), parentheses, unary ``+``/``-`` and ``+ - * / // % **``
    (``×``, ``÷`` and ``−`` are read as ``*``, ``/`` and ``-``). Raise :class:`CalculatorError` for
    anything else, for division by zero, and for results over :data:`MAX_BITS`.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.translate(_SPELLINGS).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculatorError("not an arithmetic expression") from None
    if sum(isinstance(node, (ast.BinOp, ast.UnaryOp)) for node in ast.walk(tree)) > MAX_OPERATIONS:
        raise CalculatorError(f"more than {MAX_OPERATIONS} operations")
    try:
        return _value(tree.body)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except (OverflowError, RecursionError):
        raise CalculatorError("result too large") from None


def _value(node: ast.expr) -> Fraction | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if isinstance(node.value, float):
            if not math.isfinite(node.value):
                raise CalculatorError("number too large")
            # repr is the shortest spelling, so 0.1 is exactly 1/10 and not the nearest binary float.
            return _checked(Fraction(repr(node.value)))
        return _checked(Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _value(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        function = _BINARY.get(type(node.op))
        if function is not None:
            result = function(left, right)
            if isinstance(result, float):
                return _checked_float(result)
            return _checked(Fraction(result))  # Fraction // Fraction is an int
    raise CalculatorError(f"{type(node).__name__} is not allowed: only numbers, parentheses and + - * / // % **")


def _power(base: Fraction | float, exponent: Fraction | float) -> Fraction | float:
    if isinstance(exponent, Fraction) and exponent.denominator == 1 and isinstance(base, Fraction):
        bits = max(base.numerator.bit_length(), base.denominator.bit_length())
        # Check the size before computing: 9**9**9 would otherwise run for minutes.
        if bits > 1 and abs(exponent.numerator) * bits > MAX_BITS:
            raise CalculatorError("result too large")
        if base == 0 and exponent < 0:
            raise ZeroDivisionError
        return _checked(base**exponent.numerator)
    if base < 0:
        raise CalculatorError("a negative number to a fractional power is not a real number")
    if base == 0 and exponent < 0:
        raise ZeroDivisionError
    return _checked_float(float(base) ** float(exponent))


def _checked(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise CalculatorError("result too large")
    return value


def _checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise CalculatorError("result too large")
    return value


_NUMBER = r"\d+(?:\.\d+)?"
_OPERATOR = r"(?:\*\*|//|[-+*/%×÷−])"
# The run before a number is bounded: unbounded, text of many "(" and no number after them was
# scanned again from every position (quadratic: 10,000 of them cost seconds).
_OPERAND = rf"[(（\s]{{0,64}}{_NUMBER}[)）\s]*"
_EXPRESSION = re.compile(rf"{_OPERAND}(?:{_OPERATOR}{_OPERAND})+")


def find_arithmetic(text: str) -> list[str]:
    """Return the arithmetic expressions written in ``text``, in order: numbers joined by operators.

    ``"What is 12 * (3 + 4) and 7 - 2?"`` gives ``["12 * (3 + 4)", "7 - 2"]``. Unbalanced
    parentheses at the ends are trimmed, and a match that still does not evaluate is left out.
    """
    found = []
    for match in _EXPRESSION.finditer(text[: MAX_EXPRESSION_CHARS * 20]):
        candidate = _balance(match.group().strip())
        try:
            evaluate(candidate)
        except CalculatorError:
            continue
        found.append(candidate)
    return found


def _balance(expression: str) -> str:
    # The regex takes parentheses greedily at both ends; drop those without a partner (counted
    # once, not again after each one dropped).
    depth = _depth(expression)
    while depth > 0 and expression and expression[0] in "(（":
        expression = expression[1:].lstrip()
        depth -= 1
    while depth < 0 and expression and expression[-1] in ")）":
        expression = expression[:-1].rstrip()
        depth += 1
    return expression


def _depth(expression: str) -> int:
    return sum(1 for ch in expression if ch in "(（") - sum(1 for ch in expression if ch in ")）")


def format_number(value: Fraction | float, places: int = 4) -> str:
    """Return a number as a question would write it: ``24``, ``12.5``, or rounded to ``places`` decimals."""
    if isinstance(value, float):
        return f"{value:.{places}f}".rstrip("0").rstrip(".")
    if value.denominator == 1:
        return str(value.numerator)
    rounded = round(value, places)
    return f"{rounded.numerator / rounded.denominator:.{places}f}".rstrip("0").rstrip(".")
