"""The environment of a child routeshell."""

from __future__ import annotations

import pytest

from engine.child_process import HUGE_PAGES_MARK, child_env

WHOLE = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"


def test_a_child_gets_the_whole_tunables_that_glibc_cut_short_here(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a command that ran itself again on huge pages sees of its own environment.
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    monkeypatch.setenv(HUGE_PAGES_MARK, WHOLE)
    env = child_env({"EXTRA": "1"})
    assert env["GLIBC_TUNABLES"] == WHOLE
    assert (env["EXTRA"], env["PYTHONUNBUFFERED"]) == ("1", "1")


def test_without_the_mark_the_tunables_are_left_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HUGE_PAGES_MARK, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")
    assert child_env()["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
    monkeypatch.setenv(HUGE_PAGES_MARK, "1")  # not a tunables value: ignored
    assert child_env()["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
