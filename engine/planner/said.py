"""What a request says in its own words, for the decoding schema (:mod:`engine.planner.narrow`):
the lines a file it dictates holds, the words it says files are about, the tags it names, and
whether an archive replaces what it packs or a step takes the first few files, and how many
steps one sentence asks for.

Each answer is a superset of what a plan for the request may use: a word it cannot place is
offered rather than dropped, so that narrowing never leaves the model without the right answer.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from engine.planner.refer import OP_WORDS, WEAK_WORDS
from engine.planner.words import Request, alike

#: Words that hold a request together and never name a file, a folder or a tag.
# fmt: off
STOP_WORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "to", "into", "in", "on", "at", "of", "from", "for", "with", "by",
    "as", "is", "are", "be", "it", "its", "them", "they", "this", "that", "these", "those", "all", "every",
    "each", "any", "some", "my", "your", "our", "their", "his", "her", "please", "pls", "can", "could", "would",
    "you", "me", "i", "we", "us", "move", "put", "delete", "remove", "make", "create", "rename", "untag", "unzip",
    "then", "also",
    "thanks", "thank", "thx", "kindly", "hey", "help", "need", "like", "want", "go", "ahead", "just", "only",
    "shift", "transfer", "relocate", "shove", "erase", "wipe", "nuke", "discard", "toss", "duplicate", "clone",
    "compress", "write", "append", "add", "copy", "extract", "unpack", "tag", "grab", "swap", "strip",
))
# fmt: on
WORD_EDGES = "'\"`()[]{}<>,;:!?"
#: The most words of the request one line of content holds.
SPAN_WORDS = 12
#: The words that send a line to a file, and a word that is one: a path, or a name with a kind.
_SENT_TO = frozenset(("to", "into", "onto"))
_FILE_LIKE = re.compile(r"/|\.[A-Za-z0-9]{1,5}$")
QUOTED = re.compile(r"(?:^|(?<=\s))(['\"])(.+?)\1(?=[\s.,!?;:)]|$)")
#: What ends a run of words that a line of content may be: a quote, a word with a slash, a file name.
_BREAK = re.compile(r"(?<!\w)[\"'`]|[\"'`](?!\w)|\S*/\S*|\S+\.[A-Za-z0-9]{1,8}\b\S*")
#: What introduces the line a file is to hold, when the request does not quote it.
_CUE = re.compile(
    r"(?::|\bsays?\b|\bsaying\b|\bcontains?\b|\bcontaining\b|\breads?\b|\breading\b|\blines?\b"
    r"|\btext\b)\s+",
    re.IGNORECASE,
)
#: What a request says when an archive takes the place of what it packs.
REMOVING = re.compile(
    r"\b(?:(?:delete|deleting|remove|removing|trash|get rid of|drop|dlete|delte|remvoe|remov|removng)\s+"
    r"(?:all\s+)?(?:the\s+)?(?:loose\s+)?(?:originals?|original files|files|copies|them|those|it))\b",
    re.IGNORECASE,
)
#: What a request says when it needs no more what an archive packs ("dont need the loose files after").
NOT_NEEDED = re.compile(
    r"\b(?:don'?t|do not|no longer)\s+need\s+(?:the\s+)?(?:loose\s+|original\s+)?"
    r"(?:files|originals?|copies|them)\b",
    re.IGNORECASE,
)
#: A request that does something to "them" or "the originals" may delete them with a word typed
#: too fast to be known ("then revme the files"); a small word is none ("keep the originals").
SOMETHING_DONE_TO_THEM = re.compile(
    r"\b(?!keep\b|leave\b|the\b|and\b|all\b|are\b|for\b|with\b|from\b)[a-z]{3,9}\s+(?:all\s+)?"
    r"(?:the\s+(?:loose\s+)?(?:originals?|original files|files)|originals|them)\b",
    re.IGNORECASE,
)
#: "the first 3 songs", "2 .py files ..., the first ones": a count of files taken in order.
FIRST_N = re.compile(
    r"\b(?:first|top|oldest|newest|latest|biggest|largest|smallest)\s+(?:\d+|two|three|four|five|few)\b"
    r"|\b(?:take|grab|pick)\s+(?:\d+|two|three|four|five)\b",
    re.IGNORECASE,
)
CLAUSE_BREAK = re.compile(r"[.;]\s|\b(?:then|also|after that)\b", re.IGNORECASE)
#: Words before which a line a request dictates may end.
_LINE_ENDS = frozenset(("and", "then", "also", "after", "thanks", "thank", "thx", "please", "pls", "plz", "asap",
                        "when", "-", "so", "because", "but", "into", "in", "to", "as"))  # fmt: skip


#: What a file written is to say, up to the end of its sentence: "... that says: decided to drop
#: windows 7 support", "saying renew the passport", "new file todo.md with: trim, case in".
_DICTATION = re.compile(r"\b(?:says|say|saying|with(?=:))\b([^.;!?]*?)(?=[.;!?](?:\s|$)|$)", re.IGNORECASE)


#: Where what a colon introduces stops before the end: another instruction ("; then move ...").
_GOES_ON = re.compile(
    r"(?:[.;]\s+|\s+)(?:and\s+)?(?:then|also|after that)\b|;\s"
    # (or where it says the file it goes in: "add the line: call mum to notes/a.md")
    r"|\s+(?:to|into|in|onto)\s+(?:the\s+)?(?=[^\s/]*/\S|\S{2,}\.[A-Za-z][A-Za-z0-9]{1,4}\b(?!\.))",
    re.IGNORECASE,
)
#: A colon after words of writing, in the same sentence: what follows is the text to write.
_WRITING_COLON = re.compile(
    r"\b(?:add|append|write|jot|note|log|line|lines|text|in\s+it|with\s+this|put\s+in)\b(?:[^.;!?:]|\.(?=\S))*?:(?=\s)",
    re.IGNORECASE,
)


def undictated(request: str, *, quotes: bool = True) -> str:
    """``request`` with what it dictates for a file to say blanked, and what it quotes unless not
    ``quotes``: their words ask for nothing and name nothing ("... that says: decided to drop windows
    7 support" asks for no drop). A quote leaves a pair of quotes: it still asks for text written."""
    # (what a colon introduces after words of writing, first: "add this to the engine hours file: 16/08
    # 1247h, new impeller fitted" makes no folder "new"; a colon inside a quote introduces nothing,
    # "write 'exam: feb 12, room H2' into exam-info.txt")
    masked = QUOTED.sub(lambda found: "\0" * len(found.group(0)), request)
    for colon in _WRITING_COLON.finditer(masked):
        rest = masked[colon.end() :].split("\0", 1)[0]
        stop = _GOES_ON.search(rest)
        end = colon.end() + (stop.start() if stop else len(rest))
        request = request[: colon.end()] + " " * (end - colon.end()) + request[end:]
    request = _DICTATION.sub(lambda found: found.group(0)[: found.start(1) - found.start(0)] + " " * len(found[1]),
                             QUOTED.sub(" ' ' ", request) if quotes else request)  # fmt: skip
    return request


#: Words that close a request, not a line it dictates.
SIGN_OFFS = frozenset(("thanks", "thank", "you", "thx", "ty", "pls", "please", "plz", "cheers", "ta", "asap"))
#: The most words a line a colon introduces runs to the end with.
COLON_WORDS = 48


def _signs_off(word: str) -> bool:
    """Whether ``word`` closes a request: a word of :data:`SIGN_OFFS`, or a long one misspelled
    ("thaanks")."""
    word = word.lower().strip(".!,")
    return word in SIGN_OFFS or (len(word) >= 5 and any(alike(word, off) for off in SIGN_OFFS if len(off) >= 5))


def _colon_lines(rest: str) -> list[str]:
    """The lines ``rest``, what follows a colon, may be: all of it, and what comes before where it
    goes on to something else; none longer than :data:`COLON_WORDS` words."""
    cuts = [rest, *(rest[: found.start()] for found in _GOES_ON.finditer(rest))]
    lines = []
    for cut in cuts:
        words = cut.split()
        lines.append(" ".join(words))
        # (and without what closes it but is no part of it: "... with carol :)", "... thanks")
        while words and (not any(ch.isalnum() for ch in words[-1]) or _signs_off(words[-1])):
            words = words[:-1]
            lines.append(" ".join(words))
    return [line for line in lines if line and len(line.split()) <= COLON_WORDS]


def dictated_lines(request: str) -> list[str]:
    """The lines a file written for ``request`` may hold (without their newline): what it quotes, and
    the words right after what introduces a line ("that says", "should contain:", "one more line:"),
    up to :data:`SPAN_WORDS` of them; when it does neither, each run of its words between paths,
    names of files and quotes ("into courses/exam-info.txt" is not a line). Each with punctuation at
    the ends taken off, and as it stands."""
    quoted = [text.strip() for _, text in QUOTED.findall(request)]
    runs = []
    unquoted = QUOTED.sub(lambda found: "\0" * len(found.group(0)), request)  # where a line stops
    taken = 0  # (where the line a colon introduces ends: a cue inside it, "7.30 Zoë reads", is its text)
    for cue in _CUE.finditer(unquoted):
        if cue.start() < taken and not cue.group(0).startswith(":"):
            continue
        rest = unquoted[cue.end() :].split("\0", 1)[0]
        colon = cue.group(0).startswith(":")
        if colon:
            taken = cue.end() + len(rest)
            # What a colon introduces runs to the end, sentences and all ("add to the first-aid log:
            # 08/11 18:20 - member rolled ankle ..., declined ambulance. Maz"), or up to where the
            # request goes on to something else ("...; then move the photos").
            runs += [line for line in _colon_lines(rest) if line]
            continue
        words = rest.split()
        # A line does not run into the file it goes to, said last ("append the line hello world to
        # notes/journal.md"); what it says before that place is its own ("... moved to b.pdf to log.md").
        if 2 < len(words) <= SPAN_WORDS and words[-2].lower() in _SENT_TO and _FILE_LIKE.search(words[-1]):
            words = words[:-2]
        words = words[:SPAN_WORDS]
        # A line ends where the run does (or a word before: "thaaanks"), where a sentence does, or
        # before a word that goes on to something else ("... saying renew the passport thanks. Then
        # ...", "No rush"): never inside a list ("passport, charger, sunscreen").
        ends = [end for end in range(1, len(words) + 1) if end == len(words) or words[end - 1][-1] in ".;!?"
                or (end == len(words) - 1 and words[end - 1][-1] != ",")
                or Request(words[end].strip(WORD_EDGES + ".")).uses(_LINE_ENDS)
                or not any(ch.isalnum() for ch in words[end]) or words[end][:1].isupper()]  # fmt: skip
        # (A run after a word that goes on past a colon is no line: the line is what the colon
        # introduces, "add a line to sanna's plan: taper starts 26 oct" holds no "to sanna's plan:".)
        lines = [" ".join(words[:end]) for end in ends]
        runs += [line for line in lines if not re.search(r":\s+\S", line)]
    if not (quoted or runs):
        for part in _BREAK.split(request):
            words = part.split()
            runs += [" ".join(words[start:end]) for start in range(len(words))
                     for end in range(start + 1, min(len(words), start + SPAN_WORDS) + 1)]  # fmt: skip
    texts = [*quoted, *(_trimmed(run) for run in runs), *runs]
    return list(dict.fromkeys(text for text in texts if text))


_CLOSING = {")": "(", "]": "[", "}": "{"}


def _trimmed(line: str) -> str:
    """``line`` without punctuation at its ends, but for a bracket that closes one it opens
    ("x6 (ERA fortress)")."""
    line = line.lstrip(WORD_EDGES + ".")
    end = len(line)
    while end and line[end - 1] in WORD_EDGES + ".":
        opening = _CLOSING.get(line[end - 1])
        if opening and line.count(opening, 0, end) >= line.count(line[end - 1], 0, end):
            break
        end -= 1
    return line[:end]


#: Words after which a request says what files are about ("mentioning", "about the"), and words
#: before which it does ("the security notes").
ABOUT_WORDS = ("mention", "mentions", "mentioning", "mentioned", "about", "contain", "contains", "containing",
               "regarding", "say", "says", "saying", "word", "discussing", "discuss", "talk", "talks", "cover",
               "covering", "on")  # fmt: skip
NOTE_WORDS = ("note", "notes", "doc", "docs", "document", "documents", "memo", "memos", "markdown", "writeup")
_ARTICLES = ("the", "a", "an", "word")
#: A word files hold, said as "has cream in it", "with TODO in them".
_HAVING = ("has", "have", "having", "with", "got")
_IN_IT = ("in it", "in them", "inside it", "inside them", "in there")
_TOKEN = re.compile(r"[^\s,;:!?()\"'`]+")


_OP_VERBS = frozenset(word for words in OP_WORDS.values() for word in words if word not in WEAK_WORDS)


def about_words(request: str) -> set[str]:
    """The words (in lower case) a request says files are about: right after a word of
    :data:`ABOUT_WORDS` (and an article), or one or two words before a word of :data:`NOTE_WORDS`; a plural and a
    typo are forgiven in those words."""
    tokens = [token.strip(WORD_EDGES + ".").lower() for token in _TOKEN.findall(request)]
    found = set()
    for at, token in enumerate(tokens):
        before = tokens[at - 1] if at else ""
        if before in _ARTICLES and at > 1:
            before = tokens[at - 2]
        after = " ".join(tokens[at + 1 : at + 3])
        if token in NOTE_WORDS or token in STOP_WORDS or token in _OP_VERBS:  # "sort notes" is no topic
            continue
        # (and a word files are said to have in them: "every recipe that has cream in it")
        if (
            (before and Request(before).uses(ABOUT_WORDS))
            or (after and Request(after).uses(NOTE_WORDS))
            or (before in _HAVING and after in _IN_IT)
        ):
            found.add(token)
    return found


def about_phrases(request: str) -> list[str]:
    """Two words a request says files are about, as it says them: a word of :func:`about_words`
    said right after a word of :data:`ABOUT_WORDS` and the word after it ("mention a missing 1099":
    ``missing 1099``), where that word is no small word or op."""
    topics = about_words(request)
    tokens = [token.strip(WORD_EDGES + ".").lower() for token in _TOKEN.findall(request)]
    found = []
    for at, token in enumerate(tokens[:-1]):
        after = tokens[at + 1]
        before = tokens[at - 1] if at else ""
        if before in _ARTICLES and at > 1:
            before = tokens[at - 2]
        if token not in topics or not Request(before).uses(ABOUT_WORDS):
            continue
        if not after or after in STOP_WORDS or after in NOTE_WORDS or after in _OP_VERBS or after in _CLAUSE_ENDS:
            continue
        # Only where the two are said side by side, a space apart (not "missing, 1099").
        if re.search(rf"(?<!\w){re.escape(token)}[ ]{re.escape(after)}(?!\w)", request, re.IGNORECASE):
            found.append(f"{token} {after}")
    return found


#: Words after which a request names a tag ("as urgent", "with q3", "untag draft", "tag it done"),
#: and words before which it does ("the draft tag").
TAG_BEFORE = ("as", "with", "tag", "tags", "tagged", "it", "them", "untag", "is", "not", "add", "for", "label",
              "labels", "labeled", "labelled", "mark", "marked", "flag", "flagged", "drop")  # fmt: skip
TAG_AFTER = ("tag", "tags", "tagged", "label", "labels")
TAG_VERBS = ("tag", "label", "mark", "flag", "untag")
#: Words right before a word that surely names a tag ("tagged draft"), not a file ("with invoice in the name").
_SAID_TAG_BEFORE = ("tagged", "untag", "labeled", "labelled", "flagged", "marked")
_NOT_TAGS = STOP_WORDS | {"off", "too", "instead", "anymore", "everything", "whatever", "anything", "files", "both",
                          "either", "neither"}  # fmt: skip
_CLAUSE_ENDS = ("and", "then", "also", "after", "please", "pls", "thanks", "thank", "thx", "asap", "when", "now",
                "while", "since", "because", "cause", "cos", "so")  # fmt: skip


def tag_words(request: str, *, named: bool = False, given: bool = False) -> set[str]:
    """The words (in lower case) a request names tags by: after a word of :data:`TAG_BEFORE`,
    before one of :data:`TAG_AFTER`, or, after a word of :data:`TAG_VERBS`, at the end of a clause
    ("tag the algorithms notes exam-prep and ..."); with ``named``, only those it says are tags
    ("the draft tag", "tagged draft", "the urgent-tagged files"); with ``given``, only those it
    surely puts on files: right after "tag them" or "tag it" ("tag them lehenga and move them"), or
    after "as" or "with" at the end of a clause that tags ("tag evry photo from zürich with
    switzerland", not "tag any stock list with backorder in it as chase"), and one said after such a
    tag and "and" at the end of the clause ("tag them urgent and review")."""
    raw = _TOKEN.findall(request)
    tokens = [token.strip(WORD_EDGES + ".").lower() for token in raw]
    found = set()
    tagging = in_tagging = False
    given_at = -9
    for at, token in enumerate(tokens):
        before = tokens[at - 1] if at else ""
        after = tokens[at + 1] if at + 1 < len(tokens) else ""
        # A clause ends at a word that ends or starts one ("q3 Don't touch anything else").
        starts = (
            at + 1 < len(raw) and raw[at + 1][:1].isupper() and not raw[at + 1].isupper() and token not in STOP_WORDS
        )
        ends = after in _CLAUSE_ENDS or not any(ch.isalnum() for ch in after) or raw[at][-1] in ".,;!?" or starts
        is_tag = after in TAG_AFTER or before in _SAID_TAG_BEFORE
        if not named:
            is_tag = is_tag or before in TAG_BEFORE or Request(f"{before} ").uses(TAG_BEFORE)
        # What files are about is no tag: "tag ... every note mentioning travel".
        said_last = tagging and ends and before not in ABOUT_WORDS
        if given:
            put_on = (before in ("it", "them") and at >= 2 and Request(tokens[at - 2]).uses(TAG_VERBS)) or (
                in_tagging and ends and before in ("as", "with")
            )
            put_on = put_on or (before == "and" and given_at == at - 2 and ends)
            if put_on and token not in _NOT_TAGS and not _ASKS.fullmatch(token) and any(ch.isalnum() for ch in token):
                found.add(token)
                given_at = at
        elif (is_tag or Request(f" {after}").uses(TAG_AFTER) or (said_last and not named)) and token not in _NOT_TAGS:
            found.add(token)
        if token.endswith(("-tagged", "-tag")) and not given:  # "the urgent-tagged files"
            found.add(token.rsplit("-", 1)[0])
        tagging = (tagging and not ends) or Request(token).uses(TAG_VERBS)
        # (a sentence that tags goes on past "and" up to another verb: "tag the shakshuka and dal
        # recipies as vegetarian")
        in_tagging = (in_tagging and not _ASKS.fullmatch(token) and raw[at][-1] not in ".;!?") or tagging
    return found


#: Verbs that ask for a step.
_VERBS = (
    r"move|copy|delete|remove|tag|untag|rename|zip|archive|compress|add|write|put|create|extract|unzip|unpack"
    r"|label|mark|mirror|pack"
    # "... and leave a cold-storage/README.txt that says ...": a file to write.
    r"|leave(?=\s+an?\s+\S+\.[A-Za-z0-9]{1,8}\b)"
    # "... and take the wip tag off": a tag taken off.
    r"|(?:take|strip|drop)(?=\s+(?:the\s+|that\s+)?[\w-]+\s+(?:tag|label)s?\b)"
)
#: A further thing asked after a comma or "and": "tag X exam-prep and copy them to Y", "zip X, copy Y".
_NEXT_VERB = re.compile(
    rf"(?:,\s+(?:and\s+)?|\s+and\s+)({_VERBS})\b(?![/.-])(?!\s+(?:files?|archives?|up\b))"
    # "... belongs in shared, move it": the same thing asked again.
    r"(?!\s+(?:it|them)\s*(?:$|[.!,:;)]|-|(?:no|please|pls|asap|thanks|thx|thank|when|now)\b))"
    # "create notes/a.txt and put in it: ...": what the file made is to hold, no step of its own.
    r"(?!\s+(?:in|into|inside)\s+(?:it|there)\s*:)",
    re.IGNORECASE,
)
#: Words that ask for something, so that a verb after them asks for something more.
_ASKS = re.compile(rf"\b(?:{_VERBS}|take|grab|pick)\b", re.IGNORECASE)
_ARCHIVING = re.compile(r"\b(?:zip|archive|compress|pack|tar|tarball)\b", re.IGNORECASE)
#: A request that first takes some files ("take 2 .py files ..., and move them") asks one thing of them.
_TAKING = re.compile(
    r"\b(?:take|grab|pick|select)\s+(?:the\s+)?(?:\d+|two|three|four|five|few|first|last)\b", re.IGNORECASE
)


_PIECE_END = re.compile(r"(?:[\s,]+and)?[\s,]*$", re.IGNORECASE)


def asked_steps(request: str) -> int:
    """The fewest steps a request of one part asks for: one, and one more for each verb after a comma
    or "and" ("take the todo tag off X, tag it done and move it to Y": three). Deleting what an
    archive packs is the archive's own doing, and taking a few files is no step."""
    return len(asked_pieces(request))


def asked_pieces(request: str) -> list[str]:
    """The pieces of a request of one part that each ask for a step, in order (:func:`asked_steps`):
    "take the todo tag off X", "tag it done", "move it to Y". Taking a few files first ("take 2 .py
    files ..., and move them") asks no step of its own."""
    archiving = _ARCHIVING.search(request) is not None
    starts, since = [0], 0
    for found in _NEXT_VERB.finditer(request):
        # "go ahead and move", "Hey, tag": a verb after words that ask nothing is the first thing asked.
        asks = _ASKS.search(request, since, found.start()) is not None
        if asks and not (archiving and found[1].lower() in ("delete", "remove")):
            starts.append(found.start(1))
        since = found.start(1)
    if len(starts) > 1 and _TAKING.search(request):
        del starts[1]
    ends = [*starts[1:], len(request)]
    return [_PIECE_END.sub("", request[start:end]).strip() for start, end in zip(starts, ends, strict=True)]


#: Formats a file would have to be converted to: no file operation converts one.
_FORMATS = (
    r"(?:pdf|docx?|odt|rtf|png|jpe?g|gif|webp|svg|mp3|wav|flac|mp4|mov|csv|xlsx?|html?|epub|word\s+doc\w*"
    r"|spreadsheet)\b(?!\s+(?:folder|dir|directory|files?)\b)(?![\w/.-])"
)
#: Words up to the end of a sentence (a dot inside a name, "notes.md", ends none), at most 200 characters.
_IN_SENTENCE = r"(?:[^.?!;]|\.(?=\S)){0,200}"
#: What file operations cannot do: code, tests, builds, mail, travel, the weather ("funcion" too),
#: converting a file to another format.
_NOT_FILES = re.compile(
    r"\b(?:flaky|failing|fails|fu\w{1,3}ion|refactor\w*|implement\w*|unit \w+|debug\w*|compile|deploy|install"
    r"|github|pull request|weather|rain|e-?mail|translate|explain|instagram|shrink|resize|transcode"
    # (a trip, not a drone's "flight logs")
    r"|flights?(?!\s*(?:logs?|plans?|records?|data|notes?|files?|folders?|paths?|times?|hours?|tests?))"
    r"|so (?:it|they) fits?|remind me|forward(?:ing)? (?:the|my|this|that)|(?<![\w-])print (?:the|my|this|that|out)"
    r"|(?<![\w-])print (?:\d+|a|two|three|four|five|ten) (?:cop(?:y|ies)|times)\b"
    r"|push (?:my|the|these) changes|timing out|post (?:the|my|this|these) \S+(?: \S+)? on"
    # (a message sent: "text this week's rota to the team", "whatsapp it to Ana"; never "the whatsapp pics")
    r"|(?<![\w-])(?:text|sms|whatsapp|tweet) (?:this|that|these|the|my|it|them)\b[^.?!;]*\bto (?:the|my|our|everyone"
    r"|him|her|them|[A-Z]\w+)\b)\b|(?<!\S)--[a-z][\w-]*"
    # (a file made into another format: "convert the notes to pdf", "turn the chart into a pdf")
    rf"|\bconvert\w*\b{_IN_SENTENCE}\b(?:in)?to\s+(?:an?\s+)?{_FORMATS}"
    rf"|\b(?:turn|make|export|save|render)\w*\b{_IN_SENTENCE}\b(?:into|as)\s+an?\s+{_FORMATS}"
    # (a program mended: "fix the sync crash in SyncService"; not the names of its crash logs)
    rf"|\bfix\w*\b{_IN_SENTENCE}\b(?:crash(?!\w*[\s_-]*(?:logs?|reports?|dumps?|files?)\b)\w*|bugs?|exceptions?"
    r"|memory leaks?|regressions?)\b",
    re.IGNORECASE,
)


#: A path spelled with a slash ("social/instagram", "drafts/"), not a URL's "://" alone.
_SLASHED = re.compile(r"(?<!\S)(?![a-z]+://)[^\s/]*\w/[^\s]*")


def not_files(request: str, names: Iterable[str] = ()) -> bool:
    """Whether ``request`` asks for something file operations cannot do ("fix the flaky test",
    "email the report to finance", "will it rain", "shrink the video so it fits on a stick"), where
    it says none of that inside one of the ``names`` of the workspace ("Downloads/email attachments")."""
    said = {name for path in names for name in (path, posixpath.basename(path)) if name.lower() in request.lower()}
    for name in sorted(said, key=len, reverse=True):
        request = re.sub(re.escape(name), lambda found: "_" * len(found.group(0)), request, flags=re.IGNORECASE)
    # (Nor inside a path it spells with a slash: "unzip the export to social/instagram".)
    request = _SLASHED.sub(lambda found: "_" * len(found.group(0)), request)
    # (Nor in what it quotes or dictates for a file: "append '- Fixed a crash on sync' to the notes".)
    return _NOT_FILES.search(undictated(request)) is not None
