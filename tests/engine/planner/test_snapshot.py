"""What a snapshot compares: the bytes of each file, read without reading its holes."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from engine.planner.fixtures import DENSE_BYTES, HASHED_BYTES, snapshot


def _digest(root: Path, name: str) -> str:
    return snapshot(root)[name].digest


def test_a_sparse_file_and_a_dense_one_of_the_same_bytes_are_the_same(tmp_path: Path) -> None:
    head = b"video" * 100
    (tmp_path / "sparse").write_bytes(head)
    with (tmp_path / "sparse").open("r+b") as handle:
        handle.truncate(40 * DENSE_BYTES)  # the rest is a hole
    (tmp_path / "dense").write_bytes(head + bytes(40 * DENSE_BYTES - len(head)))
    assert _digest(tmp_path, "sparse") == _digest(tmp_path, "dense")


@pytest.mark.parametrize(
    "other",
    [
        b"video" * 99 + b"vide!" + bytes(40 * DENSE_BYTES - 500),  # one byte before the hole
        b"video" * 100 + bytes(40 * DENSE_BYTES - 500 - 1),  # one zero fewer
        b"video" * 100 + bytes(10 * DENSE_BYTES) + b"x" + bytes(30 * DENSE_BYTES - 501),  # data after the hole
    ],
    ids=["a-byte", "a-zero-fewer", "data-after-the-hole"],
)
def test_files_that_differ_in_a_byte_or_in_size_differ(tmp_path: Path, other: bytes) -> None:
    (tmp_path / "sparse").write_bytes(b"video" * 100)
    with (tmp_path / "sparse").open("r+b") as handle:
        handle.truncate(40 * DENSE_BYTES)
    (tmp_path / "other").write_bytes(other)
    assert _digest(tmp_path, "sparse") != _digest(tmp_path, "other")


def test_data_after_a_hole_within_the_hashed_head_counts(tmp_path: Path) -> None:
    for name, tail in (("a", b"1"), ("b", b"2")):
        with (tmp_path / name).open("wb") as handle:
            handle.write(b"start")
            handle.seek(HASHED_BYTES // 2)
            handle.write(tail)
            handle.truncate(HASHED_BYTES * 2)
    assert _digest(tmp_path, "a") != _digest(tmp_path, "b")


def test_two_gzip_files_of_the_same_text_written_at_other_times_are_the_same(tmp_path: Path) -> None:
    for name, when in (("one.gz", 1_000_000), ("two.gz", 2_000_000)):
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=when) as packed:
            packed.write(b"x" * 256)  # a length whose last bytes in the gzip trailer are zeros
        (tmp_path / name).write_bytes(buffer.getvalue())
    assert (tmp_path / "one.gz").read_bytes() != (tmp_path / "two.gz").read_bytes()
    assert _digest(tmp_path, "one.gz") == _digest(tmp_path, "two.gz")
    assert _digest(tmp_path, "one.gz").startswith("gz:")
