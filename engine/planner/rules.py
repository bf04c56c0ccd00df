"""A rule-based parser of file-management requests: the baseline the learned planner is compared with.

It reads common English phrasings with regular expressions and keyword tables, resolves the names
it finds against the workspace's entries (which words are folders, which are files, which tags
exist) and writes plans with the conventions of :mod:`engine.planner.requests`: a folder is
``folder/**``, a kind of file an ``ext`` list, "older than a month" ``modified_before`` ``30d``,
"from 2025" the calendar year, "big" ``larger_than`` ``10MB``, one file moved into a folder
``paths`` and ``to``. It reads only the request and the entries, never a gold plan. A request it
does not understand, or one that file operations cannot do, gets no steps. It does not sort a
folder into several (``classify``), and it does not correct typos: a misspelt verb is not read.

A clause is read in passes: each rule that recognises something (a destination, an age, a topic)
marks that span of text as read, so that later rules see only the rest; what is left names the
source folder and the kind of file.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.planner.prompt import MAX_GOAL, MAX_STEPS, ViewEntry
from engine.planner.values import parent_folders
from engine.plans.model import plan_problems

Step = dict[str, Any]
F = re.IGNORECASE
#: Requests are cut here: past it, nobody is asking for one thing.
MAX_CHARS = 2000
#: Verbs tried in one clause: past a few, the clause is not a request this parser reads.
MAX_VERBS = 6
IMAGES = [".jpg", ".jpeg", ".png", ".heic", ".gif"]

# fmt: off
#: Extensions a request names ("pdfs", ".log files", "PNGs").
NAMED_EXT = re.compile(r"(?<![\w/.\-])\.?(pdf|jpe?g|png|heic|gif|log|md|csv|tmp|bak|zip|mp4|mov|mkv|mp3|wav|txt"
                       r"|docx|xlsx|py|json|html)s?(?![\w/\-]|\.\w)", F)
#: Kinds of file by what people call them, read when no extension is named.
KINDS: list[tuple[str, list[str]]] = [
    (r"photos?|images?|pictures?|pics", IMAGES), (r"videos?|clips?|movies?", [".mp4", ".mov", ".mkv"]),
    (r"logs?", [".log"]), (r"notes?|markdown", [".md"]), (r"temp(?:orary)? files?", [".tmp"]),
    (r"songs?|music|tracks?", [".mp3"]), (r"text files?", [".txt"]), (r"word (?:documents?|files?|docs)", [".docx"]),
    (r"python(?: files?)?|scripts?", [".py"]), (r"spreadsheets?", [".csv", ".xlsx"]),
    (r"archives", [".zip", ".tar.gz", ".tgz", ".tar.xz"]),
]
KIND = re.compile(r"(?<![\w/.\-])(?:" + "|".join(pattern for pattern, _ in KINDS) + r")(?![\w/\-])", F)
EXT_ALIASES = {"jpg": [".jpg", ".jpeg"], "jpeg": [".jpg", ".jpeg"]}
ARCHIVE_NAME = re.compile(r"\.(?:zip|tar\.gz|tgz|tar\.xz|tar\.bz2|tar)$", F)
PATH = r"[^\s,;:!?()'\"]+"
TOKEN = re.compile(PATH)
QUOTED = re.compile(r"(?<!\w)(['\"])(.+?)\1(?!\w)")
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}
UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
#: Words that never name a folder.
STOPWORDS = {"the", "a", "an", "all", "every", "each", "them", "it", "this", "that", "these", "those", "front", "one",
             "ones", "my", "your", "order", "name", "names", "me", "us", "workspace", "everything", "anything",
             "files", "file", "folder", "please", "thanks", "thx", "asap"}
#: Requests about code, mail, travel...: nothing a file operation does.
NOT_FILES = re.compile(r"\b(?:functions?|refactor\w*|implement\w*|unit tests?|failing|tests? for|weather|e-?mails?"
                       r"|flights?|install|github|git|commits?|push|pull request|debug|compile|explain|pagination"
                       r"|deploy)\b|(?<!\S)--[\w-]+", F)
JOINER = re.compile(r"\s*(?:,\s*(?:and\s+)?then\b|\band\s+then\b|;\s*(?:also\b|then\b)?|[.!?]+(?=\s|$)(?:\s+(?:then"
                    r"|also|after that|next|afterwards)\b,?)?|\n+|,?\s+and\s+(?=(?:then\s+)?(?:put|move|file|copy"
                    r"|delete|remove|archive|zip|tag|place|store)\s+(?:them|those|these|it)\b))\s*", F)
PREFIX = re.compile(r"^(?:please|pls|plz|kindly|could you|can you|would you|will you|hey|hi|ok|okay|quick one|just"
                    r"|i need you to|i'd like you to|i want you to|help me|go ahead and)\b[\s,:!]*", F)
POLITE = r"\b(?:please|pls|plz|thanks in advance|thanks|thank you|thx|asap|when you get a chance)\b"
SUFFIX = re.compile(rf"(?:[\s,.!:;)\-]|{POLITE}|:\))+$", F)
DEST = rf"\b(?:into|to|in|inside|under|onto)\s+(?:the\s+(?:folder|directory)\s+)?(?P<d>{PATH})"
DEST_BEFORE = re.compile(r"\b(?:into|to|onto)\s+$", F)
SOURCE_BEFORE = re.compile(r"\b(?:in|from|under|of|inside|within|out of)\s+(?:the\s+(?:folder\s+|directory\s+)?)?$", F)
SIZE = (r"\b(?P<dir>bigger|larger|greater|more|over|above|exceeding|smaller|less|under|below)(?:\s+than)?\s+"
        r"(?P<n>\d+(?:\.\d+)?)\s*(?P<u>[kmgt]?i?b|bytes?)\b")
AGE = (r"\b(?:(?P<old>older than|more than|over|not (?:been )?(?:touched|modified|changed|edited|opened|used)(?: in)?"
       r"(?: the)?(?: last| past)?)|(?:from|in|within|during|modified|changed|edited) (?:the |this )?(?:last|past)"
       r"|newer than|less than)\s+(?P<n>\d+|an?|one|two|three|four|six)?\s*(?P<unit>day|week|month|year)s?\b"
       r"(?:\s+(?:old|ago))?")
YEAR = r"(?<![\w/.\-])(?P<y>(?:19|20)\d\d)(?:'s)?(?![\w/\-]|\.\w)"
TAGGED = (r"\b(?:tagged|labell?ed)\s+(?:as\s+|with\s+)?#?(?P<a>[\w-]+)|\bwith\s+(?:the\s+|a\s+)?(?:tag\s+)?#?"
          r"(?P<b>[\w-]+)\s+tag\b|(?<!\S)#(?P<c>[\w-]+)")
CONTAINS = (r"\b(?:mention(?:s|ing|ed)?|(?:talk|talks|talking)\s+about|about|contain(?:s|ing)?|regarding|referencing"
            r"|with\s+the\s+(?:word|text))\s+(?:the\s+(?:word\s+)?)?['\"]?(?P<w>[\w-]+)")
#: "the budget notes": notes about the budget.
TOPIC_NOTES = r"\b(?:the|all|every|my|any)\s+(?P<w>[a-z][\w-]*)\s+(?:notes?|docs)\b"
NOT_TOPIC = {"old", "older", "new", "newer", "recent", "big", "large", "huge", "tiny", "small", "first", "last",
             "other", "remaining", "markdown", "md", "text", "meeting", "tagged", "these", "those", "all", "every",
             "same", "following", "my"}
NAME_START = (r"\bnames?\s+(?:that\s+)?(?:start|starts|starting|begin|begins|beginning)\s+with\s+['\"]?"
              r"(?P<p>[^\s'\"]+?)['\"]?(?=\s|$)|\b(?:named|called)\s+['\"]?(?P<q>[^\s'\"*]+?)\*")
# Only the count is read: "take" may be the clause's verb.
LIMIT = r"(?:(?<=first )|(?<=take )|(?<=only )|(?<=just ))(?P<n>\d+|two|three|four|five|six|ten)\b"
EXCEPT = (r"\b(?:except(?:\s+for)?|but\s+not|apart\s+from|other\s+than|excluding|but\s+leave)\s+(?:the\s+ones\s+"
          rf"|those\s+|the\s+files\s+|anything\s+)?(?:in\s+|under\s+|inside\s+|from\s+)?(?P<f>{PATH})"
          r"|\bleave\s+(?P<g>\S+)\s+alone")
KEEP_TREE = r"\b(?:structure|subfolders|sub-folders|subdirectories|tree|hierarchy|layout|its folders)\b"
REMOVE_ORIGINALS = r"\b(?:delete|remove|removing|deleting|trash)\w*\s+(?:them|the originals|originals|the files)\b"
BACK_REF = r"\b(?:them|those|these|it|the originals|the files)\b"
#: Verbs of the ops that act on a selection, tried in the order they come in a request.
VERBS: list[tuple[str, str]] = [
    ("extract", r"unpack|extract|unzip|decompress|untar|open up|expand"),
    ("archive", r"zip(?: up)?|archive|compress|pack(?: up)?|tar(?: up)?|make an? archive|create an? archive"),
    ("tag", r"tag|label|mark"),
    ("delete", r"deleted?|removed?|trash(?:ed)?|erased?|purged?|rm|get rid of|clean (?:out|up)|throw (?:away|out)"
               r"|wiped?"),
    ("copy", r"copy|copied|cp|duplicated?|cloned?|back ?up|mirror(?:ed)?|make (?:a )?cop(?:y|ies)"),
    ("move", r"moved?|mv|put|relocated?|gather(?: up)?|collect(?:ed)?|take|file|shift(?:ed)?|transfer(?:red)?|place"
             r"|store|go(?:es)?(?= (?:in|into|to)\b)|belongs?(?= (?:in|to)\b)"),
]
WRITES: list[tuple[str, str]] = [
    ("append", r"\b(?:append|add)\s+(?:a\s+|the\s+)?(?:line\s+|text\s+)?:?\s*(?P<t>'[^']+'|\"[^\"]+\")\s+to\s+"
               rf"(?P<p>{PATH})"),
    ("append", rf"\bappend\s+(?P<t>.+?)\s+to\s+(?P<p>{PATH})\s*$"),
    ("append", rf"\bat\s+the\s+end\s+of\s+(?P<p>{PATH}),?\s+(?:write|add|put|append)?\s*:?\s*(?P<t>.+)$"),
    ("write", r"\b(?:create|make|write|add)\s+(?:a\s+)?(?:new\s+)?(?:file\s+)?(?:called\s+|named\s+)?(?P<p>[\w.\-/]+"
              r"\.\w+)\s+(?:with\s+(?:the\s+)?(?:text|content|contents|line)|that\s+says|saying|containing|with)\s*:?\s*"
              r"(?P<t>.+)$"),
    ("write", rf"\bwrite\s+(?P<t>'[^']+'|\"[^\"]+\")\s+(?:in)?to\s+(?:a\s+)?(?:new\s+)?(?:file\s+)?(?P<p>{PATH})"),
    ("write", rf"\bnew\s+file\s+(?P<p>{PATH})\s*:\s*(?P<t>.+)$"),
]
MKDIR = (r"\b(?:mkdir(?:\s+-p)?|(?:make|create|add)\s+(?:a\s+|an\s+|the\s+|some\s+)?(?:new\s+|empty\s+)*(?:folders?"
         r"|director(?:y|ies)|dirs?)|new\s+(?:folders?|director(?:y|ies)))(?:\s+(?:called|named))?\s*:?\s+")
RENAME_ONE = [rf"\brename\s+(?P<a>{PATH})\s+(?:to|as|into)\s+(?P<b>{PATH})",
              rf"\bcall\s+(?P<a>{PATH})\s+(?P<b>{PATH})",
              rf"(?P<a>{PATH})\s+should\s+be\s+(?:named|called|renamed(?:\s+to)?)\s+(?P<b>{PATH})"]
CHARS = {"space": " ", "spaces": " ", "underscore": "_", "underscores": "_", "dash": "-", "dashes": "-",
         "hyphen": "-", "hyphens": "-", "dot": ".", "dots": ".", "nothing": ""}
CHAR_WORD = r"'[^']+'|\"[^\"]+\"|spaces?|underscores?|dash(?:es)?|hyphens?|dots?|nothing"
UNTAG = [r"\b(?:remove|delete|drop|clear|strip)\s+(?:the\s+)?['\"#]?(?P<t>[\w-]+)['\"]?\s+tags?\b",
         r"\b(?:remove|delete|drop|clear|strip)\s+(?:the\s+)?tag\s+['\"#]?(?P<t>[\w-]+)",
         r"\buntag\s+['\"#]?(?P<t>[\w-]+)"]
TAG_AS = [r"\b(?:tag|label|mark)\s+(?P<sel>.+?)\s+(?:as|with)\s+(?:the\s+tag\s+)?['\"#]?(?P<t>[^\s,;:!?'\"]+)",
          r"\badd\s+(?:the\s+|a\s+)?tag\s+['\"#]?(?P<t>[^\s,;:!?'\"]+)\s+to\s+(?P<sel>.+)"]
MATCH_ORDER = ("glob", "exclude", "ext", "name_regex", "contains", "larger_than", "smaller_than", "modified_after",
               "modified_before", "tag", "limit")
# fmt: on


@dataclass(frozen=True)
class Workspace:
    """The names a request can mean: every file, every folder (with the folders above each), every tag."""

    files: frozenset[str]
    folders: frozenset[str]
    tags: frozenset[str]

    @classmethod
    def of(cls, entries: list[ViewEntry]) -> Workspace:
        files = {entry.path for entry in entries if not entry.is_dir}
        folders = {entry.path for entry in entries if entry.is_dir}
        folders.update(parent for path in list(files | folders) for parent in parent_folders(path))
        return cls(frozenset(files), frozenset(folders), frozenset(tag for entry in entries for tag in entry.tags))

    def file(self, token: str) -> str | None:
        """The file ``token`` names: its path, or a name only one file has ("report.pdf")."""
        if token in self.files:
            return token
        found = [path for path in self.files if posixpath.basename(path) == token] if "/" not in token else []
        return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Selection:
    """What a step acts on: files by name, or a match."""

    paths: tuple[str, ...]
    match: tuple[tuple[str, Any], ...]

    @property
    def generic(self) -> bool:
        return not self.paths and self.match == (("glob", "**"),)

    def keys(self) -> Step:
        return {"paths": list(self.paths)} if self.paths else {"match": dict(self.match)}


@dataclass
class Clause:
    """One request of a joined request, with the spans of its text that rules have read."""

    text: str
    ws: Workspace
    today: dt.date
    previous: Selection | None
    used: list[tuple[int, int]] = field(default_factory=list)
    selection: Selection | None = None

    def free(self, start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in self.used)

    def find(self, pattern: str, accept: Callable[[re.Match[str]], bool] = lambda _: True) -> re.Match[str] | None:
        """The first match of ``pattern`` in unread text that ``accept`` takes; its text is then read."""
        for found in re.finditer(pattern, self.text, F):
            if self.free(*found.span()) and accept(found):
                self.used.append(found.span())
                return found
        return None

    def unread(self) -> str:
        return _blank(self.text, self.used)

    def tokens(self) -> list[tuple[int, int, str]]:
        return [(m.start(), m.end(), _clean(m.group())) for m in TOKEN.finditer(self.text) if self.free(*m.span())]


def parse_request(request: str, entries: list[ViewEntry], today: dt.date) -> dict[str, Any]:
    """Return a plan dict {"version": 1, "goal": str, "steps": [...]} for ``request`` over a workspace whose
    entries are ``entries``. A request it does not understand gets {"version": 1, "goal": "not understood: ...",
    "steps": []}. Every plan it returns is a valid planner reply; it never raises on text."""
    text = re.sub(r"[\x00-\x09\x0b-\x1f\x7f]", " ", str(request)[:MAX_CHARS])
    ws = Workspace.of(entries)
    steps: list[Step] = []
    previous: Selection | None = None
    for part in _split(text):
        clause = Clause(_polite(part), ws, today, previous)
        found = _parse_clause(clause)
        # "zip docs into docs.zip, then delete them": the archive removes what it packed.
        again = clause.selection is not None and clause.selection is previous
        if found and found[0]["op"] == "delete" and again and steps and steps[-1]["op"] == "archive":
            steps[-1]["remove"], found = True, []
        steps += [step for step in found if not plan_problems({"version": 1, "steps": [step]})]
        if clause.selection is not None and not clause.selection.generic:
            previous = clause.selection
    steps = steps[:MAX_STEPS]
    goal = "; ".join(_describe(step) for step in steps) if steps else f"not understood: {' '.join(text.split())}"
    return {"version": 1, "goal": goal.encode("utf-8", "replace").decode("utf-8")[:MAX_GOAL], "steps": steps}


def _describe(step: Step) -> str:
    what = step.get("path") or step.get("from") or ", ".join(step.get("paths", [])) or step["match"]["glob"]
    return f"{step['op']} {what}" + (f" to {step['to']}" if "to" in step else "")


def _clean(token: str) -> str:
    return token.rstrip("./")


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    return [found.span() for found in QUOTED.finditer(text)]


def _split(text: str) -> list[str]:
    """The requests joined in ``text`` (", then", ". Then", "; also", "and move them ..."), quotes kept whole."""
    quoted = _quoted_spans(text)
    parts, start = [], 0
    for found in JOINER.finditer(text):
        if not any(a <= found.start() < b for a, b in quoted):
            parts.append(text[start : found.start()])
            start = found.end()
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _polite(text: str) -> str:
    while (found := PREFIX.match(text)) and found.end() > 0:
        text = text[found.end() :]
    return SUFFIX.sub("", text)


def _prose(c: Clause) -> str:
    """The clause with names blanked: paths, quotes, and existing names after a preposition ("into archive")."""
    spans = _quoted_spans(c.text)
    for start, end, token in c.tokens():
        after = SOURCE_BEFORE.search(c.text[:start]) or DEST_BEFORE.search(c.text[:start])
        if re.search(r"[/._\d]", token) or (after and (token in c.ws.folders or token in c.ws.files)):
            spans.append((start, end))
    return _blank(c.text, spans)


def _parse_clause(c: Clause) -> list[Step]:
    prose = _prose(c)
    if NOT_FILES.search(prose):
        return []
    for parser in (_write, _mkdir, _rename, _untag):
        c.used = []
        if (steps := parser(c)) is not None:
            return steps
    # The first verb wins, the longer of two at one place ("make a copy" over "make"); one that finds
    # too little ("zip files ... go into old": no archive named) gives way to the next.
    verbs = [
        (m.start(), -len(m.group()), op) for op, pattern in VERBS for m in re.finditer(rf"\b(?:{pattern})\b", prose, F)
    ]
    for start, length, op in sorted(verbs)[:MAX_VERBS]:
        c.used = [(start, start - length)]
        if steps := OPS[op](c, prose[start : start - length].lower()):
            return steps
    return []


# -- what a step acts on ------------------------------------------------------------------------


def _exts(text: str) -> list[str]:
    """The extensions ``text`` names, else those of the kinds of file it names."""
    found = [ext for m in NAMED_EXT.finditer(text) for ext in EXT_ALIASES.get(m[1].lower(), [f".{m[1].lower()}"])]
    if not found:
        for m in KIND.finditer(text):
            found += next(exts for pattern, exts in KINDS if re.fullmatch(pattern, m.group(), F))
    return list(dict.fromkeys(found))


def _count(word: str | None) -> int:
    """A count written as digits or a word ("a week", "3 days"); one when not given."""
    return int(word) if word and word.isdigit() else NUMBERS.get((word or "a").lower(), 1)


def _dest(c: Clause) -> str | None:
    """The folder a request moves things to: the last name after into/to/in/under that is not a word, a file, a
    size or a bare number."""

    def fits(name: str) -> bool:
        sized = re.fullmatch(r"\d+(?:\.\d+)?[kmgt]?i?b", name, F) or (name.isdigit() and name not in c.ws.folders)
        plain = re.fullmatch(r"\w[\w.\-/]*", name) and name.lower() not in STOPWORDS
        return bool(plain) and c.ws.file(name) is None and not sized

    found = [m for m in re.finditer(DEST, c.text, F) if c.free(*m.span()) and fits(_clean(m["d"]))]
    c.used += [found[-1].span()] if found else []
    return _clean(found[-1]["d"]) if found else None


def _source(c: Clause) -> str | None:
    """The folder a request acts in: one named after in/from/under/of, else any; a kind word that is also a folder
    ("zip logs") only when nothing else is named, and never after an article ("the logs" are files of a kind)."""
    ranked = []
    for start, end, token in c.tokens():
        kind = KIND.fullmatch(token) is not None
        if token not in c.ws.folders or (
            kind and re.search(r"\b(?:the|all|every|any|my|those|these)\s+$", c.text[:start], F)
        ):
            continue
        ranked.append((0 if SOURCE_BEFORE.search(c.text[:start]) else 2 if kind else 1, start, end, token))
    if not ranked:
        return None
    _, start, end, token = min(ranked)
    c.used.append((start, end))
    return token


def _filters(c: Clause) -> dict[str, Any]:
    """The match keys the unread text asks for, each read in turn."""
    keys: dict[str, Any] = {}
    if found := c.find(NAME_START):
        keys["name_regex"] = "^" + re.escape(found["p"] or found["q"])
    if found := c.find(TAGGED):
        keys["tag"] = found["a"] or found["b"] or found["c"]
    elif c.ws.tags and (found := c.find(rf"\bthe\s+(?P<t>{'|'.join(map(re.escape, c.ws.tags))})\s+(?:files|ones)\b")):
        keys["tag"] = found["t"]

    def topic(m: re.Match[str]) -> bool:
        return m["w"].lower() not in NOT_TOPIC | STOPWORDS and not _exts(m["w"])

    if found := c.find(CONTAINS, topic) or c.find(TOPIC_NOTES, topic):
        keys["contains"] = found["w"]
        c.used[-1] = found.span("w")  # only the topic: "notes" in "the budget notes" still says which files
    if found := c.find(LIMIT):
        keys["limit"] = _count(found["n"])
    if found := c.find(SIZE):
        smaller = found["dir"].lower() in ("smaller", "less", "under", "below")
        keys["smaller_than" if smaller else "larger_than"] = found["n"] + found["u"][0].upper().rstrip("B") + "B"
    elif c.find(r"\b(?:big|bigger|large|larger|huge|biggest|largest|massive)\b"):
        keys["larger_than"] = "10MB"
    elif c.find(r"\b(?:tiny|small|smallest)\b"):
        keys["smaller_than"] = "1KB"
    if found := c.find(AGE):
        days = _count(found["n"]) * UNIT_DAYS[found["unit"].lower()]
        keys["modified_before" if found["old"] else "modified_after"] = f"{days}d"
    if found := c.find(YEAR):
        keys["modified_after"], keys["modified_before"] = f"{found['y']}-01-01", f"{int(found['y']) + 1}-01-01"
    elif c.find(r"\bthis\s+year(?:'s)?"):
        keys["modified_after"] = f"{c.today.year}-01-01"
    elif c.find(r"\blast\s+year(?:'s)?"):
        keys["modified_after"], keys["modified_before"] = f"{c.today.year - 1}-01-01", f"{c.today.year}-01-01"
    if found := c.find(EXCEPT, lambda m: _clean(m["f"] or m["g"]) in c.ws.folders):
        keys["exclude"] = [f"{_clean(found['f'] or found['g'])}/**"]
    return keys


def _select(c: Clause, *, files: bool = True) -> Selection:
    """What the clause's request acts on: the files it names, else a match from the text no rule has read."""
    named = [(start, end, path) for start, end, token in c.tokens() if (path := c.ws.file(token))] if files else []
    for quoted in (m for m in QUOTED.finditer(c.text) if c.free(*m.span())):
        # A quoted name is a file ("'my notes.md'"); any other quote is a literal no rule read: not understood.
        if not (path := c.ws.file(quoted[2]) if files else None):
            c.selection = None
            return Selection((), (("glob", "**"),))
        named.append((*quoted.span(), path))
    c.used += [(start, end) for start, end, _ in named]
    if named:
        c.selection = Selection(tuple(dict.fromkeys(path for _, _, path in named)), ())
        return c.selection
    keys = _filters(c)
    source = _source(c)
    keys["glob"] = f"{source}/**" if source else "**"
    if exts := _exts(c.unread()):
        keys["ext"] = exts
    c.selection = Selection((), tuple((key, keys[key]) for key in MATCH_ORDER if key in keys))
    # "... then move them to old": a clause that names nothing acts on what the one before named.
    if c.selection.generic and c.previous is not None and re.search(BACK_REF, c.text, F):
        c.selection = c.previous
    return c.selection


# -- the ops ------------------------------------------------------------------------------------


def _write(c: Clause) -> list[Step] | None:
    for op, pattern in WRITES:
        found = re.search(pattern, c.text, F)
        path = _clean(found["p"]) if found else ""
        if found and path not in c.ws.folders and "." in posixpath.basename(path):
            text = found["t"].strip()
            quoted = QUOTED.match(text)
            text = quoted.group(2) if quoted else re.sub(rf"(?:,\s*|\s+){POLITE}.*$", "", text, flags=F)
            return [{"op": op, "path": path, "content": f"{text}\n"}]
    return None


def _mkdir(c: Clause) -> list[Step] | None:
    if (found := re.search(MKDIR, c.text, F)) is None:
        return None
    name = r"\w[\w.\-/]*"
    listed = re.match(rf"{name}(?:\s*(?:,|\band\b)\s*{name})*", c.text[found.end() :])
    names = [_clean(n) for n in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", listed.group() if listed else "")]
    return [{"op": "mkdir", "path": n} for n in dict.fromkeys(names) if n and n.lower() not in STOPWORDS] or None


def _rename(c: Clause) -> list[Step] | None:
    for pattern in RENAME_ONE:
        found = re.search(pattern, c.text, F)
        old, new = (c.ws.file(_clean(found["a"])), _clean(found["b"])) if found else (None, "")
        if old and re.fullmatch(r"\w[\w.\-/]*", new):
            return [
                {"op": "move", "from": old, "to": new if "/" in new else posixpath.join(posixpath.dirname(old), new)}
            ]
    step: Step = {"op": "rename"}
    prefix = re.search(r"\b(?:prefix|front|start|begin|beginning)\b", c.text, F)
    if found := c.find(r"(?P<stem>[\w.\-]*?)(?P<num>0*1)(?:\.\w+)?\s*,\s*(?P=stem)0*2\b"):
        width = len(found["num"])
        step["template"] = found["stem"] + ("{n}" if width == 1 else f"{{n:0{width}}}") + "{ext}"
    elif prefix and c.find(r"\b(?:modification\s+|modified\s+)?dates?\b"):
        step["template"] = "{mtime:%Y-%m-%d}_{name}"
    elif prefix and c.find(r"\b(?:folder|parent|directory)(?:'s)?\s+name\b|\bparent\b"):
        step["template"] = "{parent}-{name}"
    elif found := c.find(rf"\breplace\s+(?:all\s+)?(?:the\s+)?(?P<a>{CHAR_WORD})\s+(?:with|by)\s+(?P<b>{CHAR_WORD})"):
        old, new = (word[1:-1] if word[0] in "'\"" else CHARS[word.lower()] for word in (found["a"], found["b"]))
        step["find"], step["replace"] = re.escape(old), new
    elif found := c.find(r"\b(?:remove|strip|drop)\s+(?:the\s+)?(?P<a>'[^']+'|\"[^\"]+\"|\S+)\s+(?:suffix|prefix"
                         r"|from\s+(?:the\s+|all\s+)?(?:file\s*)?names)"):  # fmt: skip
        step["find"], step["replace"] = re.escape(found["a"][1:-1] if found["a"][0] in "'\"" else found["a"]), ""
    else:
        return None
    c.find(r"\b(?:rename|number|prefix|put|add|replace|remove)\b")
    selection = _select(c, files=False)
    return None if selection.generic else [{"op": "rename", **selection.keys(), **step}]


def _untag(c: Clause) -> list[Step] | None:
    for pattern in UNTAG:
        if found := c.find(pattern, lambda m: m["t"].lower() not in STOPWORDS | {"tag"}):
            selection = _select(c)
            keys = selection.keys()
            if "match" in keys:
                keys["match"].setdefault("tag", found["t"])
            return [{"op": "untag", **keys, "tags": [found["t"]]}]
    return None


def _extract(c: Clause, verb: str) -> list[Step] | None:
    if not (archive := next((p for _, _, t in c.tokens() if (p := c.ws.file(t)) and ARCHIVE_NAME.search(p)), None)):
        return None
    dest = _dest(c) or ARCHIVE_NAME.sub("", posixpath.basename(archive))
    # extract makes its own folder, not the ones above it
    mkdir = [{"op": "mkdir", "path": parent}] if (parent := posixpath.dirname(dest)) not in c.ws.folders | {""} else []
    return [*mkdir, {"op": "extract", "from": archive, "to": dest}]


def _archive(c: Clause, verb: str) -> list[Step] | None:
    named = [(s, e, token) for s, e, token in c.tokens() if ARCHIVE_NAME.search(token) and token not in c.ws.files]
    if not named:
        return None
    c.used.append(named[-1][:2])
    remove = c.find(REMOVE_ORIGINALS) is not None
    if (selection := _select(c)).generic:
        return None
    return [{"op": "archive", **selection.keys(), "to": named[-1][2], **({"remove": True} if remove else {})}]


def _tag(c: Clause, verb: str) -> list[Step] | None:
    for pattern in TAG_AS:
        if found := re.search(pattern, c.text, F):
            c.used += [(found.start(), found.start("sel")), (found.end("sel"), found.end("t"))]
            if (selection := _select(c)).generic:
                return None
            return [{"op": "tag", **selection.keys(), "tags": [_clean(found["t"])]}]
    return None


def _delete(c: Clause, verb: str) -> list[Step] | None:
    selection = _select(c)
    one = {"path": selection.paths[0]} if len(selection.paths) == 1 else selection.keys()
    return None if selection.generic else [{"op": "delete", **one}]


def _transfer(c: Clause, op: str, verb: str) -> list[Step] | None:
    if len(re.findall(r"\binto\b", c.text, F)) > 1:
        return None  # "A into x and B into y": several destinations, a sort this parser does not read
    dest = _dest(c)
    keep_tree = op == "copy" and (verb.startswith("mirror") or c.find(KEEP_TREE) is not None)
    if (selection := _select(c)).generic or dest is None:
        return None
    return [{"op": op, **selection.keys(), "to": dest, **({"keep_tree": True} if keep_tree else {})}]


OPS: dict[str, Callable[[Clause, str], list[Step] | None]] = {
    "extract": _extract, "archive": _archive, "tag": _tag, "delete": _delete,
    "copy": lambda c, verb: _transfer(c, "copy", verb), "move": lambda c, verb: _transfer(c, "move", verb),
}  # fmt: skip
