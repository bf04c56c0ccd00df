"""What a request says over a workspace, as the values its narrowed reply schema offers
(:mod:`engine.planner.narrow`): its scope (the files and folders it refers to, and the paths and
globs a step may use), its dates (the years and days it says, on each side of a match's range) and
the other values (sizes, counts, tags, extensions, texts, name starts, what a rename finds, puts in
and names by). Each list is bounded to a number of characters, so that a big workspace cannot make
a huge schema."""

from __future__ import annotations

import datetime as dt
import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from engine.planner.by_example import changed_by_example, dated_templates, example_templates
from engine.planner.kind_words import SPELLED_PATH, names_a_kind, referred_exts
from engine.planner.parts import request_parts
from engine.planner.pieces import names_alone
from engine.planner.places import folders_inside, names_in_folders, placed_in_that, sorted_into
from engine.planner.prompt import ViewEntry
from engine.planner.refer import OP_WORDS, path_ends, referred_files, referred_folders, takes_from_folder
from engine.planner.said import (
    QUOTED,
    STOP_WORDS,
    WORD_EDGES,
    asked_steps,
    tag_words,
    undictated,
)
from engine.planner.said_names import MAKE_COPIES, request_words, spaced_names, without_locations
from engine.planner.schema_edit import (
    MAX_VALUES,
    bounded_to,
)
from engine.planner.spared import spared_files, spared_folders
from engine.planner.spoken import (
    AGES,
    AT_START,
    BEFORE_YEAR,
    COUNT,
    DAYS,
    LAST_YEAR,
    NAMED,
    NOT,
    NUMBER_WORDS,
    OLDER_WORDS,
    PREFIX_WITH,
    PUT_IN,
    QUOTED_CHANGE,
    RECENT_WORDS,
    SEPARATORS,
    SIZE,
    SIZES,
    STARTING_WITH,
    THIS_YEAR,
    YEAR,
    calendar_days,
    changed_texts,
    counted_ages,
    said_ages,
    typed_patterns,
)
from engine.planner.values import (
    ARCHIVE_EXTS,
    COMMON_EXTS,
    NUMBERED,
    TEMPLATES,
    compiles,
    counted_template,
    has_ext,
    innermost,
    is_changeable,
    literal,
    name_prefixes,
    parent_folders,
    put_literally,
    starts_some,
    words_of_names,
)
from engine.planner.words import Request, stem


def changeable_to(values: Iterable[str], chars: int) -> list[str]:
    """``values`` that a plan may change (:func:`is_changeable`), bounded as :func:`bounded_to` does."""
    return bounded_to((value for value in values if is_changeable(value)), chars)


#: Words that say what to do, or how to ask ("when you get a chance"): never a word inside a name.
_VERBS = frozenset(word for words in OP_WORDS.values() for word in words) | {
    "get",
    "chance",
    "please",
    "thanks",
    "could",
    "would",
    "when",
    "need",
    "want",
}


#: A day, a space and a file's name: "like 2026-09-01 IMG_5501.jpg".
_DAY_THEN_NAME = re.compile(r"(?<![\w-])((?:19|20)\d\d[-_.]?[01]\d[-_.]?[0-3]\d)\s+([\w-]+\.[A-Za-z0-9]{1,8})\b")
#: A number in brackets, as a copy downloaded twice is named: "(1)".
_BRACKETED = re.compile(r"\(\d{1,3}\)")
#: A request that sorts files ("sort", "organise", "split ... into").
_SORTS = re.compile(r"\b(?:sort|sorted|sorting|organi[sz]e|split|separate|group|tidy|file)\b", re.IGNORECASE)
#: A new folder in the folder of someone or something the request speaks of: "a paperwork folder in
#: his dir", "a new folder called scans inside her folder".
_OWN_FOLDER = re.compile(
    r"\b(?:a|an|the)\s+(?:new\s+)?(?:(?P<before>[\w.-]+)\s+(?:folder|dir|directory|subfolder)|(?:folder|dir|directory"
    r"|subfolder)\s+(?:called|named)\s+(?P<after>[\w.-]+))\s+(?:in|inside|under|within)\s+(?:his|her|their|its)\s+"
    r"(?:own\s+)?(?:folder|dir|directory)\b",
    re.IGNORECASE,
)
#: A tag or label said between the text changed and what it becomes: a tag is swapped, not a name.
_TAG_WORD = re.compile(r"\b(?:tag|tags|label|labels|tagged|labelled|labeled)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """What a request refers to in a workspace, and the paths and globs its schema offers."""

    words: list[str]  # the words that may be names (request_words), less what it dictates
    words_of: Request
    all_files: list[str]
    under: set[str]  # folders with files under them
    inside: set[str]  # folders with files right in them
    all_folders: list[str]
    folder_refs: list[str] | None  # the folders the request refers to, None when none (refer.py)
    file_refs: list[str] | None  # the files it refers to, None when none
    folders: list[str]  # the folders it refers to, or all of them
    files: list[str]  # the files it refers to, or all of them
    mentioned: list[str]  # files whose whole path it holds
    dotted: list[str]  # its words that are names with an extension
    renamed: list[str]  # those names beside the files, or in the folders, it refers to
    archive_files: list[str]
    sources: list[str]  # what a step reads
    dests: list[str]  # where a step makes something
    names: list[str]  # any path a step names
    archives: list[str]  # archives it names
    everywhere: list[str]  # ["**"], or none when it takes files from a folder it names
    spelled_dirs: list[str]  # folders it spells whole
    spared: set[str]  # folders it leaves alone
    spared_files: list[str]  # files it leaves alone
    inside_new: list[tuple[str, str, str]]  # new folders it puts inside one that exists (places.folders_inside)
    sorted_request: str | None  # it, with each folder of a list it sorts into said as a place (places.sorted_into)
    taken: list[str]  # folders it takes files from
    described: list[str]  # the files it describes
    globs: list[str]
    kept_out: list[str]  # what a match may leave out


@dataclass(frozen=True)
class Times:
    """The years and days a request says, and the dates a match may filter on, on each side."""

    years: set[int]
    days: list[str]
    older: bool
    recent: bool
    afters: list[str]
    befores: list[str]


@dataclass(frozen=True)
class Offered:
    """The other values a request's schema offers: sizes, counts, tags, extensions, texts, name starts
    and what a rename finds, puts in and names by."""

    sizes: list[str]
    counts: list[int]
    named_tags: set[str]
    said_tags_named: set[str]
    tags: list[str]
    found_exts: list[str]
    exts: list[str]
    texts: list[str]
    regexes: list[str]
    finds: list[str]
    replaces: list[str]
    templates: list[str]
    swapped: bool  # it says text of names changed into other text: a rename finds and replaces
    by_example: bool  # it shows a renamed file's new name (example_templates)


def request_scope(request: str, entries: list[ViewEntry], chars: int) -> Scope:
    """The files and folders ``request`` refers to among ``entries``, and the paths and globs its
    schema offers, each list at most ``chars`` characters."""
    bounded = partial(bounded_to, chars=chars)
    changeable = partial(changeable_to, chars=chars)

    all_files = [entry.path for entry in entries if not entry.is_dir]
    under = {parent for path in all_files for parent in parent_folders(path)}  # folders with files under them
    all_folders = sorted(under | {e.path for e in entries if e.is_dir})
    # (What it dictates for a file to say names nothing: "that says: drop windows 7".)
    words = request_words(undictated(request, quotes=False))
    # A name said with spaces ("into editor/for Ruth") is one name: the word its first part is alone
    # is no name where the longer one names a file ("as invoices/2025 invoices.zip"), or where that
    # word ends in a small word ("editor/for").
    spaced = [name for name in spaced_names(request, all_folders) if name not in words]
    # (nor is the file name it ends in: "drafts.zip" of "backups/old drafts.zip")
    cut = {word for word in words for name in spaced
           if (name.startswith(f"{word} ") and (has_ext(posixpath.basename(name))
                                               or posixpath.basename(word).lower() in STOP_WORDS))
           or (name.endswith(f" {word}") and "/" in name and has_ext(word))}  # fmt: skip
    # A path said with spaces ("into athletes/Priya N/imports/garmin", "into archive/hedda reports")
    # is one name: the pieces its spaces cut it into ("athletes/Priya", "N/imports/garmin") name
    # nothing, unless they are in the workspace.
    known = {*all_folders, *all_files}
    cut |= {word for word in words for name in spaced if "/" in word and "/" in name and word not in known
            and (name.startswith(f"{word} ") or name.endswith(f" {word}") or f" {word} " in name)}  # fmt: skip
    # (nor is the last word of a new file's name of several words, "called ruiz zip.txt", where no
    # file has that name, and the name does not start with a folder's, "in downloads x.mp3")
    basenames = {posixpath.basename(path).lower() for path in all_files}
    folder_names = {posixpath.basename(folder).lower() for folder in all_folders}
    cut |= {word for word in words for name in spaced if "/" not in word and has_ext(word)
            and name.endswith(f" {word}") and word.lower() not in basenames
            and not any(name.lower().startswith(f"{f} ") for f in folder_names)}  # fmt: skip
    # (nor is the first word of a folder's name of several words, "into tablet sync")
    cut |= {word for word in words for name in spaced if name in known and word not in known
            and name.startswith(f"{word} ")}  # fmt: skip
    words = [*(word for word in words if word not in cut), *spaced]
    # The folders and files the request refers to, when it refers to some (refer.py).
    folder_refs = referred_folders(request, all_folders)
    # A new folder said to be inside one that exists ("into a 2025 folder inside service notes") is in it.
    inside_new = folders_inside(request, all_folders, folder_refs)
    # Files sorted into a list of new folders ("sort the product photos into journals, sketchbooks
    # and other subfolders") go into folders of those names in the one folder they are in.
    inner = innermost(folder_refs or [])
    sorting = sorted_into(request, inner[0] if len(inner) == 1 else None) if _SORTS.search(request) else None
    # (So do new places said to be "both inside that folder": "dxfs into a cad folder and the pdfs
    # into paperwork, both inside that folder".)
    sorting = sorting or placed_in_that(request, inner[0] if len(inner) == 1 else None, all_folders)
    if sorting is not None:
        inside_new = [*inside_new, *((posixpath.basename(path), path, "") for path in sorting[1])]
    if inside_new:
        alone = {name.lower() for name, _, _ in inside_new}
        words = [*(word for word in words if word.lower() not in alone), *(path for _, path, _ in inside_new)]
    # A new file's name said with the folder it is to be in ("as inspo.zip in the wedding folder",
    # "new file todo.md in the nakamura thesis folder") is in that folder.
    placed_names = names_in_folders(request, all_folders, folder_refs)
    if placed_names:
        bare = {posixpath.basename(path).lower() for path in placed_names}
        words = [*(word for word in words if word.lower() not in bare), *placed_names]
    # So is one said to be in the folder of the one it speaks of ("put his contract in a paperwork
    # folder in his dir"), the innermost it refers to.
    own = _OWN_FOLDER.search(request)
    if own and len(inner) == 1:
        name = own["before"] or own["after"]
        if is_changeable(placed := posixpath.join(inner[0], name)):
            words = [*(word for word in words if word.lower() not in (name.lower(), "his", "her", "their")), placed]
    # (A folder said as where files are, "the notes in meeting notes", "the images in photos folder",
    # describes none of its files by their names: no meeting-2026-04-12.md, no photos-backup.zip.)
    # (Nor does a path of several words it says, "into Meeting Notes/roadmap", nor "make copies of".)
    # (what it dictates describes no file: "append to staff/log.txt: member rolled ankle" is no members export)
    described_by = Request(without_locations(MAKE_COPIES.sub(" ", undictated(request, quotes=False)), all_folders))
    # (nor a new name of several words it gives, "to ch3 cover.psd", "call the copy 'release - fox cub.docx'")
    described_by = described_by.without(
        [
            name
            for name in spaced
            if "/" in name or (has_ext(name) and posixpath.basename(name).lower() not in basenames)
        ]
    )
    file_refs = referred_files(described_by.text, all_files, tags=tag_words(request, named=True))
    # A file said by the end of its path is one it refers to ("rename MATH240/Übungsblatt 5.pdf").
    words_of = Request(request)
    ends = [path for path in all_files if any(map(words_of.spells, path_ends(path)))]
    file_refs = list(dict.fromkeys([*(file_refs or []), *ends])) or None
    folders, files = folder_refs or all_folders, file_refs or all_files
    # A file it leaves alone ("except Todo.txt") is left out of a selection, and is no file it names.
    spared_paths = spared_files(request, all_files)
    spared_names = {posixpath.basename(path).lower() for path in spared_paths}
    mentioned = [path for path in all_files if (path in request or path in ends) and path not in spared_paths]
    dotted = [word for word in words if "/" not in word and has_ext(word) and word.lower() not in spared_names]
    # A new name goes beside a file the request refers to, in a folder it refers to, or in a new
    # folder it names ("make docs/meetings and put a note in it, 2026-02-10.md").
    new_dirs = [word for word in words if "/" in word and not has_ext(word) and word not in all_files]
    near = dict.fromkeys([*(posixpath.dirname(path) for path in files if files is not all_files), *folders, *new_dirs])
    renamed = [posixpath.join(folder, word) for folder in ["", *near] for word in dotted]
    word_dirs = [parent for word in words for parent in parent_folders(word)]
    archive_files = [path for path in files if path.lower().endswith(ARCHIVE_EXTS)] or [
        path for path in all_files if path.lower().endswith(ARCHIVE_EXTS)
    ]

    # A step reads what the request refers to: the files it describes ("the whiteboard photo"), and
    # folders only when it names one or no file.
    sources = changeable([*mentioned, *(folders if folder_refs or not file_refs else []), *files])
    dests = changeable([*words, *word_dirs, *renamed, *folders])
    names = changeable([*mentioned, *words, *word_dirs, *renamed, *folders, *files])
    archives = changeable([w for w in words if w.lower().endswith(ARCHIVE_EXTS)])
    # A glob selects files that exist: "**", a folder with files under it ("/**") or in it ("/*").
    inside = {posixpath.dirname(path) for path in all_files}
    # Everywhere ("**") only when the request takes files from no folder it names (refer.py).
    everywhere = [] if takes_from_folder(request, all_folders) else ["**"]
    spelled_dirs = [d for d in all_folders if names_alone(request, d)]
    # Never from a folder the request leaves alone ("empty media, leave media/videos alone").
    spared = spared_folders(request, all_folders)
    taken = [d for d in folders if d not in spared] or folders
    # Nor from a folder it says only as where files go ("move the autumn worksheet pdfs to old
    # resources"), where it takes from another.
    taken = [d for d in taken if not _only_where_to(request, d)] or taken
    # Files taken from a folder and from one inside it it also refers to are those of the inner one
    # ("Brennan Plumbing's whole client folder": clients/Brennan Plumbing, not clients), unless it
    # spells the outer one alone.
    # (An inner folder named by a word for a kind of file, "the logs from the Riverside FC folder",
    # may be that kind of file in the outer one.)
    if folder_refs:
        holding = {parent for o in taken if not names_a_kind(posixpath.basename(o)) for parent in parent_folders(o)}
        taken = [d for d in taken if d not in holding or names_alone(request, d)] or taken
    # Asked one thing of files it names by no word of their names, the request means files of the
    # folders it takes from and of the kinds it names ("nuke the .tmp junk in build"): a step names
    # no other file.
    described = files
    if file_refs is None and asked_steps(request) == 1 and len(request_parts(request)) == 1:
        said_kinds = referred_exts(request, [posixpath.splitext(p)[1].lower() for p in all_files], strict=True) or []
        taken_set = set(taken)
        in_reach = [path for path in all_files
                    if (everywhere or any(parent in taken_set for parent in parent_folders(path)))
                    and (not said_kinds or posixpath.splitext(path)[1].lower() in said_kinds)]  # fmt: skip
        if in_reach:
            described = in_reach
            sources = changeable([*mentioned, *folders, *in_reach])
    # Folders of one name in several places ("the activity files": athletes/*/activities) are all
    # taken, from the folder that holds them.
    holders = []
    if len(taken) > 1 and len({posixpath.basename(d).lower() for d in taken}) == 1:
        common = posixpath.commonpath(taken)
        holders = [common] if common and common not in taken else []
    # A pattern it types ("zip all the crash_*_sync logs") is one for names in the folders holding such names.
    typed = [
        f"{d}/{p}"
        for p in typed_patterns(request)
        for d in dict.fromkeys(
            posixpath.dirname(path) for path in all_files if fnmatch.fnmatchcase(posixpath.basename(path), p)
        )
        if d
    ]
    globs = bounded([*typed, *everywhere, *(f"{d}/**" for d in [*holders, *taken] if d in under),
                     *(f"{d}/*" for d in taken if d in inside)])  # fmt: skip
    # What a match leaves out is a folder the request leaves alone, when it names one.
    kept_out = bounded([*spared_paths, *(f"{d}/**" for d in sorted(spared) if d in under)]) or bounded(
        [*everywhere, *(f"{d}/**" for d in folders if d in under), *(f"{d}/*" for d in folders if d in inside)]
    )
    return Scope(
        words=words,
        words_of=words_of,
        all_files=all_files,
        under=under,
        inside=inside,
        all_folders=all_folders,
        folder_refs=folder_refs,
        file_refs=file_refs,
        folders=folders,
        files=files,
        mentioned=mentioned,
        dotted=dotted,
        renamed=renamed,
        archive_files=archive_files,
        sources=sources,
        dests=dests,
        names=names,
        archives=archives,
        everywhere=everywhere,
        spelled_dirs=spelled_dirs,
        spared=spared,
        spared_files=spared_paths,
        inside_new=inside_new,
        sorted_request=sorting[0] if sorting is not None else None,
        taken=taken,
        described=described,
        globs=globs,
        kept_out=kept_out,
    )


def request_times(request: str, scope: Scope, today: dt.date, chars: int) -> Times:
    """The dates a match of ``request`` may filter on, as of ``today``."""
    bounded = partial(bounded_to, chars=chars)
    words_of = scope.words_of
    # The years the request names, this year or last year when it says so: the model is apt to copy
    # this year from the view's first line instead of the request's year.
    # (A year in a path it spells is a folder's name: "into to-print/2026" says no year.)
    # (So is one in the name of a folder it says: "in Bills 2025", "the Rome 2024 photos".)
    # (Nor one in text it quotes to put in names: "change 'volunteer rota' to 'vol rota 2026'".)
    unyeared = SPELLED_PATH.sub(
        " ", QUOTED_CHANGE.sub(lambda found: found[0][: found.start("r") - found.start(0)], request)
    )
    for name in sorted({posixpath.basename(folder) for folder in scope.all_folders}, key=len, reverse=True):
        if " " in name and YEAR.search(name) and words_of.spells(name):
            unyeared = re.sub(re.escape(name), " ", unyeared, flags=re.IGNORECASE)
    years = {int(year) for year in YEAR.findall(unyeared)}
    said = request.lower()
    if THIS_YEAR.search(said):
        years.add(today.year)
    if LAST_YEAR.search(said):
        years.add(today.year - 1)
    # A year is a range: from its first day (modified_after) to the next year's (modified_before).
    # An age is one the request says ("a week": 7d), or any when it names neither an age nor a year,
    # and only on the side it says: before it for older files ("older than", "not touched in"),
    # after it for recent ones ("from the last week", "this month's").
    # (An age said with a count is that age only: "older than six months" is 180d, not a month.)
    counted = counted_ages(request)
    ages = counted or [*said_ages(words_of), *(f"{n}d" for n in DAYS.findall(request))] or ([] if years else list(AGES))
    # A day said by its month ("since July 1st") is a date on either side.
    days = calendar_days(request, today)
    ages = [*ages, *days] if counted or said_ages(words_of) or DAYS.search(request) or years else days or ages
    older, recent = words_of.uses(OLDER_WORDS) or bool(NOT.search(said)), words_of.uses(RECENT_WORDS)
    afters = bounded([*(ages if recent or not older else []), *(f"{y}-01-01" for y in sorted(years))])
    befores = bounded([*(ages if older or not recent else []), *(f"{y + 1}-01-01" for y in sorted(years)),
                       *(f"{y}-01-01" for y in map(int, BEFORE_YEAR.findall(said)))])  # fmt: skip
    return Times(years=years, days=days, older=older, recent=recent, afters=afters, befores=befores)


_WHERE_TO = re.compile(
    r"(?:(?<!\byou )(?<!\blike )(?<!\bwant )(?<!\bneed )\b(?:to|into|onto)|->|=>|\u2192)\s+(?:the\s+|my\s+|a\s+)?$",
    re.IGNORECASE,
)


def _only_where_to(request: str, folder: str) -> bool:
    """Whether ``request`` says ``folder`` (its path, or its name) only as where files go: "to X",
    "into the X folder"."""
    for name in dict.fromkeys((folder, posixpath.basename(folder))):
        # (not said at all, the usual case for most folders of a big workspace: no pattern to compile)
        if name.isascii() and request.isascii() and name.lower() not in request.lower():
            continue
        said = list(re.finditer(rf"(?<![\w/.-]){re.escape(name)}(?![\w-]|[/.][\w.-])", request, re.IGNORECASE))
        if said:
            return all(_WHERE_TO.search(request[: found.start()]) for found in said)
    return False


#: Words after which a number counts files ("the first 3", "move 4 pdfs", "the last 2").
_COUNT_LEADS = frozenset(("first", "last", "top", "newest", "latest", "oldest", "biggest", "largest", "smallest",
                          "only", "keep", "take", "grab", "pick", "about", "over", "under", "remaining", "other",
                          "most", "next", "recent", "few", "those", "just"))  # fmt: skip


def as_named(word: str, names: Iterable[str]) -> str:
    """``word`` as the first of ``names`` that holds it (in any case) spells it, or as it is."""
    lowered = word.lower()
    for name in names:
        at = name.lower().find(lowered)
        if at >= 0 and name[at : at + len(word)].lower() == lowered:
            return name[at : at + len(word)]
    return word


def counted_numbers(request: str) -> list[str]:
    """The numbers ``request`` says that may count files: not one said after a word that it names a
    thing by ("from chapter 2", "week 3 notes", "class 4B"), which counts nothing."""
    found = []
    for number in COUNT.finditer(request):
        before = request[: number.start()].split()
        word = before[-1].lower() if before else ""
        if word.isalpha() and word not in STOP_WORDS and word not in _VERBS and word not in _COUNT_LEADS:
            continue
        found.append(number[1])
    return found


def offered_values(request: str, scope: Scope, chars: int) -> Offered:
    """The sizes, counts, tags, extensions, texts, name starts and rename values ``request`` offers."""
    bounded = partial(bounded_to, chars=chars)
    words, all_files = scope.words, scope.all_files
    # A size is one the request names ("over 20 MB"), or a usual one when it names none ("the big files").
    sizes = bounded(f"{number}{unit.upper()}" for number, unit in SIZE.findall(request)) or list(SIZES)
    lowered = request.lower().split()
    counts = sorted({int(n) for n in counted_numbers(request) if int(n) >= 1}
                    | {at + 1 for at, word in enumerate(NUMBER_WORDS) if word in lowered})[:MAX_VALUES]  # fmt: skip
    # What a request tags with, it says where a tag is said ("as urgent", "the draft tag").
    named_tags = tag_words(request)
    said_tags_named = tag_words(request, named=True)
    # (Where it surely says which tags go on, the other words are none: "tag evry photo from zürich
    # with switzerland" tags nothing "evry".)
    given_tags = tag_words(request, given=True)
    if any(w.lower() in given_tags for w in words):
        named_tags = given_tags | said_tags_named
    words = [w for w in words if " " not in w]  # (a name of several words is no tag nor word files hold)
    # (A tag is said by a word: "for priya - tag them lehenga" tags nothing "-".)
    taggable = [w for w in words if "/" not in w and any(ch.isalnum() for ch in w)]
    tags = bounded(w for w in taggable if w.lower() in named_tags) or bounded(taggable)
    # A match selects by the extensions files have (one no file has selects nothing, and the dry
    # run refuses that); a classify rule may also name the usual ones ("images": .jpg, .png, .heic).
    found_exts = bounded(posixpath.splitext(path)[1].lower() for path in all_files)
    exts = bounded([*COMMON_EXTS, *found_exts])
    plain = [w for w in words if "/" not in w]
    # What files hold: a word of the request, or a word of a name that the request says ("budegt");
    # not one said only in the name of the folder they are in ("the notes in Meeting Notes").
    outside = Request(without_locations(request, scope.all_folders))
    held_words = {word.lower() for word in outside.text.split()} | {w.strip(WORD_EDGES).lower() for w in outside.words}
    said_plain = [w for w in plain if w.lower() in held_words]
    texts = bounded([*said_plain, *(w.lower() for w in said_plain),
                     *(w for w in dict.fromkeys(words_of_names(all_files)) if outside.says(w))])  # fmt: skip
    prefixes = [p for w in plain for p in name_prefixes(w)]
    # A name's start that some file's name starts with (compared as text: a request's word is never
    # run as a regular expression here, where a hostile one could take forever).
    basenames = sorted({posixpath.basename(path) for path in all_files})
    # (A word for a kind of file, "the 2024 photos", is a name's start only where it is said as one:
    # "everything named Screenshot something".)
    naming = [p for w in plain if not names_a_kind(w) or NAMED.search(request) for p in name_prefixes(w)]
    starts = [p for p in [*naming, *(f"{w} " for w in plain)] if starts_some(basenames, p)]
    # ... or a word that names hold inside them ("the essay drafts": essay-draft-2.docx; "built for
    # 1.20.1": sodium-0.5.8+mc1.20.1.jar), literally, where it is not a kind of file ("the pdfs").
    stems = {posixpath.splitext(name)[0].lower() for name in basenames}  # (an extension is no word of a name)
    held = [w for w in dict.fromkeys([*plain, *(stem(w) for w in plain)])
            if len(w) >= 4 and not names_a_kind(w) and w.lower() not in STOP_WORDS and w.lower() not in _VERBS
            and any(w.lower() in name and not name.startswith(w.lower()) for name in stems)]  # fmt: skip
    # (spelled as the names spell it: a name's regular expression tells case apart, "bergen" finds no "Bergen")
    regexes = bounded([*(regex for p in starts if compiles(regex := f"^{p}")),
                       *dict.fromkeys(literal(as_named(w, basenames)) for w in held)])  # fmt: skip
    # What a rename finds in names, and puts instead: a separator, or words of the request, literally.
    quoted = [text for _, text in QUOTED.findall(request)]
    spans = [*quoted, *(f" {t}" for t in quoted), *plain]
    # (and a number in brackets a download added, "with (1) on the end of the name", with its space)
    bracketed = [text for found in _BRACKETED.findall(request) for text in (f" {found}", found)]
    # (text names are said to start with is found at their start: "they all start with 'log '")
    started = [f"^{literal(text)}" for text in STARTING_WITH.findall(request)]
    finds = bounded(
        [*started, *(literal(text) for text in [*bracketed, " ", "-", "_", *spans, *(t.lower() for t in spans)])]
    )
    replaces = ["", *bounded(["-", "_", " ", *map(put_literally, [*quoted, *plain])])]  # "" (take it out) is not a name
    # A separator the request puts in ("spaces with underscores", "use dashes instead") is what goes in.
    put_in = [SEPARATORS[word[:3].lower()] for pair in PUT_IN.findall(request) for word in pair if word]
    if put_in:
        replaces = bounded([*put_in, *map(put_literally, quoted)])
    numbered = [m.group(1) for w in plain if (m := NUMBERED.match(w))]
    # Names numbered the way the request shows ("as page_001, page_002"): those templates only.
    counted = [f"{w}_{{n:03}}{{ext}}" for w in numbered if w.isalnum()]
    # (with as many digits as it shows: "to repair-001, repair-002 etc", "mochi-dental-01, mochi-dental-02")
    counted = list(dict.fromkeys([*(t for w in plain if (t := counted_template(w, plain))), *counted]))
    # Names prefixed with what the request spells ("prefix the dumps with prod-") start with it.
    prefixed = [f"{found[1]}{{name}}" for found in PREFIX_WITH.finditer(request)]
    templates = prefixed or bounded([*TEMPLATES, *(f"{w}_{{n:03}}{{ext}}" for w in [*numbered, *plain] if w.isalnum()),
                         *(f"{p}{{name}}" for p in prefixes if p[-1] in "-_"),
                         *(f"{w}-{{name}}" for w in plain if w.isalnum())])  # fmt: skip
    templates = bounded([*counted, *dated_templates(request)]) or templates
    # Names shown by an example ("to the 'ep40 - subtitles.srt' pattern", "from 'ch03 - x.docx' to
    # 'Chapter 03 - x.docx'"): what a rename puts around each name, and what it changes in them.
    # (a day said before a name with a space is part of the example: "like 2026-09-01 IMG_5501.jpg")
    dated_shown = [f"{day} {name}" for day, name in _DAY_THEN_NAME.findall(request)]
    shown = [name for name in dict.fromkeys([*quoted, *dated_shown, *(w for w in words if has_ext(w))])
             if has_ext(name)]  # fmt: skip
    templates = bounded([*example_templates(shown, basenames), *templates])
    # (An example of a name, where the file it renames goes unsaid: "like 2026-06-29_IMG_5521.jpg";
    # "rename wedding-38.JPG to v2-wedding-38.JPG" says the file, and moves it to its new name.)
    in_examples = {name.lower() for _, name in _DAY_THEN_NAME.findall(request)}
    said_whole = {posixpath.basename(token.strip(WORD_EDGES)).lower() for token in request.split()} - in_examples
    by_example = example_templates(shown, [base for base in basenames if base.lower() not in said_whole])
    for was, now in changed_by_example([name for name in quoted if has_ext(name)] or shown):
        finds = bounded([*was, *finds])
        replaces = bounded([*dict.fromkeys([put_literally(now), *replaces])])
    # Text that names hold, said to change into other text ("change the DSC_ at the start of the
    # names to berlin2026_"): a rename finds it (at the start where it says so) and puts the other
    # instead, and names by no template. (Not a tag swapped for another: "swap the draft tag for sent",
    # nor separators, "replace spaces with dashes", which PUT_IN reads.)
    swaps = [(found["was"], found["now"], bool(AT_START.search(found["between"])))
             for found in changed_texts(request)
             if not _TAG_WORD.search(found["between"]) and not PUT_IN.search(found.group(0))
             and any(found["was"] in name for name in basenames)]  # fmt: skip
    if swaps:
        finds = bounded(f"^{literal(text)}" if start else literal(text) for text, _, start in swaps)
        replaces = bounded(dict.fromkeys(put_literally(new) for _, new, _ in swaps))
    return Offered(
        sizes=sizes,
        counts=counts,
        named_tags=named_tags,
        said_tags_named=said_tags_named,
        tags=tags,
        found_exts=found_exts,
        exts=exts,
        texts=texts,
        regexes=regexes,
        finds=finds,
        replaces=replaces,
        templates=templates,
        swapped=bool(swaps),
        by_example=bool(by_example),
    )
