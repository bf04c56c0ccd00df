"""Where a request sends things, and the folders it makes: the places :mod:`engine.planner.refer`
and the decoding schema (:mod:`engine.planner.narrow`) offer as destinations.

A place is the word after "to", "into", "onto" or an arrow, past an article or "folder called"
("into the new folder called old"); in a clause with none of those, the word after "in" or "under"
("put the lease in house"). A "to" that starts a verb ("I'd like you to move") or says where
something is ("next to the real chapters") names no place.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable

from engine.planner.values import NAME, innermost, is_changeable
from engine.planner.words import alike, stem

#: A file's name or path with its extension (``Notes/todo.md``, ``a-b.tar.gz``; not ``.log``). It starts
#: where a token starts, so one long token costs one pass instead of one per character.
#: (An extension has a letter: "the 1.2.0 release" names no file.)
FILE_NAME = re.compile(
    r"(?<![^\s\"'`])[^\s\"'`]*[\w)\]]\.(?=[A-Za-z0-9]{0,7}[A-Za-z])[A-Za-z0-9]{1,8}(?:\.[A-Za-z0-9]{1,4})?\b"
)
#: The name of an archive (``old.zip``, ``logs.tar.gz``).
ARCHIVE_NAME = re.compile(r"\.(?:zip|tar|tgz|tar\.gz|tar\.bz2|tar\.xz)\b", re.IGNORECASE)
#: A token of a request as refer and named read it: a word, a path, or an arrow.
REQUEST_TOKEN = re.compile(r"->|=>|\u2192|[^\s,;:!?()\"'`]+")


#: Words between a word of :data:`_PLACE_WORDS` and the place it names ("into the new folder called x").
_PLACE_FILLER = frozenset(("the", "my", "a", "an", "our", "your", "new", "folder", "directory", "dir", "called",
                           "named", "over", "back", "subfolder"))  # fmt: skip
#: Words before the place files go to ("into archive"), and words before a place that may also be
#: where files are ("the pdfs in docs"), which count only in a clause that has none of the first.
_PLACE_WORDS = frozenset(("to", "into", "onto", "->", "=>", "\u2192"))
_MAYBE_PLACE_WORDS = frozenset(("in", "inside", "under", "within"))
_HOLDS = frozenset(("hold", "get", "have", "contain", "receive", "take", "keep", "store"))
#: Words before a "to" that starts a verb ("I'd like you to move"), not a place.
_WANTS = frozenset(("you", "like", "want", "wants", "wanted", "need", "needs", "have", "has", "going", "how", "trying",
                    "able", "try", "tries", "plan", "plans", "hoping"))  # fmt: skip
#: Words before a "to" that says where something is or why, not where it goes ("next to the real
#: chapters", "due to the move").
_BESIDE = frozenset(("next", "close", "due", "according", "similar", "compared", "thanks", "related", "prior"))
#: Where one clause of a request ends and the next starts.
_CLAUSE = re.compile(r"[.;!?](?:\s|$)|\n|,?\s+(?:then|also|after that|and then)\b", re.IGNORECASE)
#: Words before the name of an archive being made ("an archive old.zip", "as old.zip").
_MADE_AS = re.compile(r"\b(?:archive|as|tarball|zip|zipped)\s+$", re.IGNORECASE)


def one_of(token: str, words: frozenset[str] | set[str]) -> bool:
    """Whether ``token`` is one of ``words``, forgiving one typed letter in a word of five letters or
    more ("undre", "shuold")."""
    if token in words:
        return True
    return len(token) >= 5 and any(len(word) >= 5 and alike(token, word) for word in words)


#: A folder a request makes by its name: "create trash-me", "make a folder called keep", "mkdir old/".
_MAKES = re.compile(
    r"\b(?:mkdir|create|make)\s+(?:an?\s+(?:new\s+|empty\s+)?(?:folder|directory|dir)\s+)?(?:(?:called|named)\s+)?"
    r"([\w./-]+)",
    re.IGNORECASE,
)
#: Words after "make" or "create" that name no folder ("make a copy", "create an archive").
_NOT_MADE = frozenset(("a", "an", "the", "new", "it", "them", "sure", "copies", "copy", "folder", "folders",
                       "directory", "dir", "one", "some", "me"))  # fmt: skip


def made_folders(request: str) -> list[str]:
    """The folders ``request`` asks to make, by the name said after "mkdir", "create" or "make a
    folder" ("create trash-me and put the logs there": ``trash-me``); never a file's name."""
    found = (name.strip(".,;:!?").rstrip("/") for name in _MAKES.findall(request))
    return [name for name in dict.fromkeys(found) if name and name.lower() not in _NOT_MADE
            and "." not in posixpath.basename(name)]  # fmt: skip


#: Words after "in" or "to" that make a phrase and name no place ("in front of", "in place of",
#: "in order", "in case").
_NO_PLACE = frozenset(("front", "place", "middle", "spite", "case", "charge", "terms", "order", "addition",
                       "favour", "favor", "light"))  # fmt: skip


def referred_targets(request: str, *, in_places: bool = True) -> set[str] | None:
    """The places (in lower case, without a trailing ``/``) a request says files go to, in each of
    its clauses: the word after "to", "into", "onto" or an arrow, past an article or "folder
    called", or before "should hold"; in a clause with none of those, the word after "in" or
    "under" ("put the lease in house", "file them under 2025"); and every file name it says, for
    "call a.md b.md". None when it says no such place, and the caller then offers every place.
    Without ``in_places``, a place after "in" or "under" is not one."""
    found: set[str] = set()
    for clause in _CLAUSE.split(request):
        found_tokens = list(REQUEST_TOKEN.finditer(clause))
        raw = [token.group(0).strip(".'\"").lower() for token in found_tokens]
        tokens = [token.rstrip("/") for token in raw]
        # (Where a token goes on from the one before it after a space only: "to review: a/b.txt"
        # is no "review a/b.txt".)
        spaced = [at > 0 and clause[found_tokens[at - 1].end() : token.start()].isspace()
                  and not found_tokens[at - 1].group(0).endswith(".")
                  for at, token in enumerate(found_tokens)]  # fmt: skip
        sure: set[str] = set()
        maybe: set[str] = set()
        for at, token in enumerate(tokens):
            before = tokens[at - 1] if at else ""
            after = tokens[at + 1] if at + 1 < len(tokens) else ""
            if one_of(token, {"should"}) and one_of(after, _HOLDS) and before:  # "backup should hold the pdfs"
                sure.add(before)
            first = next((k for k in range(at + 1, len(tokens)) if tokens[k] and tokens[k] not in _PLACE_FILLER), None)
            place = "" if first is None else _spaced_path(raw, spaced, first)
            if place in _NO_PLACE:  # "put the date in front of the names", "in place of"
                continue
            if place in ("it", "there"):  # "make a folder keep and put the pdfs in it"
                sure |= {name.lower() for name in made_folders(request)}
            elif place and one_of(token, _PLACE_WORDS) and not (token == "to" and before in _WANTS | _BESIDE):
                sure.add(place)
            elif place and one_of(token, _MAYBE_PLACE_WORDS):
                maybe.add(place)
        found |= sure or (maybe if in_places else set())
    # A new archive is named where it is made, not where files go ("an archive old.zip", "as old.zip").
    names = {
        match.group(0).strip(".'\"").lower()
        for match in FILE_NAME.finditer(request)
        if not (ARCHIVE_NAME.search(match.group(0)) and _MADE_AS.search(request, 0, match.start()))
    }
    found |= {posixpath.basename(name) for name in names} | names
    return found or None


def _spaced_path(raw: list[str], spaced: list[bool], at: int) -> str:
    """The place whose name starts at token ``at`` of ``raw`` (lower case, trailing ``/`` kept): one
    token, or up to three, each after a space only, where the last of them spells a path ("into
    family tree/exports/2025-11", "to hive scale/") and none is a small word; without a trailing ``/``."""
    for end in range(min(at + 3, len(raw)), at + 1, -1):
        words = raw[at:end]
        if "/" in words[-1] and all(spaced[at + 1 : end]) and not any(w in _ENDS_NAME or not w for w in words[1:]):
            return " ".join(words).rstrip("/")
    return raw[at].rstrip("/")


def without_places(request: str, places: set[str]) -> str:
    """``request`` with each of ``places`` (lower case) blanked where it is said as where files go,
    after "to", "into", "in" or an arrow: "put the utils module in old" says nothing old."""
    if not places:
        return request
    names = "|".join(re.escape(place) for place in sorted(places, key=len, reverse=True))
    said = re.compile(rf"((?:\b(?:to|into|onto|in|inside|under|within)|->|=>|\u2192)\s+(?:the\s+|my\s+)?)(?:{names})/?"
                      r"(?![\w/.-])", re.IGNORECASE)  # fmt: skip
    return said.sub(lambda found: found.group(1) + " " * (len(found.group(0)) - len(found.group(1))), request)


#: Names of folders to make, said one after another up to the end of the request: "mkdir later and
#: old!", "make a folder called keep/travel and old - thank you".
#: (A name may be of up to three words, none of them a small word: "mkdir Needs Review/2026 and keep".)
_MADE_NAME = (r"[\w./-]+(?:\s+(?!(?:and|or|the|for|to|in|into|of|with|a|an|please|pls|thanks|thank|thx|asap|now|too)\b)"
              r"\w[\w./-]*){0,2}")  # fmt: skip
_MADE = re.compile(
    r"\b(?:mkdir|folders?|director(?:y|ies)|dirs?):?\s+(?:(?:called|named)\s+)?"
    rf"((?:{_MADE_NAME}(?:\s*,\s*(?:and\s+)?|\s+and\s+))+{_MADE_NAME})"
    r"\s*(?:[.!?;](?!\w)|-\s|:\)|$|\b(?:please|pls|thanks|thank|thx|asap|now|too)\b)",
    re.IGNORECASE,
)
#: Words that start what a request asks next, not a folder's name.
_ASKS = frozenset(("move", "put", "copy", "delete", "remove", "tag", "untag", "rename", "zip", "unzip", "extract",
                   "write", "add", "append", "create", "make", "mkdir", "then", "also"))  # fmt: skip
_FILLER = frozenset(("please", "pls", "plz", "thanks", "thank", "thx", "asap", "now", "too", "ty"))
#: Words that end a place's name of several words: small words, and words of what a request asks next.
_ENDS_NAME = frozenset(("and", "or", "the", "for", "to", "in", "into", "of", "with", "a", "an", "from", "on", "at",
                        "by", "as", "so", "but", "if", "when", *_FILLER, *_ASKS))  # fmt: skip
_MADE_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+", re.IGNORECASE)


#: Names said one after another after "folders" or "mkdir", wherever the list ends ("new folders:
#: old and shared/2026 when you get a chance").
_LISTED = re.compile(
    r"\b(?:mkdir|folders?|director(?:y|ies)|dirs?):?\s+(?:(?:called|named)\s+)?"
    r"([\w./-]+(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+)[\w./-]+)*)",
    re.IGNORECASE,
)


def listed_folders(request: str) -> list[str]:
    """Every name said in a list after "folders" or "mkdir" ("mkdir old and shared/2026 when you
    can": ``old``, ``shared/2026``): the folders a request may make, however the list ends."""
    names = (name.strip("./") for found in _LISTED.findall(request) for name in _MADE_SPLIT.split(found))
    said = _NOT_MADE | _FILLER | _PLACE_WORDS | _MAYBE_PLACE_WORDS
    return [name for name in dict.fromkeys(names) if name and name.lower() not in said]


#: A folder made with others in it: "make orders/mothers day 2026 with two folders in it".
_MADE_WITH = re.compile(
    r"\b(?:make|create|mkdir|set\s+up)\s+(?:a\s+(?:new\s+)?folder\s+(?:called\s+|named\s+)?)?(?P<parent>\S.*?)\s+with\b",
    re.IGNORECASE,
)


#: Folders to make inside one, listed before "folders inside": "teams/U8 Cubs, with match reports and
#: photos folders inside".
_WITH_INSIDE = re.compile(
    r"\bwith\s+(?P<list>[\w'-]+(?:\s+[\w'-]+)?(?:\s*,\s*[\w'-]+(?:\s+[\w'-]+)?)*\s*,?\s+and\s+[\w'-]+(?:\s+[\w'-]+)?)"
    r"\s+(?:sub-?)?folders\s+(?:inside|in\s+it|within|in\s+there)\b",
    re.IGNORECASE,
)


def made_inside(request: str) -> list[str]:
    """A folder a request spells with a slash and the folders it lists to make inside it ("set up
    teams/U8 Cubs, with match reports and photos folders inside"): it, then each inside it."""
    found = _WITH_INSIDE.search(request)
    if found is None:
        return []
    before = request[: found.start()].rstrip(" ,")
    spelled = re.search(r"(?:^|\s)(\S*/[^,;:]*)$", before)
    if spelled is None:
        return []
    outer = spelled.group(1).strip(" ./").rstrip("/")
    inner = [name.strip() for name in _MADE_SPLIT.split(found["list"]) if name.strip()]
    names = [outer, *(posixpath.join(outer, name) for name in inner)]
    return names if all(NAME.match(name) and is_changeable(name) for name in names) else []


def made_names(request: str) -> list[str]:
    """The folders a request asks to make, where it lists two or more and nothing else after them."""
    inside = made_inside(request)
    if inside:
        return inside
    found = _MADE.search(request)
    if found is None:
        return []
    names = [name.strip("./").rstrip("/") for name in _MADE_SPLIT.split(found[1])]
    names = [name for name in names if name.lower() not in _FILLER]
    # Folders made in one it makes first: "make orders/mothers day 2026 with two folders in it,
    # preorders and photos" makes orders/mothers day 2026, then each inside it.
    parent = _MADE_WITH.search(request, 0, found.start())
    if names and names[0].lower() in ("in it", "inside it", "in there") and parent is not None:
        outer = parent["parent"].strip("./").rstrip("/")
        names = [outer, *(posixpath.join(outer, name) for name in names[1:])]
    # (A name of several words is no clause: "mkdir keep and move app.log into it" lists no folders.)
    if any(" " in name and name.split()[0].lower() in _ASKS for name in names):
        return []
    if len(names) < 2 or len(set(names)) < len(names) or not all(NAME.match(n) and is_changeable(n) for n in names):
        return []
    return names


#: A folder described by words of its path: "to the shattered crown maps folder", "into the campaign's
#: maps folder", the words between where files go and "folder" (at most four).
_DESCRIBED_FOLDER = re.compile(
    r"\b(?:to|into|in|inside|under|with)\s+(?:the|my|our|your|his|her|their)\s+"
    r"((?:[\w'\u2019-]+\s+){0,3}[\w'\u2019-]+)\s+(?:folder|directory|dir)\b",
    re.IGNORECASE,
)
#: Words of a description that are no part of a folder's name.
_DESCRIPTION_FILLER = frozenset(("the", "a", "an", "of", "for", "and", "new", "old", "other", "same", "right", "main",
                                 "whole", "one"))  # fmt: skip


def _path_words(path: str) -> set[str]:
    return {stem(word) for word in re.findall(r"[^\W_]+", path.lower())}


def described_folders(request: str, folders: list[str], *, most: int = 3) -> list[str]:
    """The folders of ``folders`` that ``request`` describes by words of their paths, of two words
    or more, where it says files go or are: "pictures go to the shattered crown maps folder" is
    ``campaigns/Shattered Crown/maps``, and "into the campaign's maps folder" too, where it is the
    one such folder. A description that every word of more than ``most`` folders holds describes
    none of them; nor does one that names a folder whole (that folder is said, not described)."""
    known = {folder.lower() for folder in folders}
    found: list[str] = []
    for match in _DESCRIBED_FOLDER.finditer(request):
        said = match.group(1).lower()
        words = [stem(re.sub(r"['\u2019]s?$", "", word)) for word in said.split()]
        words = [word for word in words if word and word not in _DESCRIPTION_FILLER]
        if len(words) < 2 or said in known or any(folder.endswith(f"/{said}") for folder in known):
            continue
        # (The deepest folders that hold every word: "campaigns/Shattered Crown/maps", not its parent.)
        holding = [folder for folder in folders if set(words) <= _path_words(folder)]
        holding = innermost(holding)
        if 0 < len(holding) <= most:
            found += holding
    return list(dict.fromkeys(found))


#: A new folder said to be inside another: "into a 2025 folder inside service notes", "make a
#: builds folder in antenna", "into the bible job folder, subfolder called scans", "a folder called
#: chase up inside invoices".
_FOLDER_INSIDE = re.compile(
    r"\b(?:a|an)\s+(?:new\s+)?(?P<name>[\w.-]+)\s+(?:folder|dir|directory|subfolder)\s+"
    r"(?:in|inside|under|within)\s+(?:the\s+|my\s+|our\s+)?(?P<where>[^,.;:!?]+?)"
    r"(?=\s*(?:$|[,.;:!?]|\s(?:and|then|so|please|pls|thx|thanks|folder|dir|directory)\b))"
    r"|\b(?:to|into|in)\s+(?:the\s+|my\s+|our\s+)?(?P<outer>[^,.;:!?]+?)\s+(?:folder|dir|directory),?\s+"
    r"(?:in\s+)?(?:a\s+)?sub-?(?:folder|dir|directory)\s+(?:called\s+|named\s+)?(?P<inner>[\w.-]+)"
    r"|\b(?:a|an)\s+(?:new\s+)?(?:sub-?)?(?:folder|dir|directory)\s+(?:called|named)\s+['\"]?(?P<called>[^,.;:!?'\"/]+?)"
    r"['\"]?\s+(?:in|inside|under|within)\s+(?:the\s+|my\s+|our\s+)?(?P<within>[^,.;:!?]+?)"
    r"(?=\s*(?:$|[,.;:!?]|\s(?:and|then|so|please|pls|thx|thanks|folder|dir|directory)\b))",
    re.IGNORECASE,
)


def folders_inside(request: str, folders: list[str], refs: list[str] | None) -> list[tuple[str, str, str]]:
    """New folders ``request`` says to be inside an existing one of ``folders``, as (the name alone,
    the path inside, the words that say the outer one): "into a 2025 folder inside service notes" is
    ``service notes/2025``. The
    existing one is the folder of that path or name, or the one folder (of ``refs``, those the request
    refers to, first) whose name holds a word of what it says."""
    found: list[tuple[str, str, str]] = []
    said = _folder_finder(folders, refs)
    for match in _FOLDER_INSIDE.finditer(request):
        pairs = (("name", "where"), ("inner", "outer"), ("called", "within"))
        name, where = next((match[a], match[b]) for a, b in pairs if match[a])
        name = " ".join(name.split())
        if name.lower() in _NOT_MADE or where.lower() in ("it", "there", "them"):
            continue
        outer = said(where.strip().lower())
        if outer is not None and is_changeable(inner := posixpath.join(outer, name)):
            found.append((name, inner, where))
    return found


def _folder_finder(folders: list[str], refs: list[str] | None) -> Callable[[str], str | None]:
    """:func:`_said_folder` over ``folders`` and ``refs``, once for each thing said (a request that
    says the same place many times looks through a big workspace once)."""
    return functools.lru_cache(maxsize=256)(lambda where: _said_folder(where, folders, refs or []))


@functools.lru_cache(maxsize=65_536)
def _name_words(name: str) -> frozenset[str]:
    """The words of a folder's ``name``, as :func:`_path_words` reads them (once for each name)."""
    return frozenset(_path_words(name))


def _said_folder(where: str, folders: list[str], refs: list[str]) -> str | None:
    """The existing folder ``where`` says: by its path or name, else the one whose name holds a
    word of it (of ``refs`` first), else None."""
    lowered = where.strip().lower().rstrip("/")
    for folder in folders:
        if folder.lower() == lowered:
            return folder
    if "/" in lowered:  # (a path it spells is that path, or none)
        return None
    named = [folder for folder in folders if posixpath.basename(folder).lower() == lowered]
    if len(named) == 1:
        return named[0]
    words = {stem(word) for word in re.findall(r"[^\W_]+", lowered)} - _DESCRIPTION_FILLER
    for pool in (refs, folders):
        holding = [folder for folder in pool if not words.isdisjoint(_name_words(posixpath.basename(folder)))]
        # (of those it refers to, the innermost: "the wedding folder" of the Sørensen wedding it
        # speaks of is orders/weddings/Sørensen wedding, not orders/weddings)
        if pool is refs:
            holding = innermost(holding)
        if len(holding) == 1:
            return holding[0]
    return None


#: A file's name said with the folder it is to be in: "as inspo.zip in the wedding folder", "a note
#: in the supply teacher folder called cover notes thursday.md".
_NAME_IN_FOLDER = re.compile(
    r"(?<![^\s\"'`])(?P<name>[^\s\"'`/]*\w\.[A-Za-z0-9]{1,8}(?:\.[A-Za-z0-9]{1,4})?)\s+(?:in|inside|into|under)\s+"
    r"(?:the\s+|my\s+|our\s+|her\s+|his\s+|their\s+)?(?P<where>[^,.;:!?]+?)\s+(?:folder|dir|directory)\b"
    r"|\b(?:in|inside|into|under)\s+(?:the\s+|my\s+|our\s+|her\s+|his\s+|their\s+)?(?P<outer>[^,.;:!?]+?)"
    r"(?:\s+(?:folder|dir|directory))?,?\s+(?:called|named)\s+['\"`]?(?P<called>[^\"'`/:;]*\w\.[A-Za-z0-9]{1,8})\b",
    re.IGNORECASE,
)


def names_in_folders(request: str, folders: list[str], refs: list[str] | None) -> list[str]:
    """Paths of the new names ``request`` says with the existing folder they are to be in ("zip the
    pics as inspo.zip in the wedding folder": ``orders/weddings/Sørensen wedding/inspo.zip``)."""
    found = []
    said = _folder_finder(folders, refs)
    for match in _NAME_IN_FOLDER.finditer(request):
        where, name = (match["where"], match["name"]) if match["name"] else (match["outer"], match["called"])
        outer = said(where.strip().lower())
        if outer is not None and is_changeable(path := posixpath.join(outer, " ".join(name.split()))):
            found.append(path)
    return found


#: A file sent to a folder under a new name: "move ALL.TXT from downloads into logbook and call it
#: ALL-2026.txt", "copy report.pdf to archive as report-2025.pdf".
_MOVED_AND_NAMED = re.compile(
    r"(?<![^\s\"'`])(?P<file>[^\s\"'`/]*\w\.[A-Za-z0-9]{1,8})\b.*?\b(?:into|to)\s+(?:the\s+|my\s+)?"
    r"(?P<folder>[^\s,;:!?]+(?:\s+[^\s,;:!?]+)?)\s+(?:(?:and\s+)?(?:call|name|rename)\s+it|as)\s+"
    r"(?P<name>[^\s\"'`/]*\w\.[A-Za-z0-9]{1,8})\b",
    re.IGNORECASE,
)


def moved_and_named(request: str, files: list[str], folders: list[str], refs: list[str] | None) -> dict[str, list[str]]:
    """The new paths ``request`` gives a file it names, sent to a folder under a new name: each
    file of ``files`` of that name, to the new name in that folder (one that exists, said by its
    path or name, or a path it spells)."""
    found: dict[str, list[str]] = {}
    said_folder = _folder_finder(folders, refs)
    for match in _MOVED_AND_NAMED.finditer(request):
        said = match["folder"].rstrip("/")
        folder = said_folder(said.lower()) or (said if "/" in said else None)
        if folder is None or not is_changeable(new := posixpath.join(folder, match["name"])):
            continue
        for path in files:
            if posixpath.basename(path).lower() == match["file"].lower():
                found.setdefault(path, []).append(new)
    return found


#: Several new folders files are sorted into, said as a list: "sort the product photos into
#: journals, sketchbooks and other subfolders", "into cw, ssb and digital folders".
_LISTED_INTO = re.compile(
    r"\b(?:into|to)\s+(?P<list>[\w.&'-]+(?:\s*,\s*[\w.&'-]+)*\s*,?\s+(?:and|&|or)\s+[\w.&'-]+)"
    r"\s+(?:sub-?)?(?:folders|dirs|directories)\b",
    re.IGNORECASE,
)
#: A name for where the files no other folder takes go.
_REST_NAMES = frozenset(("other", "others", "misc", "rest", "everything", "leftovers"))


def sorted_into(request: str, holder: str | None) -> tuple[str, list[str]] | None:
    """The new folders ``request`` sorts files into, said as a list of names before "folders" or
    "subfolders", as paths inside ``holder`` (the one folder the files are in; the top where None):
    the request said with each as a place ("into P/journals, into P/sketchbooks and everything
    else into P/other"), and those paths. None when it says no such list."""
    found = _LISTED_INTO.search(request)
    if found is None:
        return None
    names = [name.strip() for name in re.split(r"\s*,\s*(?:and\s+|&\s+|or\s+)?|\s+(?:and|&|or)\s+", found["list"])]
    names = [name for name in names if name]
    if len(names) < 2 or len(set(names)) < len(names) or not all(NAME.match(name) for name in names):
        return None
    paths = [posixpath.join(holder or "", name) for name in names]
    if not all(is_changeable(path) for path in paths):
        return None
    said = [f"into {path}" for path in paths]
    if names[-1].lower() in _REST_NAMES:
        said[-1] = f"everything else into {paths[-1]}"
    spoken = ", ".join(said[:-1]) + f" and {said[-1]}"
    return request[: found.start()] + spoken + request[found.end() :], paths


#: New places said to be inside the folder the request speaks of: "dxfs into a cad folder and the
#: pdfs into paperwork, both inside that folder".
_INSIDE_THAT = re.compile(
    r"\b(?:(?:both|all|each|them)\s+)?(?:inside|in|within|under)\s+(?:that|this|the\s+same)\s+"
    r"(?:folder|dir|directory)\b",
    re.IGNORECASE,
)
_NEW_PLACE = re.compile(
    r"\b(?:into|to)\s+(?:(?:a|an|the)\s+)?(?:new\s+)?(?P<name>[\w.-]+)(?:\s+(?:folder|dir|directory))?\b", re.IGNORECASE
)


def placed_in_that(request: str, holder: str | None, folders: list[str]) -> tuple[str, list[str]] | None:
    """Where ``request`` says the new places it names go inside the one folder it speaks of
    (``holder``): the request with each said as its path inside it ("into P/cad and the pdfs into
    P/paperwork"), and those paths. None where it says no such thing."""
    if holder is None:
        return None
    known = {folder.lower() for folder in folders} | {posixpath.basename(folder).lower() for folder in folders}
    paths: list[str] = []

    def inside(found: re.Match[str]) -> str:
        name = found["name"]
        if (
            name.lower() in known
            or name.lower() in _NOT_MADE
            or not is_changeable(path := posixpath.join(holder, name))
        ):
            return found.group(0)
        paths.append(path)
        return f"into {path}"

    said = _INSIDE_THAT.search(request)
    if said is None:
        return None
    spoken = _NEW_PLACE.sub(inside, request[: said.start()]) + request[said.start() :]
    return (spoken, paths) if paths else None
