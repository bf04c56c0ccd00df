"""How a generated request is worded: templates with literal slots, then prefixes, typos and casing.

A template is prose with ``{slots}`` for what the plan must copy exactly (a folder, a file name, a
tag, a year). Typos go into the prose only, never into a slot, so a request with a typo still
names the right things; casing changes the prose and leaves the slots as they are.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

PREFIXES = ["", "", "", "", "please ", "could you ", "can you ", "I need you to ", "hey, ", "pls ", "would you ",
            "go ahead and ", "quick one: ", "I'd like you to ", "help me ", "kindly ", "let's ", "time to ",
            "I want to ", "can we ", "I want you to ", "we need to ", "ok so ", "can you please "]  # fmt: skip
SUFFIXES = ["", "", "", "", " please", " thanks!", ", thx", " asap", " when you get a chance", ".", "!", " :)",
            " - thank you", " thanks", "?", " for me", " for me please", " if you can", " real quick"]  # fmt: skip
FILLERS = ["It's getting messy.", "No rush.", "Thanks in advance.", "Don't touch anything else.",
           "This is for tomorrow.", "Be careful."]  # fmt: skip

_SLOT = re.compile(r"(\{[a-z_0-9]+\})")
#: Other words for a template's verbs and nouns, each swapped in now and then (see :func:`reworded`).
#: They change how a request is said, never what it asks: "remove" stays (it also takes a tag off).
SYNONYMS: list[tuple[re.Pattern[str], list[str]]] = [
    (re.compile(r"\bmove\b"), ["shift", "transfer", "relocate", "send", "drop", "stick", "shove", "bring"]),
    (re.compile(r"\bdelete\b"), ["get rid of", "erase", "trash", "wipe", "bin", "nuke", "throw away", "throw out",
                                "discard", "toss"]),
    (re.compile(r"\bcopy\b"), ["duplicate", "clone", "make a copy of"]),
    (re.compile(r"\bzip up\b"), ["compress", "pack up", "bundle up", "zip"]),
    (re.compile(r"\btag\b"), ["label"]),
    (re.compile(r"\bfolder\b"), ["directory", "dir"]),
    (re.compile(r"\bevery\b"), ["all", "each"]),
    (re.compile(r"\beverything\b"), ["all the files", "anything", "all files"]),
    (re.compile(r"\bfiles\b"), ["stuff", "things", "items"]),
]  # fmt: skip
#: How often a word that has synonyms is said another way.
SYNONYM_RATE = 0.3


def pick(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def _typo(rng: random.Random, word: str) -> str:
    at = rng.randrange(1, len(word) - 1)
    edit = rng.randrange(3)
    if edit == 0:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if edit == 1:
        return word[:at] + word[at + 1 :]
    return word[:at] + word[at] + word[at:]


def with_typos(rng: random.Random, template: str, count: int) -> str:
    """``template`` with ``count`` typos in words of five letters or more outside the slots."""
    pieces = _SLOT.split(template)
    for _ in range(count):
        spots = [
            (i, j)
            for i, piece in enumerate(pieces)
            if not _SLOT.fullmatch(piece)
            for j, word in enumerate(piece.split(" "))
            if len(word) >= 5 and word.isalpha()
        ]
        if not spots:
            break
        i, j = spots[rng.randrange(len(spots))]
        words = pieces[i].split(" ")
        words[j] = _typo(rng, words[j])
        pieces[i] = " ".join(words)
    return "".join(pieces)


def _cased(rng: random.Random, template: str) -> str:
    roll = rng.random()
    if roll < 0.55:
        return template[:1].upper() + template[1:]
    if roll < 0.6:
        return "".join(piece if _SLOT.fullmatch(piece) else piece.upper() for piece in _SLOT.split(template))
    return template


def reworded(rng: random.Random, template: str) -> str:
    """``template`` with some of its prose words replaced by :data:`SYNONYMS` (the slots as they are)."""

    def swap(choices: list[str]) -> Callable[[re.Match[str]], str]:
        return lambda found: pick(rng, choices) if rng.random() < SYNONYM_RATE else found.group(0)

    pieces = _SLOT.split(template)
    for i, piece in enumerate(pieces):
        if not _SLOT.fullmatch(piece):
            for pattern, choices in SYNONYMS:
                piece = pattern.sub(swap(choices), piece)
            pieces[i] = piece
    return "".join(pieces)


def word(
    rng: random.Random,
    template: str,
    slots: dict[str, str],
    *,
    typos: float = 0.2,
    casing: bool = True,
    wording: random.Random | None = None,
) -> str:
    """Fill ``template``'s slots after decorating its prose: synonyms, prefix, suffix, typos, filler, casing.

    The synonyms draw from ``wording`` (none without it), a stream of their own: without it a
    template reads as it was written."""
    if wording is not None:
        template = reworded(wording, template)
    text = (pick(rng, PREFIXES) if casing else "") + template + pick(rng, SUFFIXES)
    if rng.random() < typos:
        text = with_typos(rng, text, rng.choice([1, 1, 2]))
    if rng.random() < 0.1:
        text = f"{text} {pick(rng, FILLERS)}" if rng.random() < 0.5 else f"{pick(rng, FILLERS)} {text}"
    if casing:
        text = _cased(rng, text)
    return _SLOT.sub(lambda found: slots[found.group(1)[1:-1]], text)
