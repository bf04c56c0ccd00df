"""The match stage of the narrowed planner schema: what files a step's match may select by.

A match filters by a date only when the request speaks of time, by a size when of size, by kind
when it names a kind, by what files say when it says what they are about, and by a tag files have
that it says; a request that asks one thing says all of what that step selects (:mod:`engine.planner.narrow`
puts the stages together).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine.planner.kind_words import SPELLED_PATH, group_exts, referred_exts
from engine.planner.offered import Offered, Scope, Times
from engine.planner.parts import request_parts
from engine.planner.places import FILE_NAME, referred_targets, without_places
from engine.planner.prompt import ViewEntry
from engine.planner.refer import OP_WORDS, SENDING_WORDS, referred_ops, without_folders_in
from engine.planner.said import STOP_WORDS, about_phrases, about_words, asked_steps
from engine.planner.said_names import without_locations
from engine.planner.schema_edit import bounded_to, narrow_enum
from engine.planner.spoken import (
    BY_TAG,
    CALLED_BY,
    DAYS,
    FOLDERS_ONLY,
    MAKING,
    MENTIONING,
    MONTH_NAME,
    NAMED_FOLDERS,
    NOT,
    RANKING_WORDS,
    SIZE,
    SIZE_WORDS,
    SIZES,
    SPARE_WORDS,
    TIME_WORDS,
    said_ages,
    size_side,
)
from engine.planner.values import SPLIT, globbed, goes_to, words_of_names
from engine.planner.words import Request, name_words, stem


@dataclass(frozen=True)
class Matched:
    """What the match stage found that later stages use."""

    #: How many steps the request asks, and whether it asks one thing (one part, one step).
    asked: int
    one_thing: bool
    #: Whether it speaks of time; the size side and the date side it selects by, if any.
    timed: bool
    sized: str | None
    dated: str | None
    #: The tags it selects files by, and what it says files are about.
    by_tag: list[str]
    said_about: list[str]


def narrow_match(defs: dict[str, Any], request: str, scope: Scope, times: Times, offer: Offered,
                 entries: list[ViewEntry], chars: int, *, retag: bool, swaps: bool = False,
                 off: list[str] | None = None) -> Matched:  # fmt: skip
    """Narrow the match of ``defs`` (and its kept-out globs, sizes and tag names) to what ``request``
    says over ``scope`` (``retag``: it swaps one tag for another in those words; ``swaps``: it puts
    tags on and takes others off, ``off`` where the whole request it is a piece of says which);
    return what later stages use."""
    bounded = partial(bounded_to, chars=chars)
    said = request.lower()
    defs["kept_out"] = dict(defs["glob"])
    for key, values in (
        ("glob", scope.globs),
        ("kept_out", scope.kept_out),
        ("size", offer.sizes),
        ("tag_name", offer.tags),
    ):
        narrow_enum(defs, key, values)
    match = defs["match"]["properties"]
    match["exclude"] = {**match["exclude"], "items": {"$ref": "#/$defs/kept_out"}}
    # A match leaves files out only when the request says to leave some alone.
    # (Or spells a folder inside another it spells: "purge code/app, keeping code/app/src".)
    inner = any(a != b and b.startswith(f"{a}/") for a in scope.spelled_dirs for b in scope.spelled_dirs)
    if not (scope.words_of.uses(SPARE_WORDS) or NOT.search(said) or inner):
        del match["exclude"]
    # A match filters by date only when the request speaks of time, and by size when of size.
    # (A place it sends files to says no time: "put the utils module in old".)
    sent_to = referred_targets(request, in_places=scope.words_of.uses(SENDING_WORDS)) or set()
    timing = Request(without_places(request, sent_to)) if sent_to else scope.words_of
    timed = timing.uses(TIME_WORDS) or times.years or DAYS.search(request) or times.days
    for key, values in (("modified_after", times.afters), ("modified_before", times.befores)):
        if timed and values:
            narrow_enum(match, key, values, defs)
        else:
            del match[key]
    if not (scope.words_of.uses(SIZE_WORDS) or SIZE.search(request)):
        del match["larger_than"], match["smaller_than"]
    # A request that asks one thing (one part, one step) says all of what that step selects.
    asked = asked_steps(request)
    one_thing = asked == 1 and len(request_parts(request)) == 1
    # Folders said as what a step takes ("just the folders from Downloads, not the loose files")
    # are selected as folders: those right in the folder named. A match selects folders only then.
    folders_only = one_thing and FOLDERS_ONLY.search(request) is not None and not MAKING.search(request)
    # Folders taken by their name ("every __pycache__ folder under scripts") are those of that name
    # under the folders it takes from (or anywhere, where it names none).
    basenames = {posixpath.basename(folder) for folder in scope.all_folders}
    named_dirs = [name for name in dict.fromkeys(found.group(1) for found in NAMED_FOLDERS.finditer(request))
                  if name in basenames] if one_thing and not MAKING.search(request) else []  # fmt: skip
    if folders_only:
        match["type"] = {"const": "dir"}
        defs["match"]["required"] = [*defs["match"]["required"], "type"]
        narrow_enum(defs, "glob", [glob for glob in scope.globs if glob.endswith("/*")] or scope.globs)
    elif named_dirs:
        match["type"] = {"const": "dir"}
        defs["match"]["required"] = [*defs["match"]["required"], "type"]
        places = [d for d in scope.taken if d in scope.under and posixpath.basename(d) not in named_dirs]
        narrow_enum(defs, "glob", bounded_to([*(f"{d}/**/{name}" for d in places for name in named_dirs),
                                              *(f"**/{name}" for name in named_dirs if scope.everywhere or not places)],
                                             chars))  # fmt: skip
    else:
        match["type"] = {"enum": ["file"]}
    # Files said to be big ("nuke anything big in there") are those over a size, and small ones
    # those under one: a step selects them so, and not one by one.
    # (Said of files in a sentence that asks nothing, a size is why, not which: "those sdr recordings
    # are massive. delete any older than a week" deletes them by age alone.)
    sized = size_side(_asking(request)) if one_thing and not scope.mentioned and not scope.dotted else None
    # (Where it says no size otherwise, "little" is none: "do a little tidy of the logs".)
    sized = sized if sized in match else None
    # So are files said to be of a year or an age ("the 2024 photos", "this week's logs", "not
    # touched in a year"): by a date on the side said, unless the request ranks them ("the newest 3").
    # (A year given as a tag, "label it with 2025", and "old" as a place, "go to old", say no time.)
    dated: str | None = None
    folder_names = {posixpath.basename(folder) for folder in scope.all_folders}
    years_said = [year for year in times.years if str(year) not in offer.named_tags and str(year) not in folder_names]
    aged = bool(said_ages(scope.words_of) or DAYS.search(request) or times.days)
    if one_thing and not retag and not scope.mentioned and not scope.dotted and not scope.words_of.uses(RANKING_WORDS):
        if years_said:
            dated = "modified_after"
        elif aged and times.recent != times.older:
            dated = "modified_after" if times.recent else "modified_before"
    if dated and dated in match:
        defs["match"]["required"] = [*defs["match"]["required"], dated]
    # Files taken from around a folder the request spares ("but keep logs/archive") leave it out.
    if (
        one_thing
        and scope.spared
        and "exclude" in match
        and any(globbed(f"{d}/x", glob) for d in scope.spared for glob in scope.globs)
    ):
        match["exclude"] = {**match["exclude"], "minItems": 1}
        defs["match"]["required"] = [*defs["match"]["required"], "exclude"]
    # So do files taken from where a file it spares is ("delete the txt files in scratch except Todo.txt").
    elif one_thing and scope.spared_files and "exclude" in match:
        most = min(match["exclude"].get("maxItems", 8), len(scope.spared_files) + len(scope.spared))
        match["exclude"] = {**match["exclude"], "minItems": 1, "maxItems": most}
        defs["match"]["required"] = [*defs["match"]["required"], "exclude"]
    if sized:
        del match["smaller_than" if sized == "larger_than" else "larger_than"]
        defs["match"]["required"] = [*defs["match"]["required"], sized]
        # Big is over the usual big size ("10MB"), small under the usual small one, unless it says one.
        if not SIZE.search(request):
            match[sized] = {"enum": [SIZES[0] if sized == "larger_than" else SIZES[1]]}
    # A match is by kind only when the request names a kind (refer.py).
    # (A folder it takes files from is no kind: "everything in Documents" asks for no documents.)
    # (Nor is a new place of several words it names: "into a folder raw archive" asks for no archives.)
    sent_to = referred_targets(request) or set()
    new_places = [word for word in scope.words if " " in word and "/" not in word and word not in scope.all_folders
                  and goes_to(word, sent_to)]  # fmt: skip
    # (nor a tag it puts on: "tag the huge tiffs with to-backup" asks for no backups)
    put_on = [tag for tag in offer.named_tags if any(ch in tag for ch in "-_")]
    kinds = referred_exts(Request(without_folders_in(request, scope.all_folders)).without([*new_places, *put_on]).text,
                          offer.found_exts)  # fmt: skip
    if kinds:
        narrow_enum(match["ext"], "items", kinds, defs)
        match["ext"]["maxItems"] = min(match["ext"]["maxItems"], len(kinds))
        # (and, asked one thing of kinds it spells with their dot, "the .bak and .orig leftovers", all of them)
        spelled = [ext for ext in kinds if re.search(rf"(?<![\w/.]){re.escape(ext)}\b", request, re.IGNORECASE)]
        if one_thing and len(spelled) == len(kinds) > 1:
            match["ext"].update(items={"enum": kinds}, minItems=len(kinds), uniqueItems=True)
    else:
        del match["ext"]
    # "the pics from Camera" are every kind of picture there: when one thing is asked of files taken
    # from one folder, by a word for a group of kinds, the match names at least as many of those kinds
    # as the folder has (and each once).
    taken_from = {d for d in scope.taken if f"{d}/**" in scope.globs} if "**" not in scope.globs else set()
    # (A word of a folder's name of several words is no word for a kind: "the mp3s in
    # videos-and-music", "from the videos and music".)
    joined_names = [base for base in map(posixpath.basename, scope.all_folders) if SPLIT.search(base)]
    said_names = [word for base in joined_names if len(parts := SPLIT.split(base.lower())) > 1
                  and all(scope.words_of.spells(part) for part in parts) for word in parts]  # fmt: skip
    group = group_exts(scope.words_of.without([*joined_names, *said_names]).text, wide=True)
    # (So are "the big videos" of the whole workspace: as many kinds as the fewest that a place
    # offered to select from holds, of those that hold any.)
    if kinds and group and one_thing:
        offered = [ext for ext in group if ext in kinds]
        scopes = [f"{d}/**" for d in taken_from] if len(taken_from) == 1 else scope.globs if "**" in scope.globs else []
        held = [{posixpath.splitext(path)[1].lower() for path in scope.all_files if globbed(path, place)} & set(offered)
                for place in scopes]  # fmt: skip
        wanted = min((found for found in held if found), key=len, default=set())
        if len(wanted) > 1:
            match["ext"] = {**match["ext"], "items": {"enum": offered}, "minItems": len(wanted),
                            "maxItems": len(offered), "uniqueItems": True}  # fmt: skip
    # A match selects by what files say only when the request says what they are about ("the
    # security notes", "mentioning the vpn"): a word elsewhere in it is no such filter.
    about = Request(" ".join(about_words(request)))
    said_about = [text for text in offer.texts if about.uses([text])]
    # (A word of the name of the folder it takes files from says where they are, not what they say:
    # "the 2025 service notes" of the folder "service notes".)
    where = {word for d in scope.folder_refs or [] for word in re.findall(r"[^\W_]+", posixpath.basename(d).lower())}
    said_about = [text for text in said_about if text.lower() not in where]
    # (Where it says what they mention, that is what: "any patient notes that mention acl" mention
    # "acl", not "patient".)
    mentioned = _MENTION.split(request, maxsplit=1)
    if len(mentioned) > 1:
        right_after = Request(" ".join(mentioned[1].split()[:3]))
        said_about = [text for text in said_about if right_after.uses([text])] or said_about
    if said_about:
        # (and what two words say together: "mention a missing 1099")
        first = {text.lower() for text in said_about}
        said_about += [phrase for phrase in about_phrases(request) if phrase.split(" ")[0] in first]
        narrow_enum(match, "contains", said_about, defs)
        # and, asked one thing of files said to mention something ("every note mentioning
        # release"), a match selects by it.
        if one_thing and MENTIONING.search(request):
            defs["match"]["required"] = [*defs["match"]["required"], "contains"]
    else:
        del match["contains"]
    narrow_enum(match, "name_regex", offer.regexes, defs, drop=True)
    # A match selects by a tag files have (one no file has selects nothing) that the request says.
    # A tag that is also the name of a folder the request refers to is said as the folder ("copy
    # whatever in onboarding ..."), unless it is said as a tag ("the onboarding tag").
    folder_words = {
        word.lower()
        for folder in scope.folders
        if scope.folders is not scope.all_folders
        for word in words_of_names([folder])
    }
    # (a tag of several words, "to-edit", is said when it is spelled whole)
    # (not a word of a path or a file's name it spells: "as patients/chloe-martin.zip" says no
    # "patient" tag, "-> jobs/2026-07 Fenwick Estate" no "job")
    outside = Request(SPELLED_PATH.sub(" ", FILE_NAME.sub(" ", request)))
    said_tags = [tag for entry in entries for tag in entry.tags if outside.uses([tag]) or outside.spells(tag)]
    had = bounded(tag for tag in said_tags if tag.lower() in offer.named_tags or tag.lower() not in folder_words)
    narrow_enum(match, "tag", had, defs, drop=True)
    # Files said by their tag ("every note tagged exam", "the urgent-tagged files") are selected by it.
    # So are files called by a tag they have that names no file nor folder ("the favorites in Camera").
    name_words = {word.lower() for word in words_of_names([*scope.all_files, *scope.all_folders])}
    by_tag = [tag for tag in had if BY_TAG.search(request.replace(tag, "\0"))
              or (CALLED_BY.search(request.replace(tag, "\0")) and tag.lower() not in name_words)]  # fmt: skip
    if one_thing and by_tag and "tag" in match:
        defs["match"]["required"] = [*defs["match"]["required"], "tag"]
    # Files chosen by a tag they have get another ("everything tagged dinner should also be tagged
    # weeknight"), unless it swaps one for another (below).
    others = [tag for tag in defs.get("tag_name", {}).get("enum", []) if tag not in by_tag]
    if by_tag and others and not (retag or swaps):
        _tags_put_on(defs, others)
    # A tag taken off is one that files have, when the request says one ("swap the todo tag for done").
    if had or off:
        # (those it says are tags, where it says some: "take the draft tag off the budget notes")
        had = off or [tag for tag in had if tag.lower() in offer.said_tags_named] or had
        defs["had_tags"] = {**defs["tags"], "items": {"enum": had}, "maxItems": min(defs["tags"]["maxItems"], len(had))}
        defs["untag"]["properties"]["tags"] = {"$ref": "#/$defs/had_tags"}
        # and one swapped for another goes on as the other ("swap the draft tag for published").
        put_on = [tag for tag in defs.get("tag_name", {}).get("enum", []) if tag not in had]
        if (retag or swaps) and put_on:
            _tags_put_on(defs, put_on)
            # Files a tag is swapped on are chosen by the one they had, never by the one they get:
            # "all the invoices tagged unpaid have been paid. tag them paid and take the unpaid tag off".
            if "tag" in match:
                narrow_enum(match, "tag", had, defs, drop=True)
    # Files said by words that some of the names where they are taken from hold ("the catalogue
    # preview pdfs in Downloads", "the after pics"), asked one thing, are selected by those words.
    # (Not files sorted to several places, whose rules say which go where: "invoices go to
    # accounts/invoices, pics to ...")
    sorting = len(referred_targets(request) or ()) > 1
    if one_thing and not said_about and not by_tag and not offer.swapped and not sorting and "name_regex" in match:
        naming = _naming_regexes(request, scope, offer.regexes, {tag.lower() for e in entries for tag in e.tags})
        if naming:
            narrow_enum(match, "name_regex", naming, defs)
            defs["match"]["required"] = [*defs["match"]["required"], "name_regex"]
    return Matched(asked=asked, one_thing=one_thing, timed=bool(timed), sized=sized, dated=dated,
                   by_tag=by_tag, said_about=said_about)  # fmt: skip


def _tags_put_on(defs: dict[str, Any], tags: list[str]) -> None:
    """Make the tags a tag step puts on one or more of ``tags``."""
    defs["new_tags"] = {**defs["tags"], "items": {"enum": tags}, "maxItems": min(defs["tags"]["maxItems"], len(tags))}
    defs["tag"]["properties"]["tags"] = {"$ref": "#/$defs/new_tags"}


def _naming_regexes(request: str, scope: Scope, regexes: list[str], tags: set[str]) -> list[str]:
    """Of ``regexes`` (a name's start, or a word names hold), those of words the request says
    outside the folders it says (no ``tags``), that find some but not all of the files of the folders it takes
    files from (every file, where it takes from none)."""
    places = [glob for glob in scope.globs if glob != "**" and glob.endswith(("/**", "/*"))] or ["**"]
    held = {glob: [posixpath.basename(path) for path in scope.all_files if globbed(path, glob)] for glob in places}
    # (nor one of a path it spells, "into hive scale/", nor of an example, "(db-dump-... -> prod-db-dump-...)")
    outside = Request(_EXAMPLE.sub(" ", SPELLED_PATH.sub(" ", without_locations(request, scope.all_folders))))
    # (not a word of a folder's name, "the census images", "any catalogue" of catalogues/, "the crash
    # logs" of crashlogs/, nor a tag, a word that asks for an op or says when, a year or a number)
    folder_words = {word.lower() for folder in scope.all_folders for word in name_words(folder)}
    found = []
    for regex in regexes:
        word = regex.removeprefix("^").replace("\\", "").strip(" _-")
        lowered = word.lower()
        if (lowered in tags or lowered in _NOT_NAMING or MONTH_NAME.match(lowered)
                or any(stem(lowered) in held_word for held_word in folder_words)
                or not any(ch.isalpha() for ch in word) or not outside.says(word)):  # fmt: skip
            continue
        compiled = re.compile(regex)
        hits = {glob: sum(1 for name in names if compiled.search(name)) for glob, names in held.items()}
        # (some files of a place and never all of one: "the M31 captures" are the whole M31 folder)
        if any(hits.values()) and all(hits[glob] < len(held[glob]) for glob in held if hits[glob]):
            found.append(regex)
    return found


#: An example a request gives: in brackets, after "like" or "e.g.", or after an arrow.
_EXAMPLE = re.compile(r"\([^)]*\)|\b(?:like|e\.g\.?|eg|such\s+as)\s[^,;.!?]*|(?:->|=>|\u2192)\s*\S+", re.IGNORECASE)
#: Words that say an op, when, or how much: never what names hold.
_NOT_NAMING = frozenset([*(word for words in OP_WORDS.values() for word in words), *TIME_WORDS, *STOP_WORDS,
                         "more", "less", "than", "older", "newer", "bigger", "smaller", "over", "under", "every",
                         "whole", "everything", "anything", "files", "file", "stuff", "things", "ones"])  # fmt: skip


#: Where a sentence ends: a full stop, a question or exclamation mark or a semicolon, then a space.
_SENTENCE_END = re.compile(r"[.!?;]+\s+")


def _asking(request: str) -> Request:
    """The sentences of ``request`` that ask for an op, or all of it where none or each does."""
    sentences = _SENTENCE_END.split(request)
    asking = [sentence for sentence in sentences if referred_ops(sentence)]
    return Request(" ".join(asking) if asking else request)


#: A verb that says what files mention.
_MENTION = re.compile(
    r"\b(?:mention|mentions|mentioning|mentioned|talk\s+about|talks\s+about|regarding)\b", re.IGNORECASE
)
