"""What a request says in words, read for its reply schema: the words that speak of time, of older
or recent files, of size, of files spared, made, named, ranked or many; the phrases that say how files
are chosen; the ages, days, sizes and counts a request names; and the text and patterns of names
it types."""

from __future__ import annotations

import datetime as dt
import re

from engine.planner.values import has_ext
from engine.planner.words import Request

AGES = ("7d", "30d", "365d")
SIZES = ("10MB", "1KB")
#: The separators in names, by the first letters of their names.
SEPARATORS = {"und": "_", "das": "-", "hyp": "-", "spa": " ", "dot": ".", "per": "."}
_SEPARATOR = r"(?:underscores?|dash(?:es)?|hyphens?|spaces?|dots?|periods?)"
#: A separator a rename puts into names: "with underscores", "to dashes", "dashes instead".
PUT_IN = re.compile(
    rf"\b(?:with|to|into|by|for)\s+(?:an?\s+|the\s+)?({_SEPARATOR})\b|\b({_SEPARATOR})\s+instead\b", re.IGNORECASE
)
YEAR = re.compile(r"\b(19[89]\d|20\d\d)\b")
THIS_YEAR = re.compile(r"\bthis year")
#: (also "last years invoices", a "last year's" typed without its apostrophe)
LAST_YEAR = re.compile(r"\b(?:(?:last|past|previous) year(?:'s|\u2019s)?|last years)\b")
#: A year said as one of the calendar, not as an age: "last year's invoices", "this years minutes"
#: ("in the last year" and "over the past year" are an age).
CALENDAR_YEAR = re.compile(r"(?<!\bthe )\b(?:(?:last|previous|this) year(?:'s|\u2019s)?|(?:last|this) years)\b")
DAYS = re.compile(r"\b(\d{1,4})\s*(?:days?|d)\b", re.IGNORECASE)
SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(KB|MB|GB|B)\b", re.IGNORECASE)
#: A count said as a number of its own ("the first 3"), not inside a name, a date or a version.
COUNT = re.compile(r"(?<![\w./:-])(\d{1,3})(?![\w/:-]|[.,]\d)")
#: Words of time, of older files and of recent ones, and of size, matched as :meth:`Request.uses`
#: matches them (a plural or a typo is the word).
TIME_WORDS = (
    "day",
    "week",
    "month",
    "year",
    "today",
    "yesterday",
    "ago",
    "recent",
    "recently",
    "old",
    "older",
    "oldest",
    "newer",
    "newest",
    "latest",
    "since",
    "touched",
    "modified",
    "changed",
    "edited",
    "dated",
)
OLDER_WORDS = ("old", "older", "oldest", "ago", "not", "never", "untouched", "stale", "havent", "hasnt")
RECENT_WORDS = (
    "last",
    "past",
    "this",
    "recent",
    "recently",
    "since",
    "new",
    "newer",
    "newest",
    "latest",
    "today",
    "yesterday",
)
#: Words that say files are big, or small, without ranking them ("the big videos", "tiny files";
#: "the biggest three" ranks them: :data:`FEW_WORDS`).
BIG_WORDS = ("big", "bigger", "large", "larger", "huge", "massive", "heavy", "giant", "enormous")
SMALL_WORDS = ("small", "smaller", "tiny", "little")
#: Words that speak of size: each word for big or small files ("little" alone says none: "a little
#: tidy"), and those that rank or measure them.
SIZE_WORDS = (*BIG_WORDS, *(word for word in SMALL_WORDS if word != "little"), "biggest", "largest", "smallest",
              "size", "sized", "space", "disk", "bytes")  # fmt: skip
#: Words that say some files are to be left alone ("except", "keeping tools/tests", "dont touch").
SPARE_WORDS = (
    "leave",
    "leaving",
    "except",
    "excluding",
    "but",
    "touch",
    "skip",
    "skipping",
    "keep",
    "keeping",
    "apart",
    "besides",
    "without",
    "save",
    "not",
    "dont",
    "alone",
    "untouched",
    "other",
    "exclude",
)
#: Words that ask for a folder to be made ("make a folder", "mkdir", "create").
MKDIR_WORDS = ("mkdir", "folder", "folders", "directory", "directories", "dir", "make", "create", "new")
#: Words that rank files rather than bound them ("the newest 3", "the oldest one").
#: Words for every file of a kind or a name ("all the jpgs", "everything named draft-"): a match.
#: Words that say many files: "all the logs", "the .tmp junk", "the tax stuff".
ALL_WORDS = ("all", "every", "everything", "each", "any", "anything", "whatever", "files", "stuff", "junk", "things",
             "clutter")  # fmt: skip
NAMED_WORDS = ("named", "called", "names", "starts", "starting", "begins", "beginning")
RANKING_WORDS = ("first", "top", "oldest", "newest", "latest", "biggest", "largest", "smallest", "earliest")
FEW_WORDS = ("first", "top", "few", "couple", "oldest", "newest", "largest", "biggest", "smallest", "last")
BEFORE_YEAR = re.compile(r"\bbefore (\d{4})\b")
NOT = re.compile(r"n't\b")
#: Ages a request says in words.
_AGE_WORDS = (("7d", "week"), ("30d", "month"), ("365d", "year"))
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
#: How many files a ``limit`` may keep when the request names no number.
LIMITS = tuple(range(1, 11))


#: Folders as what is taken: "just the folders", "only the subfolders", "the directories in X".
FOLDERS_ONLY = re.compile(
    r"\b(?:just|only)\s+(?:the\s+)?(?:sub)?(?:folders|directories|dirs)\b|\b(?:sub)?(?:folders|directories)\s+only\b"
    r"|\b(?:the|all|every)\s+(?:sub)?(?:folders|directories)\s+(?:in|from|inside|under|of)\b",
    re.IGNORECASE,
)
#: Folders taken by their name, wherever they are: "every __pycache__ folder under scripts", "all the
#: node_modules dirs".
NAMED_FOLDERS = re.compile(
    r"\b(?:every|all|each|any)\s+(?:of\s+)?(?:the\s+|my\s+|those\s+)?([^\s,;:!?'\"]+)\s+(?:folders?|director(?:y|ies)|dirs?)\b",
    re.IGNORECASE,
)
#: Folders made: "make", "create", "mkdir".
MAKING = re.compile(r"\b(?:mkdir|make|create)\b", re.IGNORECASE)


#: A tag said as what selects files (the tag itself written as a NUL): "tagged exam", "labelled as
#: urgent", "with the draft tag", "urgent-tagged".
BY_TAG = re.compile(r"\b(?:tagged|labell?ed)\s+(?:as\s+|with\s+)?#?\0|\bwith\s+the\s+\0\s+(?:tag|label)\b|\0-tagged",
                     re.IGNORECASE)  # fmt: skip
#: Things said one after another: "the W-2 and the 1099", "the lease, the deed".
JOINED_REFS = re.compile(r"(?<!ahead )(?<!please )(?<!kindly )(?<!just )\b(?:and|&)\s+(?:the|my|his|her|our|their)\b"
                          r"|\w,\s*(?:the|my)\b", re.IGNORECASE)  # fmt: skip
#: Files said to hold a word: "mentioning release", "that mention the vpn", "which contain TODO", "that has
#: cream in it".
MENTIONING = re.compile(r"\b(?:mention(?:s|ing|ed)?|contain(?:s|ing)?|that say|saying|talk(?:s|ing)? about)\b"
                        r"|\b(?:has|have|having|with|got)\s+\S+\s+in(?:side)?\s+(?:it|them)\b",
                         re.IGNORECASE)  # fmt: skip
#: Files called by a word (a tag's, "\0"): "the favorites in Camera", "all my urgent ones".
CALLED_BY = re.compile(
    r"\b(?:the|my|all|every)\s+(?:my\s+)?\0s?(?:\s+(?:ones|files|stuff|things))?\s+(?:in|from|go|goes|to|into|under)\b",
    re.IGNORECASE,
)
#: A tag swapped for another: "swap the todo tag on X for done", "change the tag of X from a to b".
RETAG = re.compile(r"\bretag\b|\b(?:swap|switch|replace|change)\b(?:(?!\b(?:and|then)\b)[^.;,])*?\btag", re.IGNORECASE)
#: The start names are given: "prefix the .sql dumps with prod-", "prepend 'old_' to".
PREFIX_WITH = re.compile(
    r"\bprefix\w*\b(?:(?![.;!?](?:\s|$))[^;])*?\bwith\s+['\"]?([\w.]+[-_])(?=['\"]?(?:\s|$|[,.;!?)]))", re.IGNORECASE
)
#: Text of names changed into other text ("change the DSC_ at the start of the names to berlin2026_",
#: "replace 'draft' with 'final' in the names"): what was there and what goes instead, in one clause.
CHANGED_TEXT = re.compile(
    r"\b(?:change|replace|swap|switch|turn)\s+(?:(?:the|every|each|all|any)\s+)?['\"]?(?P<was>[^\s'\",;]+)['\"]?"
    r"(?P<between>(?:\s+(?!(?:to|with|for|into|by)\b)[^\s.;!?]+){0,8}?)\s+(?:to|with|for|into|by)\s+"
    r"['\"]?(?P<now>[^\s'\",;]+?)['\"]?(?=$|[\s,;!?]|\.(?:\s|$))",
    re.IGNORECASE,
)
#: Quoted text of names said to change into other quoted text, spaces and all: "change 'volunteer
#: rota' to 'vol rota 2026' in the file names".
QUOTED_CHANGE = re.compile(
    r"\b(?:change|replace|swap|switch|turn)\s+(?:(?:the|every|each|all|any)\s+)?(?P<q>['\"])(?P<was>[^'\"]+?)(?P=q)"
    r"(?P<between>(?:\s+(?!(?:to|with|for|into|by)\b)[^\s.;!?]+){0,8}?)\s+(?:to|with|for|into|by)\s+"
    r"(?P<r>['\"])(?P<now>[^'\"]+?)(?P=r)(?=$|[\s,;.!?])",
    re.IGNORECASE,
)
#: Said of where in a name the text changed is: at its start.
AT_START = re.compile(r"\b(?:start|starts|beginning|begins|front)\b", re.IGNORECASE)
#: A name shown with its date spelled out ("rename them drawing-YYYY-MM-DD", "as IMG_YYYYMMDD.jpg"):
#: the date (its separator in ``s``) and what comes before and after it in the name.
SHOWN_DATE = re.compile(
    r"(?<![\w{}])(?P<before>[\w\-.]*?)Y{4}(?P<s>[-_.]?)MM(?:(?P=s)DD)?(?P<after>[\w\-.]*)(?![\w{}])", re.IGNORECASE
)
#: Names given a start or an end: "prefix the dumps with prod-", "add a -v2 suffix to".
AFFIX = re.compile(r"\b(?:prefix|suffix|prepend)\w*\b", re.IGNORECASE)


#: A request that speaks of names: "named", "called", "whose names start with".
NAMED = re.compile(r"\b(?:named|called|names?|starts?|starting|begins?|beginning)\b", re.IGNORECASE)


#: A size said with the side files are on: "over 10mb", "less than 1 KB", "> 2GB".
_SIZED = re.compile(
    r"(?:\b(?:(?P<big>bigger|larger|greater|more|over|above|exceeding)|(?P<small>smaller|less|under|below))"
    r"(?:\s+than)?|(?P<gt>>)|(?P<lt><))\s*\d+(?:\.\d+)?\s*(?:[kmg]i?b|b|bytes?)\b",
    re.IGNORECASE,
)


def size_side(said: Request) -> str | None:
    """``larger_than`` when the request says files are big ("the big videos", "over 10mb"),
    ``smaller_than`` when small ("the tiny logs", "under 1 KB"), else None."""
    sized = list(_SIZED.finditer(said.text))
    big = said.uses(BIG_WORDS) or any(found["big"] or found["gt"] for found in sized)
    small = said.uses(SMALL_WORDS) or any(found["small"] or found["lt"] for found in sized)
    if big == small:
        return None
    return "larger_than" if big else "smaller_than"


#: An age said with a count: "six months", "3 weeks", "two years".
_COUNTED_AGE = re.compile(rf"\b(\d{{1,3}}|{'|'.join(NUMBER_WORDS)})\s+(day|week|month|year)s?\b", re.IGNORECASE)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
#: A month's name, whole or cut short: "july", "sept", "Dec."
MONTH_NAME = re.compile(rf"^{_MONTH}$", re.IGNORECASE)
#: A day of a month: "July 1st", "1 June", "the 3rd of March", with a year after it or not.
_CALENDAR = re.compile(
    rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+((?:19|20)\d\d)\b)?"
    rf"|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+((?:19|20)\d\d)\b)?",
    re.IGNORECASE,
)


def counted_ages(request: str) -> list[str]:
    """The ages a request says with a count ("older than six months": 180d)."""
    ages = []
    for count, unit in _COUNTED_AGE.findall(request):
        number = int(count) if count.isdigit() else NUMBER_WORDS.index(count.lower()) + 1
        if number:
            ages.append(f"{number * _UNIT_DAYS[unit.lower()]}d")
    return list(dict.fromkeys(ages))


def calendar_days(request: str, today: dt.date) -> list[str]:
    """The days a request names by month and day ("since July 1st"), as ISO dates: in the year it
    says, else the last such day up to ``today``."""
    days = []
    for found in _CALENDAR.finditer(request):
        month, day, year = (found[1], found[2], found[3]) if found[1] else (found[5], found[4], found[6])
        number = _MONTHS.index(month[:3].lower()) + 1
        try:
            date = dt.date(int(year) if year else today.year, number, int(day))
            if not year and date > today:
                date = date.replace(year=today.year - 1)
        except ValueError:
            continue
        days.append(date.isoformat())
    return list(dict.fromkeys(days))


def said_ages(said: Request) -> list[str]:
    """The ages of :data:`AGES` that the request names in words ("a week", "montsh": 30d); a year of
    the calendar is no age ("last year's invoices", :data:`CALENDAR_YEAR`)."""
    ages = [age for age, word in _AGE_WORDS if said.uses([word])]
    calendar = CALENDAR_YEAR.search(said.lowered) is not None
    if "365d" in ages and calendar and not Request(CALENDAR_YEAR.sub(" ", said.lowered)).uses(["year"]):
        ages.remove("365d")
    return ages


#: Quoted text names start with: "all the logbook files start with 'log '".
STARTING_WITH = re.compile(
    r"\b(?:start|starts|begin|begins|starting|beginning)\s+with\s+['\"]([^'\"]+)['\"]", re.IGNORECASE
)


def changed_texts(request: str) -> list[re.Match[str]]:
    """Where ``request`` says text of names changes into other text: quoted, spaces and all, and
    else in single words (:data:`CHANGED_TEXT`)."""
    quoted = list(QUOTED_CHANGE.finditer(request))
    return [*quoted, *(found for found in CHANGED_TEXT.finditer(request)
                       if not any(q.start() <= found.start() < q.end() for q in quoted))]  # fmt: skip


#: A name pattern typed in a request: a word with a star in it, and a letter or digit ("crash_*_sync").
_TYPED_PATTERN = re.compile(r"(?<![^\s\"'`(])[\w.~$-]*\*[\w.*~$-]*(?=$|[\s\"'`),;:!?])")


def typed_patterns(request: str) -> list[str]:
    """The name patterns ``request`` types, each as it stands and, where it has no extension, with
    any ("crash_*_sync" and "crash_*_sync.*"); a pattern of no letter or digit ("*", "**") is none."""
    found = [p.rstrip(".") for p in _TYPED_PATTERN.findall(request) if any(ch.isalnum() for ch in p) and "**" not in p]
    return list(dict.fromkeys(form for p in found for form in (p, *(() if has_ext(p) else (f"{p}.*",)))))
