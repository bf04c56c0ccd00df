"""Reading JSONL data files: a file that opens but cannot be read is the file's one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.jsonl import read_jsonl
from engine.tinyllm.errors import TrainInputError

UNREADABLE = Path("/proc/self/mem")  # opens, then every read at offset 0 fails with EIO


@pytest.mark.skipif(not UNREADABLE.exists(), reason="needs /proc")
@pytest.mark.parametrize("error", [UsageError, TrainInputError])
def test_a_file_that_opens_but_cannot_be_read_is_one_line_of_its_error(error: type[UsageError]) -> None:
    with pytest.raises(error) as caught:
        list(read_jsonl(UNREADABLE, error=error))
    assert str(caught.value) == "cannot read data file /proc/self/mem: Input/output error"


def test_lines_of_a_readable_file_are_read_with_their_numbers(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"a": 1}\n\n[2]\n')
    assert list(read_jsonl(data)) == [(1, {"a": 1}), (3, [2])]


@pytest.mark.parametrize(("line", "why"), [
    ('{"a": "x\ty"}', "Invalid control character at column 9"),
    ('{"a": "xy', "Unterminated string starting at column 7"),
])  # fmt: skip
def test_a_line_that_is_not_json_says_why_and_where_once(tmp_path: Path, line: str, why: str) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(line)  # the last line, without a newline: inside a string it would be a control character
    with pytest.raises(UsageError) as caught:
        list(read_jsonl(data))
    assert str(caught.value) == f"{data}:1: not JSON ({why})"
