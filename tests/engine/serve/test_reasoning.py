"""A reasoning model's answer split, the calculator note given to it, and the vote over samples."""

from __future__ import annotations

import pytest

from engine.serve.reasoning import calculator_note, normalise_answer, split_answer, vote
from engine.tinyllm.sft_data import Markers, reasoning_answer


@pytest.mark.parametrize("markers", ["zh", "en"])
def test_a_trained_answer_splits_into_reasoning_and_content(markers: Markers) -> None:
    text = reasoning_answer("5 × 3 = 15。\n再减 2。", "13 元", markers)
    assert split_answer(text, markers) == ("5 × 3 = 15。\n再减 2。", "13 元")
    assert split_answer(text + "\n", markers) == ("5 × 3 = 15。\n再减 2。", "13 元")


def test_an_answer_without_its_reasoning_marker_still_splits() -> None:
    assert split_answer("first this\nAnswer:\n42", "en") == ("first this", "42")
    assert split_answer("Answer:\n42", "en") == ("", "42")


def test_text_without_markers_is_all_content() -> None:
    assert split_answer("just words", "en") == (None, "just words")
    assert split_answer("Reasoning:\nsteps\nAnswer:\n1", None) == (None, "Reasoning:\nsteps\nAnswer:\n1")
    # An answer marker that is not on a line of its own is not a marker.
    assert split_answer("the Answer: 3", "en") == (None, "the Answer: 3")
    # The other language's markers are text.
    assert split_answer("【推理过程】\n想\n【最终答案】\n1", "en") == (None, "【推理过程】\n想\n【最终答案】\n1")


def test_reasoning_cut_off_before_the_answer_has_no_content() -> None:
    assert split_answer("【推理过程】\n先算 3 × 4", "zh") == ("先算 3 × 4", "")


def test_the_calculator_evaluates_the_arithmetic_in_a_question() -> None:
    assert calculator_note("What is 12 * (3 + 4)?") == "Calculator: 12 * (3 + 4) = 84"
    assert calculator_note("一本书 12.5 元，买 4 本：12.5 × 4 是多少？再算 100 - 50") == (
        "Calculator: 12.5 × 4 = 50; 100 - 50 = 50"
    )
    assert calculator_note("Split 10 / 4 and 10 / 4 again") == "Calculator: 10 / 4 = 2.5"
    assert calculator_note("1 / 3 of it") == "Calculator: 1 / 3 = 0.3333"


@pytest.mark.parametrize(
    "question",
    [
        "How many apples does Tom have?",
        "",
        "Version 3.11 was released",
        "__import__('os').system('true') + 1",
        "divide 1 / 0 please",
        "9 ** 9 ** 9",
    ],
)
def test_no_arithmetic_gives_no_note(question: str) -> None:
    assert calculator_note(question) is None


def test_a_note_reports_a_bounded_number_of_expressions() -> None:
    question = " and ".join(f"{n} + 1" for n in range(30))
    note = calculator_note(question)
    assert note is not None
    assert note.count("=") == 8


@pytest.mark.parametrize(
    ("answer", "normal"),
    [("12", "12"), (" 12.0 ", "12"), ("12.50", "12.5"), ("1,250", "1250"), ("-0.0", "0"), ("26 元", "26 元"),
     ("26.00  Yuan.", "26 yuan"), ("Paris", "paris"), ("二十六", "二十六")],
)  # fmt: skip
def test_answers_are_normalised(answer: str, normal: str) -> None:
    assert normalise_answer(answer) == normal


def test_the_majority_wins_and_numbers_agree_however_written() -> None:
    assert vote(["12", "13", "12.0", " 12 ", "13"]) == (0, {"12": 3, "13": 2})
    assert vote(["7 yuan", "26 yuan", "26.0 Yuan"]) == (1, {"7 yuan": 1, "26 yuan": 2})


def test_a_tie_goes_to_the_answer_seen_first() -> None:
    assert vote(["b", "a", "a", "b"]) == (0, {"b": 2, "a": 2})
    assert vote(["x", "y"]) == (0, {"x": 1, "y": 1})


def test_empty_answers_count_only_when_all_are_empty() -> None:
    assert vote(["", "", "5"]) == (2, {"5": 1})
    assert vote(["", " "]) == (0, {"": 2})
    with pytest.raises(ValueError, match="at least one"):
        vote([])
