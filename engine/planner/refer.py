"""Which folders, files and kinds of file a request refers to, so that the decoding schema
(:mod:`engine.planner.narrow`) can offer those first and only those.

A small model picks badly among two hundred names: asked for the songs in ``music/`` it writes
``media/**``, and asked about the security notes it writes ``contains: "database"`` because a file
is named so. People refer to a folder or a file by some of its words: ``photos/wedding``, "the
wedding photos", "my tax stuff" (``Documents/taxes``), "the rental contract pdf". So a name is
*referred to* when one of its words (two letters or more, as "db", or a number of three digits or
more) is a word of the request, compared without a plural ending and forgiving one typed letter
("budegt"). A path the request spells out whole refers to that folder or file only, not to its
parents: "photos/wedding" is not a mention of ``photos``.

Each function answers ``None`` when the request refers to nothing of the kind, and the caller
then offers everything, as before: narrowing never leaves the model without the right answer
because the request used words this module does not know.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from engine.planner.kind_words import KIND_STEMS, SPELLED_PATH, kind_exts, names_a_kind
from engine.planner.places import ARCHIVE_NAME, FILE_NAME, REQUEST_TOKEN, referred_targets
from engine.planner.spoken import QUOTED_CHANGE, STARTING_WITH
from engine.planner.values import parent_folders
from engine.planner.words import Request, alike, counted, index_words, name_words, stem, word_keys


def _stem_of(path: str) -> str:
    base = posixpath.basename(path)
    return base.split(".")[0] if not base.startswith(".") else base


def referred_folders(request: str, folders: list[str]) -> list[str] | None:
    """The ``folders`` the request refers to: spelled whole (``pictures/mountains``, ``music/``),
    or by a word of their last part, outside the paths it spells (so ``pictures`` is not one when
    the request says only ``pictures/mountains``, nor ``Documents`` when it says only the new
    ``Documents/pdfs``). A word for a kind of file refers to a folder by its own spelling only."""
    said = Request(request)
    paths = [path for path in (p.strip(".,;:!?'\"()") for p in SPELLED_PATH.findall(request)) if "/" in path.strip("/")]
    by_path = {path.rstrip("/").lower() for path in paths}
    # (A folder at the top spelled with a slash, "dist/", is that one, not another of its name deeper down.)
    slashed = {path.strip(".,;:!?'\"()").rstrip("/").lower() for path in SPELLED_PATH.findall(request)}
    spelled = [folder for folder in folders if ("/" in folder and (said.spells(folder) or folder.lower() in by_path))
               or folder.lower() in slashed]  # fmt: skip
    # A new folder it spells ("into Documents/pdfs") is no mention of its parents either, nor is a
    # file it names ("as music-backup.zip" names no backups/).
    rest = said.without([*spelled, *paths, *(name for name in FILE_NAME.findall(request) if "/" not in name)])
    # A word for a kind of file names a folder only as it is spelled: "photos" is no typo of "porto".
    kinds = {word for word in rest.words if names_a_kind(word)}
    plain = Request(" ".join(word for word in rest.words if word not in kinds))

    def refers(word: str) -> bool:
        return rest.says(word) and (plain.says(word) or any(stem(kind) == stem(word) for kind in kinds))

    found = [folder for folder in folders
             if folder in spelled or any(refers(w) for w in name_words(posixpath.basename(folder)))]  # fmt: skip
    # Folders of one name in several places are those under a folder it refers to, where some are
    # ("ep40 and ep41 ... the raw recordings", "into ep42's raw folder": not every raw/), unless it
    # refers to that folder as where things go ("copy raw into docs" is raw/, not docs/raw/).
    places = referred_targets(request) or set()
    holders = [other for other in found if posixpath.basename(other).lower() not in places]
    held = set(holders)  # (by the folders above each: a workspace may hold thousands a request refers to)
    inside = {folder for folder in found if any(parent in held for parent in parent_folders(folder))}
    kept = {posixpath.basename(folder) for folder in inside}
    found = [folder for folder in found if folder in inside or posixpath.basename(folder) not in kept]
    return found or None


#: A number of several parts: a version ("1.5.0") or a day ("2026-10-03"), not part of a longer one.
_NUMBERED_PARTS = re.compile(r"(?<![\w.-])(\d+(?:[.-]\d+){1,3})(?![\w-]|\.\d)")
#: A file name given after "to", "into" or "as": a new name, or where things go.
GIVEN_NAME = re.compile(
    r"\b(?:to|into|as)\s+([^\s\"'`]*[\w)\]]\.[A-Za-z0-9]{1,8}(?:\.[A-Za-z0-9]{1,4})?)\b", re.IGNORECASE
)


def referred_files(request: str, files: list[str], *, tags: Iterable[str] = ()) -> list[str] | None:
    """The ``files`` the request refers to: named whole (path or name), or by a word of their name
    outside the names it spells ("the rental contract pdf", "the 1099"), outside the other paths it
    spells ("into exports/analytics" is no word of crm-export.tar.gz) and outside the ``tags`` it
    names ("take the draft tag off the budget notes" describes no draft file)."""
    said = Request(request)
    spelled = [path for path in files if said.spells(path) or said.spells(posixpath.basename(path))]
    # (or by a number of parts it says, a version or a day: "the 1.5.0 release notes" is 1.5.0.md,
    # "the 2026-10-03 report" incident_2026-10-03.md)
    numbers = set(_NUMBERED_PARTS.findall(request))
    if numbers:
        stems = {path: posixpath.splitext(posixpath.basename(path))[0] for path in files if path not in spelled}
        spelled += [path for path, stem_of in stems.items() if numbers & set(_NUMBERED_PARTS.findall(stem_of))]
    paths = [path for path in (p.strip(".,;:!?'\"()") for p in SPELLED_PATH.findall(request)) if "/" in path.strip("/")]
    # Nor does a new name it gives ("rename the résumé to resume-2025.docx": no 2025 file), nor any
    # name with an extension that no file has ("call poster.docx v2-poster.docx": no v2 file).
    names = {posixpath.basename(path).lower() for path in files}
    new = [name for name in FILE_NAME.findall(request) if posixpath.basename(name).lower() not in names]
    rest = said.without(
        [*spelled, *(posixpath.basename(p) for p in spelled), *paths, *GIVEN_NAME.findall(request), *new]
    )
    if tags:
        said_tags = "|".join(re.escape(tag) for tag in sorted(set(tags), key=len, reverse=True))
        rest = Request(re.sub(rf"(?<![\w-])(?:{said_tags})(?![\w-])", " ", rest.text, flags=re.IGNORECASE))
    by_key = index_words(rest.words)
    said_of = {path: _said_words(by_key, path) for path in files if path not in spelled}
    # A file that holds only some of the words another holds is not the one described ("the db
    # backup" is db-backup.zip, not config-backup.zip; "the budget review notes" no budget.xlsx).
    # (Words for its own kind do not count there: "the wedding clip" may be wedding-trip.mp4. Words
    # for another kind do: "db" and "backup" are words of the name of db-backup-20250510.zip.)
    plain = {path: frozenset(word for word in words if not _own_kind(word, path)) for path, words in said_of.items()}
    sets = set(plain.values())
    lesser = {words for words in sets if any(words < other for other in sets)}
    found = [path for path in files if path in spelled or (said_of[path] and plain[path] not in lesser)]
    return found or None


def path_ends(path: str) -> list[str]:
    """The ends of ``path`` that name it with one or more of the folders it is in, short of the
    whole path ("a/b/c.txt": b/c.txt)."""
    parts = path.split("/")
    return ["/".join(parts[at:]) for at in range(len(parts) - 2, 0, -1)]


def _own_kind(word: str, path: str) -> bool:
    """Whether ``word`` names the kind of file ``path`` is ("clip" of a.mp4; not "db" of db-backup.zip)."""
    return names_a_kind(word) and posixpath.splitext(path)[1].lower() in kind_exts(word)


def _said_words(by_key: dict[str, set[str]], path: str) -> frozenset[str]:
    """The words of a request (``by_key``: each key of its words, and those words) that the name of
    the file ``path`` holds, forgiving a plural and a typo."""
    return frozenset(word for name in name_words(_stem_of(path)) if counted(name)
                     for key in word_keys(name) for word in by_key.get(key, ()) if alike(name, word))  # fmt: skip


#: A folder said as where files are: "in Documents", "from the Pictures folder", "under Music/".
_IN_FOLDER = re.compile(r"\b(?:in|from|inside|within|under)\s+(?:the\s+|my\s+|our\s+)?([\w.-]+)/?(?![\w/.-])",
                        re.IGNORECASE)  # fmt: skip


def without_folders_in(request: str, folders: Iterable[str]) -> str:
    """``request`` without the names of ``folders`` it says files are in, where such a name is also a
    word for a kind: "everything in Documents" asks for no documents, "the pdfs in docs" for pdfs."""
    names = {posixpath.basename(folder).lower() for folder in folders}

    def blanked(found: re.Match[str]) -> str:
        name = found.group(1)
        if name.lower() not in names or not names_a_kind(name):
            return found.group(0)
        return found.group(0)[: found.start(1) - found.start(0)] + " " * len(name)

    request = _IN_FOLDER.sub(blanked, request)
    # (A name of several words said whole is that folder wherever it is said: "any vet notes that
    # mention ivermectin" are the files in "vet notes", of every kind.)
    lowered = request.lower()
    said = [n for n in names if " " in n and n in lowered and names_a_kind(n.rsplit(" ", 1)[1])]
    for name in sorted(said, key=len, reverse=True):
        request = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", " " * len(name), request, flags=re.IGNORECASE)
    return request


#: The words that say each op, as people say them (a plural, an ending of a letter or two, and one
#: typed letter are forgiven as :meth:`Request.uses` forgives them). Generous on purpose: a word
#: here only lets the model choose the op, and a request that says none of these words is offered
#: every op.
# fmt: off
OP_WORDS: dict[str, tuple[str, ...]] = {
    "move": ("move", "moving", "mv", "put", "place", "relocate", "shift", "transfer", "shove", "stick", "send",
             "gather", "collect", "go", "goes", "belong", "belongs", "hold", "bring", "take",
             "drag", "drop", "dump", "stash", "pull", "sort", "organize", "organise", "tidy", "store", "sweep",
             "out", "rename", "renaming", "call", "called", "name", "named", "consolidate", "group", "split",
             "separate", "arrange", "back"),
    "copy": ("copy", "copies", "copied", "copying", "cp", "duplicate", "clone", "backup", "back", "mirror",
             "replicate", "snapshot"),
    "delete": ("delete", "deleting", "remove", "removing", "rm", "erase", "wipe", "nuke", "discard", "trash",
               "toss", "purge", "clean", "cleanup", "clear", "rid", "drop", "kill", "destroy", "junk", "prune",
               "empty", "bin", "scrap", "ditch", "lose", "dump", "axe", "chuck"),
    "rename": ("rename", "renaming", "renamed", "name", "names", "named", "called", "prefix", "suffix", "number",
               "renumber", "call", "replace", "swap", "change", "dash", "dashes", "underscore", "space", "lowercase",
               "uppercase", "instead", "strip", "fix", "date", "letter"),
    "tag": ("tag", "tags", "tagged", "tagging", "label", "labeled", "labelled", "mark", "marked", "flag",
            "flagged", "star", "starred", "pin", "pinned", "untag", "retag", "add"),
    # Only with a word of "tag" too: "remove" alone is a delete.
    "untag": ("untag", "off", "strip", "remove", "clear", "drop", "delete", "swap", "replace", "change",
              "instead", "without", "unmark", "unlabel", "unflag", "unstar", "unpin", "retag", "anymore",
              "longer", "take"),
    "archive": ("zip", "zipped", "zipping", "archive", "compress", "compressed", "tar", "tarball", "pack",
                "bundle", "backup", "back"),
    "extract": ("extract", "unzip", "unpack", "untar", "decompress", "expand", "inflate", "open", "contents",
                "unarchive", "restore"),
    "write": ("write", "writing", "create", "new", "make", "note", "save", "leave", "say", "says", "saying",
              "containing", "contain", "jot", "text", "reading", "reads"),
    "append": ("append", "add", "jot", "log", "note", "end", "put", "write", "insert", "line"),
    "mkdir": ("make", "create", "new", "folder", "folders", "directory", "directories", "dir", "mkdir", "setup",
              "set"),
}
# fmt: on
#: Words that send files somewhere (a move's or a copy's, not a rename's): after one of them, "in
#: old" may be where files go ("put the utils module in old").
SENDING_WORDS = (
    "move",
    "moving",
    "mv",
    "put",
    "place",
    "relocate",
    "shift",
    "transfer",
    "shove",
    "stick",
    "send",
    "stash",
    "drag",
    "bring",
    "copy",
    "copying",
    "cp",
    "duplicate",
    "clone",
)  # fmt: skip
#: Words of :data:`OP_WORDS` that are as often nouns or small words: alone they say no op.
WEAK_WORDS = frozenset((
    "note", "log", "end", "line", "text", "new", "set", "date", "number", "space", "letter", "name", "names",
    "folder", "folders", "directory", "directories", "dir", "contents", "out", "fix", "open", "empty", "bin",
    "say", "says", "reads", "reading",
))  # fmt: skip
_ARROW = re.compile(r"->|=>|\u2192")
#: "file" said as a verb ("file the pdfs under docs"), not as a noun ("a new file notes.md").
_FILE_VERB = re.compile(
    r"\bfile\s+(?:the|my|all|every|these|those|them|it|everything|this|each|any|away|last|past|previous)\b",
    re.IGNORECASE,
)
_QUOTE = re.compile(r"(?:^|(?<=\s))([\"'`]).+?\1")
#: Files that "can go", "can all go now": said of files to delete, where no place follows.
_GONE = re.compile(
    r"\b(?:can|could|should|may|must)\s+(?:all\s+|both\s+)?go\b(?:\s+now\b)?"
    r"(?!\s+(?:to|into|in|inside|under|with|back|on|onto|over|through|where)\b)",
    re.IGNORECASE,
)


#: Words that tag when said as verbs ("tag it done", "mark them urgent"); said after an article
#: ("the draft tag", "a label") they name a tag instead. And words that say a tag goes on while
#: another comes off ("swap the todo tag for done").
_TAGGING = frozenset(("tag", "tags", "label", "labels", "mark", "flag", "star", "pin", "tagging", "labelling"))
_RETAGGING = frozenset(("retag", "add", "swap", "replace", "change", "instead", "as", "with", "put", "gets", "get",
                        "give", "gives"))  # fmt: skip
_OFF = frozenset(("off", "strip", "remove", "untag", "unmark", "unlabel", "unflag", "unstar", "unpin", "without",
                  "anymore", "longer", "drop", "delete", "clear", "take"))  # fmt: skip
_DETERMINERS = frozenset(("the", "a", "an", "that", "this", "its", "their", "any", "every", "each", "my", "no"))


def _tags_on(request: str) -> bool:
    """Whether a request that speaks of a tag coming off ("strip the draft tag off") also puts one
    on: a word of :data:`_TAGGING` said as a verb, a word of :data:`_RETAGGING`, or no word of
    taking off at all."""
    tokens = [token.strip(".'\"").lower() for token in REQUEST_TOKEN.findall(FILE_NAME.sub(" ", request))]
    if not any(token in _OFF for token in tokens):
        return True
    for at, token in enumerate(tokens):
        if token in _RETAGGING:
            return True
        named = (at and tokens[at - 1] in _DETERMINERS) or (at > 1 and tokens[at - 2] in _DETERMINERS)
        if token in _TAGGING and not named:
            return True
    return False


#: An op said not to be done: "dont delete them", "without deleting the originals".
_NEGATED = re.compile(r"\b(?:don'?t|do\s+not|never|without|no\s+need\s+to)\s+(?:\w+ly\s+)?([a-z]+)", re.IGNORECASE)
#: An op said as done already: "Mrs Jennings has moved away", "I've zipped them already".
_DONE = re.compile(r"(?:\b(?:has|have|had)|'s|'ve|'d)\s+(?:already\s+|just\s+|now\s+)?(?:been\s+)?([a-z]+ed)\b",
                   re.IGNORECASE)  # fmt: skip
#: "leave anything else alone", "leaving the rest": a "leave" that writes nothing.
_LEFT_ALONE = re.compile(
    r"\bleav(?:e|ing)\b(?=(?:\s+[^\s.;,!?]+){0,4}?\s+(?:alone|untouched|be|as\s+(?:it|they)\s+(?:is|are))\b)"
    r"|\bleav(?:e|ing)\b(?=\s+(?:the\s+rest|everything\s+else|anything\s+else|all\s+else|the\s+others?)\b)",
    re.IGNORECASE,
)
#: A tag taken off ("drop the to-edit tag from them"): its verb deletes and moves nothing.
TAG_TAKEN_OFF = re.compile(
    r"\b(?:remove|strip|clear|drop|take|untag|delete|get\s+rid\s+of)\s+(?:the\s+|that\s+|this\s+|any\s+)?"
    r"(?:#?[\w-]+\s+)?(?=(?:tag|label)s?\b)",
    re.IGNORECASE,
)


#: A new file or folder given its name: "a note in the supply teacher folder called cover notes.md"
#: names it, renames nothing.
_NEW_CALLED = re.compile(r"\b(?:new|a|an)\s+(?:\w+\s+)?(?:note|file|doc|document|folder|subfolder|list|sheet)"
                         r"(?:\s+(?:in|inside|under)\s+[^,.;:!?]+?)?\s+(called|named)\b", re.IGNORECASE)  # fmt: skip
#: "duplicate" after an article or as a plural: what a file is, not a copy to make.
_DUPLICATE_NOUN = re.compile(r"(\b(?:the|a|an|any|all|my|those|these)\s+)?\b(duplicates?)\b", re.IGNORECASE)
#: A kind of file sent to a place, in a list of such: "zips to Downloads/zips", "pngs and jpgs into images".
_KINDS_SENT = re.compile(r"(?:^|[,;.:]\s+|\band\s+|\s-\s+)(?:the\s+|all\s+)?([a-z0-9]+s)(?:\s+(?:and|&)\s+[a-z0-9]+s)?"
                         r"\s+(?:go\s+)?(?:to|into|in)\s+(?=\S)", re.IGNORECASE)  # fmt: skip


def _blanked(found: re.Match[str]) -> str:
    return " " * len(found.group(0))


def unsaid(request: str) -> str:
    """``request`` with the words that say an op blanked where they ask for none: after a negation
    ("dont delete them"), "leave" in "leave anything else alone", "duplicate" said of what a file
    is ("delete the duplicate members export"), and "called" said of a new one ("a new note called x.md")."""
    request = _LEFT_ALONE.sub(_blanked, _NEGATED.sub(_blanked, _DONE.sub(_blanked, request)))
    request = _NEW_CALLED.sub(lambda found: found[0][: found.start(1) - found.start(0)] + " " * len(found[1]), request)
    return _DUPLICATE_NOUN.sub(lambda found: (found[1] or "") + " " * len(found[2])
                               if found[1] or found[2].lower().endswith("s") else found[0], request)  # fmt: skip


#: A new file said by its kind: "new file todo.md", "a new note", "new empty text file".
_NEW_FILE = re.compile(
    r"\bnew\s+(?:(?:empty|blank|text|markdown|md)\s+){0,2}(?:file|note|doc|document)\b", re.IGNORECASE
)


def referred_ops(request: str) -> set[str] | None:
    """The ops a plan for the request may use: those whose words it says (:data:`OP_WORDS`; in file
    names they do not count, so "hw2-solutions.zip" asks for no zip), with what each implies: an
    arrow is a move or a rename; a rename of one file is a move; a move may sort files (classify);
    an extract makes its folder first; a new archive name asks for an archive (two a rename says are
    an old name and a new one), and quoted text for a write. None when it says no such word, or
    only words that are as often nouns ("my notes")."""
    # ("... can go", going nowhere, is a delete: "the recordings older than a month can go")
    request = _GONE.sub(" delete ", unsaid(request))
    # (Words it quotes ask for nothing: "they all start with 'log '" logs nothing.)
    unquoted = _QUOTE.sub(lambda found: found[1] + " " * (len(found[0]) - 2) + found[1], request)
    said = Request(FILE_NAME.sub(" ", unquoted))
    # (The verb that takes a tag off says an untag only.)
    others = Request(FILE_NAME.sub(" ", TAG_TAKEN_OFF.sub(_blanked, unquoted)))
    ops = {op for op, words in OP_WORDS.items() if (said if op in ("tag", "untag") else others).uses(words)}
    # Only nouns that are also an op's words ("my notes", "the logs", "a new folder") say no op.
    ops = ops if said.uses(word for words in OP_WORDS.values() for word in words if word not in WEAK_WORDS) else set()
    if "tag" not in ops:
        ops.discard("untag")
    elif "untag" in ops and not _tags_on(request):
        ops.discard("tag")  # "take the draft tag off": the tag is a noun, nothing is tagged
    if _ARROW.search(request) or _FILE_VERB.search(request):
        ops |= {"move", "rename"}
    # Kinds sent to places one after another sort files ("zips to Downloads/zips, pdfs to ..."): a
    # kind said so ("zips") packs nothing.
    if len(_KINDS_SENT.findall(request)) >= 2:
        packs = Request(FILE_NAME.sub(" ", _KINDS_SENT.sub(" , ", request))).uses(OP_WORDS["archive"])
        ops = (ops if packs else ops - {"archive"}) | {"move", "classify"}
    if "rename" in ops or "move" in ops:
        ops |= {"move", "classify"}
    if "extract" in ops:
        ops.add("mkdir")
    elif ARCHIVE_NAME.search(request) and not ("rename" in ops and _renamed_archive(request)):
        ops.add("archive")
    # (Not text it quotes as what names hold: "they start with 'log '", "change 'rota' to 'vol rota'".)
    if _QUOTE.search(STARTING_WITH.sub(" ", QUOTED_CHANGE.sub(" ", request))):
        ops |= {"write", "append"}
    # A new file asks for a write ("new file todo.md in the thesis folder with: ...").
    if _NEW_FILE.search(request):
        ops.add("write")
    # A file added by its name may be a new one ("add bugreport/versions.txt with the line: ...").
    if "append" in ops and ADDED_FILE.search(request):
        ops.add("write")
    return ops or None


def _renamed_archive(request: str) -> bool:
    """Whether a request that renames says two archive names, an archive's old name and its new one
    ("call data-final.zip copy-of-data-final.zip", "rename old.zip to new.zip"): no archive is made."""
    return sum(1 for name in FILE_NAME.findall(request) if ARCHIVE_NAME.search(name)) >= 2


#: A file added by name: "add a README.md", "put notes/todo.txt in with ...".
ADDED_FILE = re.compile(
    rf"\b(?:add|put|drop|include)\s+(?:(?:a|an|the|new|file)\s+)*{FILE_NAME.pattern}", re.IGNORECASE
)


#: Words after which a folder is where files go, not where they are ("into archive", "goes in old").
_TO_WORDS = frozenset(("to", "into", "onto", "->", "=>", "\u2192", "under"))
_GOES = frozenset(("goes", "go", "belong", "belongs", "them", "it", "put"))
#: Words after which a folder is one to leave alone ("but leave Backups alone", "except logs/archive").
_SPARE_WORDS = frozenset(("leave", "except", "not", "but", "touch", "skip", "keep"))
_FROM_WORDS = frozenset(("in", "from", "inside", "within", "of", "under"))
#: Ops that put files somewhere: a folder said after "under" or "in" may be where they go.
_PUTTING = frozenset(("move", "copy", "classify", "archive", "extract", "mkdir", "write"))
#: Joins the words of a folder's name into one token while a request is read.
_JOINED = "\ue000"
_EVERY = frozenset(("all", "every", "everything", "each", "any", "anywhere", "everywhere"))
#: Words said of names: "whose names start with Screenshot", "named", "called".
_NAMES = re.compile(r"\b(?:names?|named|called|start(?:s|ing)?|begin(?:s|ning)?)\b", re.IGNORECASE)


def takes_from_folder(request: str, folders: list[str]) -> bool:
    """Whether the request says one of the ``folders`` it refers to (:func:`referred_folders`) where
    files are taken from: "the pdfs in docs", "the japan trip photos", "zip the thesis folder". A
    folder said after "to", "into" or "goes in" is where files go, one said after "leave" or "except"
    is left alone, and a word that names a kind of file ("logs", "videos") names the kind, not a
    folder. The caller then selects within such a folder instead of everywhere (``**``)."""
    referred = referred_folders(request, folders)
    if not referred:
        return False
    lowered = [folder.lower() for folder in referred]
    words = [word for folder in referred for word in name_words(posixpath.basename(folder))]
    # A folder's name of several words is one token ("in honey sales/receipts").
    said = request.lower()
    for folder in sorted((f for f in lowered if " " in f and f in said), key=len, reverse=True):
        said = re.sub(rf"(?<![\w/]){re.escape(folder)}(?![\w/])", folder.replace(" ", _JOINED), said)
    tokens = [token.strip(".'\"").rstrip("/").replace(_JOINED, " ") for token in REQUEST_TOKEN.findall(said)]
    # A request that puts nothing anywhere (it renames, deletes or tags) says where files are after
    # "under" or "in": "the file names under site/", "rename my chapter files ..., all of them in
    # manuscript".
    # (Words for renaming also allow a move: "rename ... to docs/x.md". An arrow or "file them
    # under" is a move.)
    ops = referred_ops(request)
    renames = ops is not None and "rename" in ops and not (_ARROW.search(request) or _FILE_VERB.search(request))
    stays = ops is not None and not (ops - {"move", "classify"} if renames else ops) & _PUTTING
    # A kind said without "every" or "all" that is a folder's whole name is that folder: "last
    # month's screenshots" are those in Pictures/Screenshots, "the videos" those in Videos.
    whole = not _EVERY.intersection(tokens) and not _NAMES.search(request)
    named = {stem(posixpath.basename(folder)) for folder in lowered} if whole else set()
    for at, token in enumerate(tokens):
        if not token:
            continue
        before = tokens[at - 1] if at else ""
        earlier = tokens[at - 2] if at > 1 else ""
        # A word that names a kind names a folder only where a folder is said: "in Music".
        # (A word of the folder's own name, as spelled, is the folder: "the porto pics" is Pictures/porto-2025,
        # though "porto" is one letter from "photo".)
        kind = "/" not in token and names_a_kind(token)
        kind = kind and (stem(token) in KIND_STEMS or stem(token) not in {stem(w) for w in words})
        if kind and before not in _FROM_WORDS and stem(token) not in named:
            continue
        after = tokens[at + 1] if at + 1 < len(tokens) else ""
        if after in ("tag", "tags") or token.endswith("-tagged"):  # "the work tag": a tag, not Documents/work
            continue
        if not (token in lowered or ("/" not in token and Request(token).uses(words))):
            continue
        if stays and (before in _FROM_WORDS or (before in ("the", "my") and earlier in _FROM_WORDS)):
            return True
        if before in _TO_WORDS or (before in ("the", "my") and earlier in _TO_WORDS):
            continue
        if (before == "in" and earlier in _GOES) or _SPARE_WORDS.intersection(tokens[max(0, at - 4) : at]):
            continue
        return True
    return False
