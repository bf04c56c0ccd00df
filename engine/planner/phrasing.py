"""How a generated request is worded: templates with literal slots, then prefixes, typos and casing.

A template is prose with ``{slots}`` for what the plan must copy exactly (a folder, a file name, a
tag, a year). Typos go into the prose only, never into a slot, so a request with a typo still
names the right things; casing changes the prose and leaves the slots as they are.
"""

from __future__ import annotations

import random
import re

PREFIXES = ["", "", "", "", "please ", "could you ", "can you ", "I need you to ", "hey, ", "pls ", "would you ",
            "go ahead and ", "quick one: ", "I'd like you to ", "help me ", "kindly "]  # fmt: skip
SUFFIXES = ["", "", "", "", " please", " thanks!", ", thx", " asap", " when you get a chance", ".", "!", " :)",
            " - thank you", " thanks"]  # fmt: skip
FILLERS = ["It's getting messy.", "No rush.", "Thanks in advance.", "Don't touch anything else.",
           "This is for tomorrow.", "Be careful."]  # fmt: skip

_SLOT = re.compile(r"(\{[a-z_0-9]+\})")


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


def word(rng: random.Random, template: str, slots: dict[str, str], *, typos: float = 0.2, casing: bool = True) -> str:
    """Fill ``template``'s slots after decorating its prose: prefix, suffix, typos, filler, casing."""
    text = (pick(rng, PREFIXES) if casing else "") + template + pick(rng, SUFFIXES)
    if rng.random() < typos:
        text = with_typos(rng, text, rng.choice([1, 1, 2]))
    if rng.random() < 0.1:
        text = f"{text} {pick(rng, FILLERS)}" if rng.random() < 0.5 else f"{pick(rng, FILLERS)} {text}"
    if casing:
        text = _cased(rng, text)
    return _SLOT.sub(lambda found: slots[found.group(1)[1:-1]], text)
