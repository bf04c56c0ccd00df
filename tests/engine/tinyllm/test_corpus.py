"""The pretraining corpus: reading real files, skipping what is not text, and the hash split."""

from __future__ import annotations

import json
import os
import random
import sysconfig
from pathlib import Path

import pytest

from engine.tinyllm.corpus import (
    Document,
    ReadReport,
    corpus_fingerprint,
    default_corpus_files,
    read_documents,
    split_by_hash,
    text_hash,
)
from engine.tinyllm.errors import TrainInputError


def test_default_corpus_is_the_stdlib_without_tests() -> None:
    files = default_corpus_files()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    assert files == sorted(files)
    assert stdlib / "json" / "decoder.py" in files
    assert stdlib / "venv" / "__init__.py" in files
    for path in files:
        parts = path.relative_to(stdlib).parts
        assert path.suffix == ".py"
        assert not {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"} & set(parts)
        assert not path.name.startswith("test_")
    assert len(files) > 300


def test_text_files_are_one_document_each_and_bad_files_are_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first document\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# 第二\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text("print('x')\n", encoding="utf-8")
    (tmp_path / "sub" / "notes").write_text("no suffix is text too\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "nul.txt").write_bytes(b"a\0b")
    (tmp_path / ".hidden.txt").write_text("hidden\n", encoding="utf-8")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.txt").write_text("cache\n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n", encoding="utf-8")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("outside\n", encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(outside)
    report = ReadReport()
    docs = list(read_documents([tmp_path], report))
    assert [Path(d.source).relative_to(tmp_path).as_posix() for d in docs] == [
        "a.txt",
        "b.md",
        "sub/c.py",
        "sub/notes",
    ]
    assert docs[1].text == "# 第二\n"
    assert sorted(Path(name).name for name in report.not_utf8) == ["latin1.txt", "nul.txt"]
    assert report.skipped == 2


def test_a_missing_path_is_one_clear_error_with_the_name_escaped(tmp_path: Path) -> None:
    with pytest.raises(TrainInputError) as info:
        list(read_documents([tmp_path / "no\x1bsuch.txt"]))
    message = str(info.value)
    assert message.startswith("data file not found: ")
    assert "no\\x1bsuch.txt" in message
    assert "\x1b" not in message
    assert message.endswith("(check the path given to --data)")


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_fifo_or_a_device_is_refused_not_read_for_ever(tmp_path: Path, special: str) -> None:
    if special == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    else:
        target = Path(special)
    with pytest.raises(TrainInputError, match="not a regular file or directory"):
        list(read_documents([target]))


def test_a_jsonl_line_over_the_cap_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    from engine.tinyllm import corpus

    data = tmp_path / "huge.jsonl"
    with data.open("wb") as handle:
        handle.write(b'{"text": "ok"}\n{"text": "')
        handle.write(b"x" * (corpus.MAX_LINE_BYTES + 10))
        handle.write(b'"}\n')
    with pytest.raises(TrainInputError, match=r"huge.jsonl:2: a line longer than 16 MiB"):
        list(read_documents([data]))


def test_jsonl_gives_one_document_per_row_with_its_line(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"text": "one"}\n\n{"text": "two", "meta": 1}\n', encoding="utf-8")
    docs = list(read_documents([data]))
    assert docs == [Document("one", f"{data}:1"), Document("two", f"{data}:3")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"text": "ok"}\n{"text": \n', "rows.jsonl:2: not JSON"),
        pytest.param(
            b'{"text": "ok", "n": 1' + b"0" * 4300 + b"}\n",
            r"rows.jsonl:1: not JSON \(a number of more than 4300 digits\)",
            id="huge-number",
        ),
        pytest.param(
            b'{"text": "ok", "n": -' + b"9" * 400 + b".5}\n",
            r"rows.jsonl:1: not JSON \(a number too large to hold \(-9999999999999999999\.\.\.\)\)",
            id="huge-float",
        ),
        pytest.param(b'{"text": "ok", "n": -Infinity}\n', r"rows.jsonl:1: not JSON \(-Infinity, which", id="infinity"),
        (b'{"text": "ok"}\n{"body": "x"}\n', 'rows.jsonl:2: expected an object with a string "text" field'),
        (b'{"text": "ok"}\n[1, 2]\n', "rows.jsonl:2: expected an object"),
        (b'{"text": "ok"}\n{"text": 5}\n', "rows.jsonl:2: expected an object"),
        (b'{"text": "ok"}\n\n{"text": "caf\xe9"}\n', "rows.jsonl:3: not UTF-8"),
    ],
)
def test_bad_jsonl_rows_name_the_file_and_line(tmp_path: Path, content: bytes, expected: str) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_bytes(content)
    with pytest.raises(TrainInputError, match=expected):
        list(read_documents([data]))


def test_a_csv_file_is_loaded_with_datasets(tmp_path: Path) -> None:
    data = tmp_path / "table.csv"
    data.write_text('id,text\n1,"first, with a comma"\n2,second\n', encoding="utf-8")
    docs = list(read_documents([data]))
    assert [d.text for d in docs] == ["first, with a comma", "second"]
    assert docs[0].source == f"{data}:1"


def test_a_data_file_without_a_text_column_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "table.csv"
    data.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(TrainInputError, match=r'table\.csv: no "text" column \(columns: id, body\)'):
        list(read_documents([data]))


def test_the_split_is_80_10_10_by_hash_whatever_the_order() -> None:
    texts = [f"document {i}" for i in range(2000)]
    splits = split_by_hash(texts, text=str)
    sizes = splits.sizes()
    assert sum(sizes.values()) == 2000
    assert 1500 < sizes["train"] < 1700
    assert 140 < sizes["validation"] < 260
    assert 140 < sizes["test"] < 260
    for text in splits.validation:
        assert int.from_bytes(text_hash(text), "big") % 10 == 8
    shuffled = texts[:]
    random.Random(3).shuffle(shuffled)
    again = split_by_hash(shuffled, text=str)
    assert set(again.train) == set(splits.train)
    assert set(again.validation) == set(splits.validation)
    assert set(again.test) == set(splits.test)
    # Each part keeps the input order.
    assert again.train == [t for t in shuffled if t in set(splits.train)]
    # Membership depends on the text alone, not on the other items.
    assert set(split_by_hash(texts[:1000], text=str).validation) == {t for t in splits.validation if t in texts[:1000]}


@pytest.mark.parametrize("count", [3, 4, 5, 7])
def test_tiny_inputs_always_have_train_and_validation(count: int) -> None:
    for start in range(0, 300, count):
        texts = [f"t{i}" for i in range(start, start + count)]
        splits = split_by_hash(texts, text=str)
        assert splits.train
        assert splits.validation
        assert sorted(splits.train + splits.validation + splits.test) == sorted(texts)
        assert split_by_hash(texts[::-1], text=str).sizes() == splits.sizes()


def test_fingerprint_changes_with_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n", encoding="utf-8")
    first = corpus_fingerprint([tmp_path])
    assert first == corpus_fingerprint([tmp_path])
    assert len(first) == 64
    (tmp_path / "b.txt").write_text("two\n", encoding="utf-8")
    second = corpus_fingerprint([tmp_path])
    assert second != first
    os.utime(tmp_path / "b.txt", ns=(1, 1))
    assert corpus_fingerprint([tmp_path]) != second
    with pytest.raises(TrainInputError, match="data file not found"):
        corpus_fingerprint([tmp_path / "missing"])


def test_jsonl_documents_keep_json_escapes(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"text": "tab\there\nnewline é"}) + "\n", encoding="utf-8")
    assert [d.text for d in read_documents([data])] == ["tab\there\nnewline é"]


def test_a_loop_of_links_is_skipped_like_a_link_that_leads_outside(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("kept\n", encoding="utf-8")
    (tmp_path / "loopb.txt").symlink_to("loopa")
    (tmp_path / "loopa").symlink_to("loopb.txt")
    (tmp_path / "self.txt").symlink_to("self.txt")
    docs = list(read_documents([tmp_path]))
    assert [Path(d.source).name for d in docs] == ["a.txt"]
