"""The cleaning filters: each one's count, near duplicates by MinHash, determinism."""

from __future__ import annotations

import random

import pytest

from engine.tinyllm.cleaning import FILTERS, PRETRAIN_CLEANING, SFT_CLEANING, CleaningConfig, FilterReport, clean
from engine.tinyllm.errors import TrainInputError

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu")


def _text(seed: int, words: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(words))


def test_each_filter_reports_what_it_removed() -> None:
    base = [_text(i) for i in range(6)]
    near = base[0].split(" ")
    near[40] = "changed"
    items = [
        *base,
        "short",  # too short
        "x" * 5000,  # too long
        base[1].upper(),  # exact duplicate once case and spaces are normalized
        "  ".join(base[2].split(" ")),  # exact duplicate with other spacing
        " ".join(near),  # near duplicate of base[0]
    ]
    config = CleaningConfig(min_chars=20, max_chars=4000, near_duplicate_threshold=0.8)
    kept, reports = clean(items, config, text=str)
    assert kept == base
    assert reports == [
        FilterReport("too_short", removed=1, kept=10),
        FilterReport("too_long", removed=1, kept=9),
        FilterReport("exact_duplicate", removed=2, kept=7),
        FilterReport("near_duplicate", removed=1, kept=6),
    ]
    assert [r.filter for r in reports] == list(FILTERS)


def test_near_duplicates_go_and_distinct_texts_stay() -> None:
    original = _text(100, words=200)
    words = original.split(" ")
    words[10], words[150] = "edited", "again"
    edited = " ".join(words)
    distinct = [_text(200 + i, words=200) for i in range(30)]
    kept, reports = clean([original, *distinct, edited], PRETRAIN_CLEANING, text=str)
    assert kept == [original, *distinct]
    assert reports[-1] == FilterReport("near_duplicate", removed=1, kept=31)
    # The first of a group is kept, whichever it is.
    kept, _ = clean([edited, original, *distinct], PRETRAIN_CLEANING, text=str)
    assert kept[0] == edited
    assert original not in kept


def test_a_threshold_of_zero_turns_near_duplicates_off() -> None:
    original = _text(1, words=200)
    edited = original.replace(original.split(" ")[5], "edited", 1)
    config = CleaningConfig(min_chars=0, max_chars=None, near_duplicate_threshold=0)
    kept, reports = clean([original, edited], config, text=str)
    assert kept == [original, edited]
    assert reports[-1] == FilterReport("near_duplicate", removed=0, kept=2)


def test_length_is_measured_on_length_text() -> None:
    rows = [("a long prompt " * 20, "ok"), ("q", "a good answer"), ("q2", "y" * 2001)]
    kept, reports = clean(rows, SFT_CLEANING, text=lambda r: r[0] + r[1], length_text=lambda r: r[1])
    assert kept == [rows[1]]
    assert [r.removed for r in reports[:2]] == [1, 1]


def test_cleaning_is_deterministic() -> None:
    items = [_text(i % 40, words=60) + (" tail" if i % 3 else "") for i in range(300)]
    first = clean(items, PRETRAIN_CLEANING, text=str)
    assert clean(list(items), PRETRAIN_CLEANING, text=str) == first


def test_many_documents_are_cleaned() -> None:
    items = [
        f"row {i} talks about item {i * 7919 % 10007} in group {i % 13} with notes {i % 101}" for i in range(10000)
    ]
    kept, reports = clean(items, SFT_CLEANING, text=str)
    assert len(kept) == 10000
    assert reports[-1].kept == 10000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_chars": -1, "max_chars": None, "near_duplicate_threshold": 0.5}, "min_chars"),
        ({"min_chars": 10, "max_chars": 5, "near_duplicate_threshold": 0.5}, "max_chars"),
        ({"min_chars": 0, "max_chars": None, "near_duplicate_threshold": 1.5}, "near_duplicate_threshold"),
        ({"min_chars": 0, "max_chars": None, "near_duplicate_threshold": 0.5, "num_perm": 1}, "num_perm"),
    ],
)
def test_nonsense_configs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TrainInputError, match=message):
        CleaningConfig(**kwargs)  # type: ignore[arg-type]


def test_the_defaults_are_the_documented_ones() -> None:
    assert (PRETRAIN_CLEANING.min_chars, PRETRAIN_CLEANING.max_chars) == (200, None)
    assert (SFT_CLEANING.min_chars, SFT_CLEANING.max_chars) == (10, 2000)
