"""The cleaning filters of the training data, in the order they run, each reporting what it removed.

1. too short and 2. too long: by the length of a chosen text (for SFT rows, the assistant's output);
3. exact duplicates: by a hash of the text with whitespace collapsed and case folded;
4. near duplicates: MinHash signatures of word shingles looked up in a MinHash LSH index
   (``datasketch``); the first of a group is kept.

Everything is deterministic: the same items in the same order give the same result.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from engine.tinyllm.errors import TrainInputError

T = TypeVar("T")

#: Words per shingle: long enough that shared boilerplate words alone do not make texts similar.
SHINGLE_WORDS = 3

#: The MinHash permutations are drawn from this seed, so signatures are the same in every run.
MINHASH_SEED = 1


@dataclass(frozen=True)
class CleaningConfig:
    """What the cleaning keeps: lengths in characters, and the Jaccard similarity that counts as a near duplicate.

    ``max_chars`` None means no upper bound; ``near_duplicate_threshold`` 0 turns the near-duplicate
    filter off; ``num_perm`` is the number of MinHash permutations (more is slower and more exact).
    Raise :class:`TrainInputError` for values that make no sense.
    """

    min_chars: int
    max_chars: int | None
    near_duplicate_threshold: float
    num_perm: int = 64

    def __post_init__(self) -> None:
        if self.min_chars < 0:
            raise TrainInputError(f"cleaning: min_chars must be 0 or more (got {self.min_chars})")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise TrainInputError(
                f"cleaning: max_chars ({self.max_chars}) must not be below min_chars ({self.min_chars})"
            )
        if not 0 <= self.near_duplicate_threshold <= 1:
            raise TrainInputError(
                "cleaning: near_duplicate_threshold is a Jaccard similarity between 0 (off) and 1 "
                f"(got {self.near_duplicate_threshold})"
            )
        if not 2 <= self.num_perm <= 1024:
            raise TrainInputError(f"cleaning: num_perm must be between 2 and 1024 (got {self.num_perm})")


#: Pretraining documents: whole files, so only very short ones go; no upper bound.
PRETRAIN_CLEANING = CleaningConfig(min_chars=200, max_chars=None, near_duplicate_threshold=0.85)

#: SFT rows, as the original pipeline cleaned them: the output between 10 and 2,000 characters.
SFT_CLEANING = CleaningConfig(min_chars=10, max_chars=2000, near_duplicate_threshold=0.9)


@dataclass(frozen=True)
class FilterReport:
    """What one filter did: its name, how many items it removed and how many were left after it."""

    filter: str
    removed: int
    kept: int


#: The filters' names, in the order they run (the ``filter`` of a ``data_filter`` event).
FILTERS = ("too_short", "too_long", "exact_duplicate", "near_duplicate")


def clean(
    items: Sequence[T],
    config: CleaningConfig,
    *,
    text: Callable[[T], str],
    length_text: Callable[[T], str] | None = None,
) -> tuple[list[T], list[FilterReport]]:
    """Run the four filters over ``items``; return the kept items (in input order) and one report per filter.

    ``text(item)`` is what duplicates are judged by; ``length_text(item)`` (default ``text``) is
    what the length filters measure. Every filter is reported, with 0 removed when it is off.
    """
    measure = length_text or text
    reports: list[FilterReport] = []

    def run(name: str, kept: list[T]) -> list[T]:
        reports.append(FilterReport(name, removed=len(current) - len(kept), kept=len(kept)))
        return kept

    current = list(items)
    current = run("too_short", [item for item in current if len(measure(item)) >= config.min_chars])
    maximum = config.max_chars
    current = run("too_long", [item for item in current if maximum is None or len(measure(item)) <= maximum])
    current = run("exact_duplicate", _drop_exact_duplicates(current, text))
    if config.near_duplicate_threshold > 0:
        current = run("near_duplicate", _drop_near_duplicates(current, text, config))
    else:
        current = run("near_duplicate", current)
    return current, reports


def normalize(text: str) -> str:
    """Return ``text`` with runs of whitespace made one space and case folded, as duplicates are compared."""
    return " ".join(text.split()).casefold()


def _drop_exact_duplicates(items: list[T], text: Callable[[T], str]) -> list[T]:
    seen: set[bytes] = set()
    kept = []
    for item in items:
        digest = hashlib.sha256(normalize(text(item)).encode("utf-8", "surrogatepass")).digest()
        if digest not in seen:
            seen.add(digest)
            kept.append(item)
    return kept


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """Return the set of ``size``-word shingles of the normalized text, as UTF-8 (one shingle for shorter texts)."""
    words = normalize(text).encode("utf-8", "surrogatepass").split(b" ")
    if words == [b""]:
        return set()
    if len(words) <= size:
        return {b" ".join(words)}
    return {b" ".join(gram) for gram in zip(*(words[i:] for i in range(size)), strict=False)}


def _drop_near_duplicates(items: list[T], text: Callable[[T], str], config: CleaningConfig) -> list[T]:
    from datasketch import MinHash, MinHashLSH

    threshold = config.near_duplicate_threshold
    lsh = MinHashLSH(threshold=threshold, num_perm=config.num_perm)
    # crc32 is a 32-bit hash in C; datasketch's default, sha1 per shingle, is several times slower.
    empty = MinHash(num_perm=config.num_perm, seed=MINHASH_SEED, hashfunc=zlib.crc32)
    signatures: dict[int, MinHash] = {}
    kept = []
    for index, item in enumerate(items):
        words = shingles(text(item))
        if not words:
            kept.append(item)  # nothing to compare; an empty text is the exact-duplicate filter's business
            continue
        # A copy shares the permutations, which MinHash() would draw again for every item (slow).
        signature = empty.copy()
        # The minimum over a set does not depend on its (hash-randomized) iteration order.
        signature.update_batch(list(words))
        # LSH gives candidates; only a real estimated Jaccard at or over the threshold removes the item.
        if any(signature.jaccard(signatures[other]) >= threshold for other in lsh.query(signature)):
            continue
        lsh.insert(index, signature)
        signatures[index] = signature
        kept.append(item)
    return kept
