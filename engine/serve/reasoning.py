"""Serving a reasoning model: its answer split into reasoning and content, the calculator, and voting.

A model trained with reasoning SFT (:func:`engine.tinyllm.sft_data.reasoning_answer`) writes its
worked steps and then its final answer between markers. :func:`split_answer` separates them for
``reasoning_content`` and ``content``; :func:`calculator_note` gives the model the value of the
arithmetic in a question (a system message the HTTP layer adds); :func:`vote` picks the answer most
samples agree on (self-consistency).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from engine.tinyllm.calculator import CalculatorError, evaluate, find_arithmetic, format_number
from engine.tinyllm.sft_data import MARKERS, Markers, split_reasoning

#: The most expressions one note reports: a question with more is rarely arithmetic to do.
MAX_NOTE_EXPRESSIONS = 8

#: A final answer that starts with a number, such as ``26``, ``-1,250.50`` or ``26 yuan``.
_LEADING_NUMBER = re.compile(r"([-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+)(.*)", re.DOTALL)


def split_answer(text: str, markers: Markers | None) -> tuple[str | None, str]:
    """Return ``(reasoning_content, content)`` of a model's answer.

    ``markers`` are the model's (``"zh"``/``"en"``), or None for a model not trained to reason,
    whose text is all content. Text without a final-answer marker is all content, unless it starts
    with the reasoning marker: then it was cut off while reasoning, and the content is empty.
    Both parts are stripped of surrounding whitespace.
    """
    if markers is None:
        return None, text
    parts = split_reasoning(text, markers)
    if parts is not None:
        reasoning, final = parts
        return reasoning.strip(), final.strip()
    opening = MARKERS[markers][0]
    if text.lstrip().startswith(opening):
        return text.lstrip().removeprefix(opening).strip(), ""
    return None, text


def calculator_note(question: str) -> str | None:
    """Return the arithmetic written in ``question`` with its values, for the model, or None if there is none.

    ``"What is 12 * (3 + 4)?"`` gives ``"Calculator: 12 * (3 + 4) = 84"``; several expressions are
    joined with ``"; "``. Evaluation is exact and safe (:mod:`engine.tinyllm.calculator`: a parsed
    expression tree, never ``eval``).
    """
    results: list[str] = []
    for expression in dict.fromkeys(find_arithmetic(question)):
        try:
            value = evaluate(expression)
        except CalculatorError:  # find_arithmetic keeps only what evaluates; a guard all the same
            continue
        results.append(f"{expression} = {format_number(value)}")
        if len(results) == MAX_NOTE_EXPRESSIONS:
            break
    return "Calculator: " + "; ".join(results) if results else None


def normalise_answer(final: str) -> str:
    """Return the form of a final answer under which equal answers compare equal.

    Whitespace is collapsed and a trailing full stop dropped; a leading number is written
    canonically (``12.0`` and ``12.00`` are ``12``, ``1,250`` is ``1250``); the rest is case-folded.
    """
    text = " ".join(final.split()).rstrip("。.").strip()
    match = _LEADING_NUMBER.fullmatch(text)
    if match is None:
        return text.casefold()
    number, rest = match.groups()
    try:
        value = Decimal(number.replace(",", ""))
    except InvalidOperation:
        return text.casefold()
    canonical = format(value.normalize(), "f") if value != 0 else "0"
    rest = rest.strip().casefold()
    return f"{canonical} {rest}" if rest else canonical


def vote(finals: Sequence[str]) -> tuple[int, dict[str, int]]:
    """Return ``(index of the winning sample, votes per normalised answer)`` for self-consistency.

    Answers are compared after :func:`normalise_answer`; empty answers (a sample cut off before
    its answer) count only when every answer is empty. A tie goes to the answer seen first, and
    the index is that of its first sample. Raise ValueError when ``finals`` is empty.
    """
    if not finals:
        raise ValueError("vote needs at least one answer")
    normalised = [normalise_answer(final) for final in finals]
    counts: dict[str, int] = {}
    for answer in normalised:
        if answer or not any(normalised):
            counts[answer] = counts.get(answer, 0) + 1
    # dict order is first-seen order, and max keeps the first of equal counts.
    winner = max(counts, key=lambda answer: counts[answer])
    return normalised.index(winner), counts
