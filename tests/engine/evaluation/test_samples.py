"""The test set: every SFT row shape read as a prompt and a reference answer; bad input named by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.evaluation.samples import read_samples
from engine.tinyllm.errors import TrainInputError
from tests.engine.evaluation.support import ROWS, write_rows


def test_every_row_shape_gives_a_prompt_and_the_last_assistant_turn(tmp_path: Path) -> None:
    rows = [*ROWS, {"system": "S", "user": "Q5", "cot": "two and two", "final": "4"}]
    samples = read_samples([write_rows(tmp_path / "test.jsonl", rows)])
    assert [s.index for s in samples] == [1, 2, 3, 4, 5]
    assert [s.reference for s in samples[:4]] == ["A1", "A2", "A3", "A4"]
    assert samples[2].prompt == ({"role": "system", "content": "S"}, {"role": "user", "content": "Q3"})
    assert samples[3].question == "Q4"
    assert len(samples[3].prompt) == 3
    assert samples[4].reference.endswith("【最终答案】\n4")
    assert read_samples([tmp_path / "test.jsonl"], limit=2) == samples[:2]
    assert samples[0].fingerprint() != samples[1].fingerprint()
    assert samples[0].fingerprint() == read_samples([tmp_path / "test.jsonl"])[0].fingerprint()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "no SFT rows in"),
        (b"\n\n", "no SFT rows in"),
        (b'{"instruction": "Q", "output": "A"}\n{"prompt": "Q"}\n', "test.jsonl:2: not an SFT row"),
        (b'{"instruction": "Q", "output": "A"}\n{"instr', "test.jsonl:2: not JSON"),
        (b'\xff\xfe{"a"}\n', "test.jsonl:1: not UTF-8"),
        (b'{"messages": [{"role": "user", "content": "Q"}]}\n', "test.jsonl:1: not an SFT row: chat row: /messages"),
    ],
)
def test_bad_input_is_one_line_with_its_line_number(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "test.jsonl"
    path.write_bytes(content)
    with pytest.raises(TrainInputError) as caught:
        read_samples([path])
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainInputError, match=r"data file not found: .*missing\.jsonl"):
        read_samples([tmp_path / "missing.jsonl"])


def test_a_jsonl_test_set_loads_no_model_or_data_library(tmp_path: Path) -> None:
    # The row reader can load datasets for a .json or .parquet file (pyproject's import-linter
    # contract lets engine.evaluation.samples reach it); a JSONL test set must not.
    path = write_rows(tmp_path / "test.jsonl", ROWS)
    probe = (
        "import json, sys\nfrom pathlib import Path\nimport engine.evaluation.judge\n"
        "from engine.evaluation.samples import read_samples\n"
        f"assert len(read_samples([Path({str(path)!r})])) == 4\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert not loaded & {"torch", "transformers", "datasets", "peft", "textual", "rich", "tui"}
