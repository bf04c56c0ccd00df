"""The names a request says in words: the plain words that may be names (:func:`request_words`),
names of several words ("into old stuff/2026", "a folder called Needs Review", "as invoices/2025
invoices.zip": :func:`spaced_names`), and the folders it says as where files are, which describe
none of their files (:func:`without_locations`). :mod:`engine.planner.offered` makes them the
values a narrowed reply schema offers."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from engine.planner.places import one_of
from engine.planner.said import QUOTED, STOP_WORDS, WORD_EDGES, undictated
from engine.planner.schema_edit import is_usable
from engine.planner.values import NAME, has_ext
from engine.planner.words import word_keys


def request_words(request: str) -> list[str]:
    """The words of ``request`` that may be names: punctuation around them and a trailing slash or
    full stop taken off (and, for a name that starts with a bracket, only the punctuation after it),
    small words of the sentence ("into", "the") left out, in order, once each."""
    words: list[str] = []
    for raw in request.split():
        for word in (raw.strip(WORD_EDGES).rstrip("."), raw.rstrip(",;:!?").rstrip(".")):
            word = word.rstrip("/")
            if word and word.lower() not in STOP_WORDS and NAME.match(word) and is_usable(word) and word not in words:
                words.append(word)
    return words


#: Words that end a name of several words said without quotes: what comes after says something else
#: ("into editor/for Ruth, she wants", "as docs/old notes.zip and delete", "episodes/ep43 - Aiyana
#: Redcloud with raw/ in it").
_NAME_ENDS = STOP_WORDS | {
    "so",
    "once",
    "after",
    "before",
    "if",
    "when",
    "where",
    "while",
    "because",
    "since",
    "which",
    "who",
    "then",
    "now",
    "today",
    "there",
    "here",
    "except",
    "excluding",
    "under",
    "inside",
    "within",
    "beneath",
    "below",
    "tonight",
    "tomorrow",
    "asap",
    "too",
    "afterwards",
    "first",
    "instead",
    "should",
    "must",
    # (what a thing is called starts a name, and ends the one before: "in alterations called ruiz zip.txt")
    "called",
    "named",
    "titled",
}
#: The most words a name said with spaces holds after its slash, or before it.
_MAX_SPACED_WORDS = 4
#: Words after which a request says where things go or what a new thing is called ("into old
#: stuff/2026", "a folder called Needs Review", "mkdir Old Drafts", "as nightly jobs.zip").
_SPAN_STARTS = frozenset(("to", "into", "onto", "in", "inside", "under", "within", "called", "named", "as", "mkdir",
                          "folder", "folders", "directory", "directories", "dir", "dirs"))  # fmt: skip
_ARROWS = frozenset(("->", "=>", "\u2192"))
#: Words between such a word and the name ("into the new folder called ...", "into a new file ...").
_SPAN_SKIP = frozenset(("the", "a", "an", "new", "empty", "folder", "directory", "dir", "subfolder", "called", "named",
                        "file"))  # fmt: skip
#: A request that makes folders, whose names may follow one another ("mkdir Old Drafts and print later").
_MAKES_FOLDERS = re.compile(r"\b(?:mkdir|folders?|director(?:y|ies)|dirs?)\b", re.IGNORECASE)
#: Words before a "to" that starts a verb or says why ("I'd like you to", "next to"): no place follows.
_NOT_PLACE = frozenset(("you", "like", "want", "wants", "need", "needs", "have", "has", "going", "how", "trying",
                        "able", "try", "plan", "hoping", "next", "close", "due", "according", "similar", "compared",
                        "thanks", "related", "prior", "belongs", "belong"))  # fmt: skip
#: What a place said before "should" holds ("Old Drafts should hold the scripts").
_HOLD = re.compile(r"(?:hold|get|have|contain|receive|take|keep|store)$", re.IGNORECASE)
#: Words a name of several words never ends in: a folder's word, or what a request says after a name.
_NOT_LAST = frozenset(("folder", "folders", "directory", "dir", "subfolder", "pelase", "plz", "ty", "asap"))
#: Words of thanks that end no name, typed with a slip or not ("into old thaks", "plesae").
_POLITE = frozenset(("please", "thanks", "thank", "cheers"))


def _spoken_on(raw: list[str], at: int, start: str) -> list[str]:
    """The names of several words that start with ``start`` (said at ``raw[at]``): it with each next
    word, up to :data:`_MAX_SPACED_WORDS` of them, a comma, a full stop, a word of :data:`_NAME_ENDS`
    or a file's name ("old stuff/misc", "Work/Oak Street Clinic/photos", "nightly jobs.zip")."""
    longer: list[str] = []
    for ahead in raw[at + 1 : at + 1 + _MAX_SPACED_WORDS]:
        bare = ahead.strip(WORD_EDGES).rstrip(".")
        if (not bare or ahead[0] in "([{<\"'`" or ahead in _ARROWS or bare.lower() in _NAME_ENDS
                or not NAME.match(bare)):  # fmt: skip
            break
        longer.append(f"{longer[-1] if longer else start} {bare.rstrip('/')}")
        if (ahead[-1:] in ",;:!?." and not has_ext(ahead.strip(WORD_EDGES))) or has_ext(bare) or bare.endswith("/"):
            break
    return longer


def _held_before(raw: list[str]) -> list[str]:
    """The names of several words said before "should hold" ("Old Drafts/misc should hold the
    scripts"): the words before it, up to a small word or punctuation."""
    found: list[str] = []
    for at, token in enumerate(raw[1:-1], start=1):
        if token.lower() != "should" or not _HOLD.match(raw[at + 1]):
            continue
        words: list[str] = []
        for before in reversed(raw[max(0, at - _MAX_SPACED_WORDS - 1) : at]):
            bare = before.strip(WORD_EDGES)
            if bare != before or bare.lower() in _NAME_ENDS or not NAME.match(bare):
                break
            words.insert(0, bare)
        found += [" ".join(words[n:]) for n in range(len(words) - 1)]
    return found


#: The most words a file's new name said after "to" or "as" holds ("to Hollins Farm - topographic
#: survey - FINAL.pdf").
_MAX_FILE_NAME_WORDS = 9


def _long_file_names(raw: list[str]) -> list[str]:
    """Names of a file said with spaces after "to", "as", "called" or "named", longer than a name
    of :data:`_MAX_SPACED_WORDS` words: every word after it up to a word that is a file's name,
    none of them a word that ends a name."""
    found = []
    for at, token in enumerate(raw):
        if token.lower() not in ("to", "as", "called", "named"):
            continue
        words: list[str] = []
        for ahead in raw[at + 1 : at + 1 + _MAX_FILE_NAME_WORDS]:
            bare = ahead.strip(WORD_EDGES)
            if not bare or bare.lower() in _NAME_ENDS or not NAME.match(bare) or ahead in _ARROWS:
                break
            words.append(bare)
            if has_ext(bare):
                if len(words) > _MAX_SPACED_WORDS + 1:
                    found.append(" ".join(words))
                break
    return found


def _thanks_at_end(name: str, request: str) -> bool:
    """Whether the last word of ``name`` ends ``request`` and is a word of thanks typed with a slip
    that makes another word ("-> trash-me/2027 tanks")."""
    last = name.rsplit(" ", 1)[-1].lower()
    return request.rstrip(" .!?").lower().endswith(last) and any(
        not word_keys(last).isdisjoint(word_keys(word)) for word in _POLITE
    )


def spaced_names(request: str, folders: Iterable[str]) -> list[str]:
    """Names of several words ``request`` says: a quoted one (``'for upload'``); a path said with
    spaces ("into editor/for Ruth, she ...", "as invoices/2025 invoices.zip and ..."): a word with a
    slash and up to :data:`_MAX_SPACED_WORDS` words after it (:func:`_spoken_on`), each length once,
    with the words before it when they spell, with its first part, a folder of ``folders`` ("a show
    notes/ep43 show notes.md"); and a name said after a word of where things go or what a new one is
    called ("into old stuff/2026", "a folder called Needs Review", "as nightly jobs.zip"). Where a
    longer one ends in a file name ("invoices/2025 invoices.zip"), that is the only one of its word;
    one that ends in a small word ("editor/for") or in "folder" is left out. Each is a usable name
    (:func:`is_usable`)."""
    found: list[str] = []
    for _, text in QUOTED.findall(request):
        text = text.strip().rstrip("/")
        if " " in text and len(text.split()) <= _MAX_SPACED_WORDS + 1 and NAME.match(text) and is_usable(text):
            found.append(text)
    known = {folder.lower() for folder in folders}
    known_names = known | {posixpath.basename(folder) for folder in known}
    raw = undictated(request).split()
    starts: list[tuple[int, str]] = []
    list_starts = _SPAN_STARTS | {"and"} if _MAKES_FOLDERS.search(request) else _SPAN_STARTS
    for at, token in enumerate(raw):
        word = token.strip(WORD_EDGES)
        if "/" in word or has_ext(word):
            # A word of a path after words that spell, with its first part (or a file's name, with its
            # stem), a folder: "a show notes/ep43 ...", "Media Library/videos/notes.txt", "Holiday Photos.zip".
            # (A file's name may start with a folder's name and go on: "Casa Álvarez-backup.zip".)
            stem_of = posixpath.splitext(word)[0]
            firsts = [word.split("/", 1)[0]] if "/" in word else [stem_of, re.split(r"[-_]", stem_of, maxsplit=1)[0]]
            start = word
            for back in range(1, min(_MAX_SPACED_WORDS, at) + 1):
                before = raw[at - back : at]
                if any(b[-1:] in ",;:!?." or b.strip(WORD_EDGES) != b for b in before):
                    break
                if any(
                    " ".join([*before, first]).lower() in (known if "/" in word else known_names) for first in firsts
                ):
                    start = " ".join([*before, word])
                    break
            # (A word that names a file is a whole name: "as Pictures/berlin-2025.zip (dont delete them)".)
            if has_ext(word):
                if start != word and NAME.match(start):
                    found.append(start)
            elif "://" not in word and token[-1:] not in ",;:!?" and NAME.match(word):
                starts.append((at, start.rstrip("/")))
        # After "into", "called", "mkdir" or "as", the name may be of several words ("into old stuff").
        lowered = word.lower()
        if token in _ARROWS:
            lowered = "to"
        elif not one_of(lowered, list_starts) or (lowered == "to" and at and raw[at - 1].lower() in _NOT_PLACE):
            continue
        first = at + 1
        while first < len(raw) and raw[first].lower().strip(WORD_EDGES) in _SPAN_SKIP:
            first += 1
        if first >= len(raw) or raw[first][:1] in "([{<\"'`" or raw[first][-1:] in ",;:!?.":
            continue
        head = raw[first].strip(WORD_EDGES)
        # (A place word starts no name: "every __pycache__ folder under scripts" names no "under scripts".)
        if (head and head.lower() not in _NAME_ENDS | _SPAN_STARTS and NAME.match(head) and not has_ext(head)
                and "/" not in head):  # fmt: skip
            starts.append((first, head))
    found += _held_before(raw)
    found += _long_file_names(raw)
    for at, start in starts:
        # (A name said with a slash at its end ends there: "in Work/Harbor View Hotel/site photos/ dated 2025".)
        longer = [] if raw[at].strip(WORD_EDGES).endswith("/") else _spoken_on(raw, at, start)
        named_file = [name for name in longer if has_ext(posixpath.basename(name))]
        if named_file:
            found.append(named_file[0])
            continue
        found += [name for name in [start, *longer] if " " in name
                  and name.rsplit(" ", 1)[-1].lower() not in STOP_WORDS | _NOT_LAST
                  and not one_of(name.rsplit(" ", 1)[-1].lower(), _POLITE)
                  and not _thanks_at_end(name, request)
                  and any(ch.isalnum() for ch in name.rsplit(" ", 1)[-1])]  # fmt: skip
    # (A file's name that ends a longer path said is no name of its own: "show notes/ep43 show notes.md".)
    found = [name for name in found if "/" in name
             or not any("/" in other and other.endswith((f" {name}", f"/{name}")) for other in found)]  # fmt: skip
    return [name for name in dict.fromkeys(found) if is_usable(name)]


#: Copies made, which describe no file named "... copy" ("make copies of the images").
MAKE_COPIES = re.compile(r"\b(?:make|makes|made|making)\s+(?:a\s+|some\s+)?cop(?:y|ies)\s+of\b", re.IGNORECASE)
#: What may follow a folder said as where files are: the end of a clause, "folder", or a small word.
_AFTER_LOCATION = frozenset(("folder", "dir", "directory", "older", "newer", "dated", "modified", "changed", "not",
                             "bigger", "larger", "smaller", "over", "under", "by"))  # fmt: skip


def without_locations(request: str, folders: Iterable[str]) -> str:
    """``request`` with the names of ``folders`` blanked where it says them as where files are:
    after "in", "from", "inside", "under", "within" or "of" (and "the" or "my"), and before the end
    of a clause, "folder" or a small word ("the images in photos folder", "in meeting notes by topic")."""
    # (Only names the request holds: a workspace of thousands of folders costs no regex for each.)
    lowered = request.lower()
    names = sorted({name for folder in folders if (name := posixpath.basename(folder)).lower() in lowered},
                   key=len, reverse=True)  # fmt: skip
    for name in names:
        said = re.compile(rf"(\b(?:in|from|inside|under|within|of)\s+(?:the\s+|my\s+)?){re.escape(name)}"
                          rf"(?=/?(?:\s*$|[\s,.;:!?]))", re.IGNORECASE)  # fmt: skip

        def blanked(found: re.Match[str]) -> str:
            after = found.string[found.end() :].lstrip("/ ").split(" ", 1)[0].strip(",.;:!?").lower()
            if after and after not in STOP_WORDS and after not in _AFTER_LOCATION:
                return found.group(0)
            return found.group(1) + " " * (len(found.group(0)) - len(found.group(1)))

        request = said.sub(blanked, request)
    return request
