"""SFT rows: every format read into the same conversation, schema rejections, reasoning markers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.schemas import validator
from engine.tinyllm.errors import TrainInputError
from engine.tinyllm.sft_data import (
    MARKERS,
    Conversation,
    assistant_text,
    conversation_text,
    read_conversations,
    reasoning_answer,
    row_problem,
    split_reasoning,
)

USER: dict[str, str] = {"role": "user", "content": "q"}
ANSWER: dict[str, str] = {"role": "assistant", "content": "a"}
SYSTEM: dict[str, str] = {"role": "system", "content": "s"}
EXPECTED: Conversation = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
]


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_every_format_reads_into_the_same_conversation(tmp_path: Path) -> None:
    chat = _jsonl(tmp_path / "chat.jsonl", [{"messages": EXPECTED}])
    tiny = _jsonl(tmp_path / "tiny.jsonl", [{"system": "Be brief.", "user": "What is 2 + 2?", "assistant": "4"}])
    assert read_conversations([chat]) == [EXPECTED]
    assert read_conversations([tiny]) == [EXPECTED]
    alpaca = _jsonl(
        tmp_path / "alpaca.jsonl",
        [
            {"instruction": "What is 2 + 2?", "output": "4"},
            {"instruction": "Add the numbers.", "input": "2 and 2", "output": "4"},
            {"instruction": "What is 2 + 2?", "input": "", "output": "4"},
        ],
    )
    assert read_conversations([alpaca]) == [
        EXPECTED[1:],
        [{"role": "user", "content": "Add the numbers.\n\n2 and 2"}, EXPECTED[2]],
        EXPECTED[1:],
    ]


def test_reasoning_rows_render_with_the_chosen_markers(tmp_path: Path) -> None:
    rows = _jsonl(tmp_path / "r.jsonl", [{"system": "s", "user": "2 + 2?", "cot": "Two and two.", "final": "4"}])
    zh = read_conversations([rows])
    assert zh[0][-1] == {"role": "assistant", "content": "【推理过程】\nTwo and two.\n【最终答案】\n4"}
    en = read_conversations([rows], markers="en")
    assert en[0][-1]["content"] == "Reasoning:\nTwo and two.\nAnswer:\n4"
    assert [m["role"] for m in en[0]] == ["system", "user", "assistant"]


def test_json_and_parquet_files_are_read_through_datasets(tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_text(
        json.dumps(
            [
                {"user": "What is 2 + 2?", "assistant": "4"},
                {"system": "Be brief.", "user": "What is 2 + 2?", "assistant": "4"},
            ]
        ),
        encoding="utf-8",
    )
    assert read_conversations([data]) == [EXPECTED[1:], EXPECTED]
    import datasets

    parquet = tmp_path / "rows.parquet"
    datasets.Dataset.from_list([{"messages": EXPECTED}]).to_parquet(str(parquet))
    assert read_conversations([parquet]) == [EXPECTED]


def test_a_directory_gives_its_row_files(tmp_path: Path) -> None:
    _jsonl(tmp_path / "a.jsonl", [{"messages": EXPECTED}])
    (tmp_path / "README.md").write_text("not rows\n", encoding="utf-8")
    assert read_conversations([tmp_path]) == [EXPECTED]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"user": "q"}, "tinyllm row: /assistant: missing required key"),
        ({"user": "q", "assistant": 3}, "tinyllm row: /assistant: must be of type string"),
        ({"prompt": "q", "completion": "a"}, "unknown key"),
        ({"instruction": "q"}, "alpaca row: /output: missing required key"),
        ({"instruction": "q", "output": "a", "system": "s"}, "alpaca row: /system: unknown key"),
        ({"user": "q", "cot": "c"}, "reasoning row: /final: missing required key"),
        ({"messages": [USER]}, "chat row: /messages"),
        ({"messages": [USER, {"role": "bot", "content": "a"}]}, "/messages/1/role: must be one of"),
        ({"messages": [ANSWER, ANSWER]}, "must contain a user"),
        ({"messages": [USER, SYSTEM, ANSWER]}, "a system message may only come first"),
        ({"messages": [ANSWER, USER]}, "the last message must be the assistant's"),
        ([1, 2], "a row must be a JSON object"),
        ("text", "a row must be a JSON object"),
    ],
)
def test_bad_rows_are_rejected_with_the_shape_expected(tmp_path: Path, row: Any, expected: str) -> None:
    problem = row_problem(row)
    assert problem is not None
    assert expected in problem
    data = _jsonl(tmp_path / "bad.jsonl", [{"user": "fine", "assistant": "row"}, row])
    with pytest.raises(TrainInputError) as info:
        read_conversations([data])
    message = str(info.value)
    assert message.startswith(f"{data}:2: not an SFT row: ")
    assert expected in message
    assert 'expected one of {"messages"' in message


def test_the_schema_accepts_exactly_the_four_shapes() -> None:
    schema = validator("sft_row")
    good = [
        {"messages": EXPECTED},
        {"user": "q", "assistant": "a"},
        {"system": "s", "user": "q", "assistant": "a"},
        {"instruction": "i", "output": "o"},
        {"instruction": "i", "input": "x", "output": "o"},
        {"user": "q", "cot": "c", "final": "f"},
        {"system": "s", "user": "q", "cot": "c", "final": "f"},
    ]
    for row in good:
        assert schema.is_valid(row), row
        assert row_problem(row) is None
    bad = [{}, {"user": "q", "assistant": "a", "cot": "c"}, {"messages": EXPECTED, "user": "q"}, {"text": "t"}]
    for row in bad:
        assert not schema.is_valid(row), row


def test_not_utf8_and_empty_inputs_are_one_line(tmp_path: Path) -> None:
    data = tmp_path / "latin.jsonl"
    data.write_bytes(b'{"user": "caf\xe9", "assistant": "a"}\n')
    with pytest.raises(TrainInputError, match=r"latin\.jsonl:1: not UTF-8"):
        read_conversations([data])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TrainInputError, match=r"no SFT rows in .*empty\.jsonl"):
        read_conversations([empty])
    text = tmp_path / "rows.txt"
    text.write_text("hello\n", encoding="utf-8")
    with pytest.raises(TrainInputError, match=r"rows\.txt: SFT data must be a \.jsonl"):
        read_conversations([text])
    with pytest.raises(TrainInputError, match="data file not found"):
        read_conversations([tmp_path / "missing.jsonl"])


@pytest.mark.parametrize("markers", ["zh", "en"])
@pytest.mark.parametrize(
    ("cot", "final"),
    [("Two and two make four.", "4"), ("第一步。\n第二步。", "26 元"), ("", "0"), ("lines\n\nwith gaps", "x\ny")],
)
def test_reasoning_markers_round_trip(markers: Any, cot: str, final: str) -> None:
    text = reasoning_answer(cot, final, markers)
    assert text.startswith(MARKERS[markers][0] + "\n")
    assert split_reasoning(text, markers) == (cot, final)


def test_split_reasoning_without_markers() -> None:
    assert split_reasoning("just an answer", "zh") is None
    assert split_reasoning("Reasoning:\nsteps\nAnswer:\n4", "zh") is None
    # A model that forgets the opening marker still gives both parts.
    assert split_reasoning("steps\n【最终答案】\n4", "zh") == ("steps", "4")


def test_texts_for_cleaning_leave_out_the_system_prompt() -> None:
    assert conversation_text(EXPECTED) == "What is 2 + 2?\n4"
    assert assistant_text(EXPECTED) == "4"
