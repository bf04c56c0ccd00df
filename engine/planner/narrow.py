"""The planner reply schema narrowed to one request: every name a plan may use comes from the request
or the workspace.

A small model copies badly: asked to write ``logs/server-2026-11-03.log`` it drifts after a few
characters. So the schema the answer is decoded under lists, for each value a plan copies, the
values this request and this workspace offer: paths are the workspace's files and folders, the
words of the request that look like names, and their parents, none in a ``.git``; globs are
``**`` and each of those folders with ``/**`` (files under it) or ``/*`` (files in it); dates are
the ages the request says and the years it names, each on its side of the range; sizes the usual
thresholds and those the request names, and a match has a date or a size only when the request
speaks of time or of size; the tags a step adds or takes off the request's words; ``contains`` the
request's words and the words of names it says; a match's extensions, tags and name starts are ones
the workspace's files have (one that no file has would select nothing); a rule's extensions also
the common ones. Where the request refers to some folders, files or kinds of file
(:mod:`engine.planner.refer`), those are the only ones offered;
rename templates the usual forms, and what a rename finds and puts instead the request's words,
literally. The model then chooses among
a few strings instead of spelling one, and a plan can name nothing that neither the request nor
the workspace holds. A file's content is a line of the request's own words, and what files are
about and the tags a step adds are words it says so (:mod:`engine.planner.said`). A goal stays
free. The schema is then made :func:`~engine.planner.prompt.one_way`, so that every answer it
allows is a valid plan.

The values are read from the request and the workspace first (:mod:`engine.planner.offered`);
this module edits the schema with them, stage by stage: the ops, the paths
(:mod:`engine.planner.narrow_paths`), the match filters
(:mod:`engine.planner.narrow_match`) and other values, the steps, how a step chooses files and where
it puts them.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
from collections.abc import Sequence
from functools import partial
from typing import Any

from engine.planner.consistent import consistent_matches
from engine.planner.kind_words import ARCHIVING_VERB, kind_exts, names_a_kind, referred_exts
from engine.planner.narrow_match import narrow_match
from engine.planner.narrow_paths import narrow_paths, unoffer
from engine.planner.offered import Offered, Scope, offered_values, request_scope, request_times
from engine.planner.parts import request_parts
from engine.planner.pieces import names_alone, piece_ops, rules_in_order, said_at, steps_by_piece
from engine.planner.places import (
    FILE_NAME,
    made_inside,
    made_names,
    moved_and_named,
    referred_targets,
)
from engine.planner.prompt import SINGLE_KEYS, ViewEntry, base_reply_schema, one_way, reply_schema, seen_request
from engine.planner.refer import ADDED_FILE, OP_WORDS, SENDING_WORDS, referred_files, referred_ops, unsaid
from engine.planner.said import (
    CLAUSE_BREAK,
    FIRST_N,
    NOT_NEEDED,
    QUOTED,
    REMOVING,
    SIGN_OFFS,
    SOMETHING_DONE_TO_THEM,
    asked_pieces,
    asked_steps,
    dictated_lines,
    not_files,
    tag_words,
    undictated,
)
from engine.planner.schema_edit import (
    MAX_VALUES,
    bounded_to,
    listed_only,
    narrow_enum,
    renamed_beside,
    selected_only,
    step_of,
    unique_when_few,
)
from engine.planner.specific import specific_matches
from engine.planner.spoken import (
    AFFIX,
    ALL_WORDS,
    FEW_WORDS,
    JOINED_REFS,
    LIMITS,
    MKDIR_WORDS,
    NAMED,
    NAMED_WORDS,
    RANKING_WORDS,
    RETAG,
)
from engine.planner.values import (
    ARCHIVE_EXTS,
    COMMON_EXTS,
    goes_to,
    has_ext,
    innermost,
    is_changeable,
    parent_folders,
)
from engine.planner.words import Request, stem

#: The most characters one list may hold at first; lists are cut shorter while the whole schema is
#: longer than :data:`MAX_SCHEMA_CHARS`, which keeps it under the server's 64 KiB.
MAX_LIST_CHARS = 16_000
MAX_SCHEMA_CHARS = 60_000


def narrowed_schema(
    request: str, entries: list[ViewEntry], today: dt.date, *, per_place: bool = True
) -> dict[str, Any]:
    """The planner reply schema for ``request`` over a workspace of ``entries`` as of ``today``,
    at most :data:`MAX_SCHEMA_CHARS` characters of JSON: in a big workspace, each list holds what
    comes first in it (the names the request mentions, then folders, then files). Only the request
    the model reads counts (:func:`seen_request`): a pasted page does not make a huge schema.
    Each place a match may select from offers only the filters that select something there
    (:mod:`engine.planner.consistent`; ``per_place=False``: the values as the request offers them)."""
    request = seen_request(request)
    chars = MAX_LIST_CHARS
    while True:
        # Each step of a sentence that asks several things narrowed to its own words, where that fits.
        for by_piece in (True, False):
            schema = _narrowed(request, entries, today, chars, by_piece=by_piece)
            if per_place:
                specific_matches(schema, request)
                one_thing = asked_steps(request) == 1 and len(request_parts(request)) == 1
                consistent_matches(schema, entries, today, one_thing=one_thing)
            if len(json.dumps(schema)) <= MAX_SCHEMA_CHARS:
                return schema
        if chars <= 1000:
            return schema
        chars //= 2


def schema_for(request: str, entries: list[ViewEntry], today: dt.date) -> tuple[dict[str, Any], str | None]:
    """The reply schema the planner answers ``request`` under, and None; or, where narrowing fails
    (a request no rule foresaw), the whole reply schema and what failed, in one line: the answer
    is still a valid plan, and goes through the dry run and the approval as any other."""
    try:
        return narrowed_schema(request, entries, today), None
    except Exception as exc:  # (narrowing is many rules over hostile text: none may end the task)
        return reply_schema(), " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def _narrow_ops(
    defs: dict[str, Any], request: str, scope: Scope, *, by_example: bool = False
) -> tuple[set[str] | None, bool, bool, list[str], bool]:
    """Narrow the ops a step may take, and whether an archive removes what it packs, to what
    ``request`` says (``by_example``: it shows a new name of a file it renames); return the ops said
    (None: any), whether it swaps one tag for another, whether it unpacks into folders it makes, the
    missing parents of the folders it names, and whether it renames files without sending them anywhere."""
    # A step does what the request says: no delete unless it speaks of deleting (refer.py).
    # (What it dictates for a file to say asks for nothing.)
    ops = referred_ops(undictated(request)) if dictated_lines(request) else referred_ops(request)
    # A folder made is no file written: "create analysis/archive" dictates nothing and names no file.
    dictates = undictated(request) != request or QUOTED.search(request) is not None
    names_a_file = any(has_ext(posixpath.basename(word)) for word in scope.words)
    if ops is not None and {"write", "mkdir"} <= ops and not dictates and not names_a_file:
        ops = ops - {"write", "append"}
    said = Request(undictated(request))
    # An archive unpacked is not copied nor packed for the word that says what it holds: "restore the
    # wsjt-x backup tarball into software/wsjtx restore". Nor is "add" alone a tag ("add to the
    # mileage sheet - today, ...").
    # (Nor for "zip" said as what it is: "unzip the care card zip from downloads".)
    if ops is not None and "extract" in ops and said.uses(_UNPACKS):
        ops = ops - {op for op in ("copy", "archive") if not said.uses(_WORDS_OF[op])}
        if not ARCHIVING_VERB.search(said.text) and not said.uses(_PACKS):
            ops = ops - {"archive"}
    if ops is not None and "tag" in ops and not said.uses(_TAGS):
        ops = ops - {"tag"}
    # A new file it dictates text for is written, never moved: "put a NOTES.txt in data/processed
    # that says: ..." (there is no NOTES.txt to move).
    # (Unless it asks something else too: "copy design.md to handoff/ and drop a handoff/README.txt
    # in there saying ...".)
    plain = undictated(request)
    added = ADDED_FILE.search(plain) if dictates and ops is not None and "write" in ops else None
    if added is not None:
        name = posixpath.basename(FILE_NAME.findall(added.group(0))[-1]).lower()
        rest = referred_ops(plain[: added.start()] + " " + plain[added.end() :]) or set()
        if rest <= {"write", "append", "mkdir"} and all(posixpath.basename(p).lower() != name for p in scope.all_files):
            ops = (ops or set()) & {"write", "append", "mkdir"}
    # Files renamed, and sent nowhere, stay where they are: "rename mochi's dental photos to mochi-dental-01,
    # mochi-dental-02 and so on" moves nothing into a folder "mochi-dental-01", nor sorts anything.
    renaming = ops is not None and "rename" in ops and said.uses(OP_WORDS["rename"]) and not said.uses(_SENDS)
    # (A move renames one file only to a name it says: "rename a.png to b.png".)
    # (nor when it spells a file's name without its kind: "rename wrap dress v2 to wrap dress final")
    if renaming and ops is not None:
        one_named = FILE_NAME.search(undictated(request)) or _spells_a_stem(said, scope.all_files)
        ops = ops - ({"classify"} if one_named else {"classify", "move"})
    # Names shown by an example of one renamed, and sent to no folder, are renamed where they are:
    # "put the date in front of last month's field photos, like 2026-06-29_IMG_5521.jpg".
    places = referred_targets(undictated(request)) or set()
    if by_example and ops is not None and "rename" in ops and all(has_ext(place) for place in places):
        ops, renaming = {"rename"}, True
    # A tag swapped for another ("swap the todo tag on X for done") comes off, then the other goes on.
    retag = ops is not None and {"tag", "untag"} <= ops and RETAG.search(request) is not None
    if retag:
        ops = {"tag", "untag"}
    # Names given a start or an end ("prefix the dumps with prod-") are renamed where they are.
    elif ops is not None and "rename" in ops and AFFIX.search(request) and len(request_parts(request)) == 1:
        ops = {"rename"}
    # An archive removes what it packs only when the request says so ("and delete the originals"),
    # and then surely when it makes one archive ("zip ... into a.zip, removing the originals").
    archive = defs["archive"]
    # (Not when it says not to: "zip them up, dont delete them".)
    # ("dont need the loose files after" says so too)
    not_needed = NOT_NEEDED.search(request) is not None
    if (
        ops is not None
        and "delete" not in ops
        and not SOMETHING_DONE_TO_THEM.search(unsaid(request))
        and not not_needed
    ):
        del archive["properties"]["remove"]
    elif len(scope.archives) == 1 and (REMOVING.search(unsaid(request)) or not_needed):
        archive["properties"]["remove"] = {"const": True}
        archive["required"] = [*archive["required"], "remove"]
    # An archive is unpacked into a folder whose parent exists or that a mkdir makes first: a
    # request to extract makes only the missing parents of the folders it names.
    missing = [
        p
        for w in scope.words
        for p in parent_folders(w)
        if "/" in w and p not in scope.all_folders and is_changeable(p)
    ]
    unpacking = bool(ops and "extract" in ops and "mkdir" in ops and not scope.words_of.uses(MKDIR_WORDS))
    if unpacking and not missing:
        ops = (ops or set()) - {"mkdir"}
    step = defs["step"]
    # (Where it says no op at all, every op but a delete: nothing is deleted unless it says so, "set
    # up projects/X with drawings, photos and admin folders inside" deletes no photos.)
    # (A word of deleting that is as often a noun still says one: "bin the outdated figure", "empty tools".)
    kept = ops or set(step["properties"]["op"]["enum"]) - (set() if said.uses(OP_WORDS["delete"]) else {"delete"})
    step["properties"]["op"]["enum"] = [op for op in step["properties"]["op"]["enum"] if op in kept]
    step["allOf"] = [way for way in step["allOf"] if way["if"]["properties"]["op"]["const"] in kept]
    return ops, retag, unpacking, missing, renaming


def _spells_a_stem(said: Request, files: Sequence[str]) -> bool:
    """Whether ``said`` spells the name of one of ``files`` without its extension, a name of more
    than one word ("wrap dress v2"): one file is renamed, by a move."""
    stems = {posixpath.splitext(posixpath.basename(path))[0] for path in files}
    return any(len(stem.split()) > 1 and said.spells(stem) for stem in stems)


def _renamed_by_stem(request: str, files: Sequence[str]) -> list[tuple[str, str]]:
    """Each file of ``files`` whose name ``request`` spells without its extension (:func:`_spells_a_stem`),
    with each new name it says for it, the extension kept: "rename wrap dress v2 to wrap dress final"
    is patterns/wrap dress v2.pdf to patterns/wrap dress final.pdf."""
    said = Request(undictated(request))
    found = []
    for path in files:
        stem, ext = posixpath.splitext(posixpath.basename(path))
        if len(stem.split()) < 2 or not said.spells(stem):
            continue
        # (the words after "to" that follow the old name, up to where its sentence ends)
        at = said.lowered.find(stem.lower()) + len(stem)
        to = _TO_NAME.search(said.text[at:])
        # (the whole of it, without what closes the request: "to wrap dress final pls"; never a
        # first word alone, which a small planner is apt to stop at)
        words = to["name"].split()[:8] if to else []
        while len(words) > 1 and words[-1].lower() in SIGN_OFFS:
            words = words[:-1]
        new = " ".join(words).strip("'\"`")
        if new and new.lower() != stem.lower() and not has_ext(new) and "/" not in new:
            found.append((path, posixpath.join(posixpath.dirname(path), new + ext)))
    return found


#: The new name after an old one: "... to wrap dress final".
_TO_NAME = re.compile(r"^\W*\s+(?:to|->|into)\s+(?P<name>[^.;!?,]+)", re.IGNORECASE)


def _narrow_steps(schema: dict[str, Any], request: str, ops: set[str] | None, *, retag: bool, one_thing: bool,
                  asked: int, names: list[str], missing: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """Narrow how many steps a plan of ``request`` takes and the op of each, in the order asked, and
    make the schema one way; return the folders it makes one after another (each a step of its own)."""
    # A request that asks for several things in one sentence ("tag X and copy them to Y") gets at
    # least a step for each: a small planner is apt to stop after the first.
    defs, steps = schema["$defs"], schema["properties"]["steps"]
    # A request for code, mail or the weather gets a plan with no steps. (One that asks a file
    # operation is not made to take a step: a model that would answer none then loops, a tiny
    # one repeating a path until its tokens run out.)
    # (Nor does a question that asks for no file operation: "whats the forecast at blue hole for saturday?")
    if not_files(request, names) or (ops is None and _QUESTION.search(request)):
        steps["maxItems"] = 0
    # Folders made one after another ("make a folder called done and keep and shared"): a mkdir of
    # each, in the order said (a small planner is apt to make one of them twice).
    listed_dirs = made_names(request)
    # (where it says no op, folders it lists to make inside one are made: "set up teams/U8 Cubs,
    # with match reports and photos folders inside")
    if not (ops is not None and ops <= {"mkdir", "write", "move", "rename", "classify", "archive"}) and not (
        ops is None and made_inside(request)
    ):
        listed_dirs = []
    if listed_dirs:
        for at, name in enumerate(listed_dirs):
            defs[f"made-{at}"] = {"type": "object", "additionalProperties": False, "required": ["op", "path"],
                                  "properties": {"op": {"const": "mkdir"}, "path": {"const": name}}}  # fmt: skip
        mkdirs = [{"$ref": f"#/$defs/made-{at}"} for at in range(len(listed_dirs))]
        steps.update(minItems=len(mkdirs), maxItems=len(mkdirs), prefixItems=mkdirs)
    elif retag and one_thing:
        steps.update(minItems=2, prefixItems=[step_of(defs, ["untag"]), step_of(defs, ["tag"])])
    elif one_thing and asked == 1 and ops is not None and "extract" in ops and ops <= {"extract", "mkdir"}:
        # An archive unpacked: the missing parent of where it goes made first, then the extract
        # (a small planner is apt to make the folder twice and unpack nothing).
        deepest = innermost(missing)
        if len(deepest) <= 1:
            made = [step_of(defs, ["mkdir"]) for _ in deepest] if "mkdir" in ops else []
            prefix = [*made, step_of(defs, ["extract"])]
            steps.update(minItems=len(prefix), maxItems=len(prefix), prefixItems=prefix)
    if asked > 1 and not listed_dirs:
        steps["minItems"] = min(asked, steps["maxItems"])
        # and each step, in the order asked, one of the ops its own words say ("zip X, copy Y and
        # add a line to Z": an archive, a copy, then an append).
        step_ops = [piece_ops(piece) for piece in asked_pieces(request)]
        if asked <= steps["maxItems"] and all(step_ops):
            steps["prefixItems"] = [step_of(defs, sorted(these & ops if ops else these) or sorted(these))
                                    for these in step_ops if these]  # fmt: skip
    one_way(schema)
    return listed_dirs


def _narrow_choice(defs: dict[str, Any], request: str, scope: Scope, *, one_thing: bool, selected: bool,
                   timed: bool, by_tag: bool) -> None:  # fmt: skip
    """Narrow how a step chooses its files: selected by a match (``selected``: files said by a size,
    a date or a tag), listed by path, or either."""
    many_said = scope.words_of.uses(ALL_WORDS) or any(
        stem(w) != w.lower() and names_a_kind(w) for w in scope.words_of.words
    )
    ranked = FIRST_N.search(request) or scope.words_of.uses([*FEW_WORDS, *RANKING_WORDS])
    # Files it describes by words of their names, from no folder it names, by no date, size, tag
    # or count ("tag the lease and the car insurance policy", "delete the whiteboard photo") are
    # those files, listed.
    # (Not "the draft files", every file of a name, nor files said by a tag they have: "nothing is
    # review anymore, drop that tag".)
    # (A folder it sends files to is not where they are: "put the utils module in old"; but "in"
    # says where they are where nothing is sent: "prefix the dumps in data", "in screenshots, ...".)
    places = referred_targets(request, in_places=scope.words_of.uses(SENDING_WORDS))
    # (A folder whose name only starts the place said, "into Shared Documents/release", is where they
    # are where it is said alone too: "the markdown in shared documents: ...".)
    taken_from = [folder for folder in scope.folder_refs or [] if places is None or not goes_to(folder, places)
                  or (folder.lower() not in places and posixpath.basename(folder).lower() not in places
                      and names_alone(request, folder) and said_at(request, folder) < 0)]  # fmt: skip
    # (Nor does a folder it names matter where it names the files whole: "Edits cleanup: zip cover.psd".)
    whole = {posixpath.basename(name).lower() for name in FILE_NAME.findall(request)}
    named_whole = bool(scope.file_refs) and all(posixpath.basename(p).lower() in whole for p in scope.file_refs or [])
    if selected:
        selected_only(defs)
    # One file it points at ("take the todo tag off that file") is named by its path, alone.
    elif one_thing and scope.file_refs and _ONE_FILE.search(request):
        for op, key in SINGLE_KEYS.items():
            ways = defs[op].get("anyOf", [])
            defs[op]["anyOf"] = [way for way in ways if key is not None and key in way["required"]] or ways
    elif (one_thing and scope.file_refs and (not taken_from or named_whole) and not (timed or by_tag or ranked)
          and not NAMED.search(request) and not scope.words_of.uses([*ALL_WORDS, *NAMED_WORDS])
          and referred_files(request, scope.all_files, tags=tag_words(request))):  # fmt: skip
        listed_only(defs)
        # all of them, where it joins them ("copy the W-2 and the 1099", "the lease and the policy")
        if JOINED_REFS.search(request) and "enum" in defs["listed"] and len(defs["listed"]["enum"]) >= 2:
            defs["paths"]["minItems"] = max(defs["paths"].get("minItems", 0), 2)
            for op in SINGLE_KEYS:
                ways = defs[op].get("anyOf", [])
                defs[op]["anyOf"] = [way for way in ways if "paths" in way["required"]] or ways
    # Files taken from a folder it names, described by no name ("copy the porto pics", "the pdfs in
    # docs"), are those the folder has, selected so.
    # (Unless it ranks them: "the biggest two files in Downloads" may be named.)
    # (And unless it says one file: "remove the cv doc in paperwork".)
    elif (
        one_thing
        and scope.file_refs is None
        and not scope.everywhere
        and not scope.mentioned
        and not ranked
        and many_said
    ):
        selected_only(defs)
    # Files it describes by words of their names and says in the plural, each of the kind it says,
    # are all of them, never one ("nuke the untitled notebooks": Untitled.ipynb and Untitled1.ipynb).
    # (Unless it gives a file a new name: "rename the photos to a-1.jpg, a-2.jpg and so on".)
    listed = defs.get("listed", {}).get("enum", [])
    plural = {ext for w in scope.words_of.words if stem(w) != w.lower() for ext in kind_exts(w)}
    if (one_thing and scope.file_refs and not ranked and len(listed) >= 2
            and not any(has_ext(posixpath.basename(place)) for place in places or ())
            and all(posixpath.splitext(path)[1].lower() in plural for path in listed)):  # fmt: skip
        defs["paths"]["minItems"] = max(defs["paths"].get("minItems", 0), len(listed))
        for op, key in SINGLE_KEYS.items():
            ways = defs[op].get("anyOf", [])
            defs[op]["anyOf"] = [way for way in ways if key is None or key not in way["required"]] or ways


def _narrow_places(defs: dict[str, Any], request: str, scope: Scope, offer: Offered, ops: set[str] | None, *,
                   one_thing: bool, rule_exts: list[str]) -> None:  # fmt: skip
    """Narrow where a step puts files: a classify rule for each place said, in order, and a folder,
    never a name like a file's, for many files."""
    # Files sorted into several places ("pdfs into docs/pdfs, songs into music/mp3") are sorted by
    # one rule for each place, in the order said, each for the kinds said before its place.
    if one_thing and (ops is None or "classify" in ops):
        rules_in_order(defs, scope.sorted_request or request, defs["target"].get("enum", []), rule_exts,
                       scope.all_files)  # fmt: skip
        # (and files sorted into several places at once are sorted, not moved into one of them:
        # "pdfs -> Downloads/docs, images -> Downloads/images, zips -> Downloads/zips")
        rules = defs["classify"]["anyOf"][0]["properties"]["rules"]
        step = defs["step"]
        sorted_to = [way["properties"]["to"].get("const", "") for item in rules.get("prefixItems", [])
                     for way in item["anyOf"][:1]]  # fmt: skip
        if (len(sorted_to) >= 2 and "classify" in step["properties"]["op"]["enum"]
                and not any(has_ext(posixpath.basename(to)) for to in sorted_to)):  # fmt: skip
            step["properties"]["op"]["enum"] = ["classify"]
            step["allOf"] = [way for way in step["allOf"] if way["if"]["properties"]["op"]["const"] == "classify"]
    # Many files go into a folder, never into a name like a file's ("into cover-final.png").
    file_like = {*COMMON_EXTS, *offer.found_exts, *ARCHIVE_EXTS}
    # (Where every place it names is such a name, a move or a copy takes one file: "rename a.png to b.png".)
    places_to = defs["target"].get("enum")
    folders_to = [t for t in places_to or [] if posixpath.splitext(t)[1].lower() not in file_like]
    if places_to and folders_to != places_to:
        defs["into"] = {"enum": folders_to}
        for op in ("move", "copy"):
            ways = defs[op]["anyOf"]
            singles = [way for way in ways if "from" in way["required"]]
            if not folders_to:
                defs[op]["anyOf"] = singles or ways
                continue
            for way in ways:
                if "from" not in way["required"]:
                    way["properties"]["to"] = {"$ref": "#/$defs/into"}


#: Words that send files somewhere, of those that say a move: "rename them and put them in old" moves them.
_SENDS = tuple(word for word in OP_WORDS["move"] if word not in OP_WORDS["rename"])
#: One file pointed at: "that file", "this one file" (not "those files").
_ONE_FILE = re.compile(r"\b(?:that|this)\s+(?:one\s+)?file\b(?!s)", re.IGNORECASE)
#: Words that surely unpack an archive, and what else surely copies or packs one (not "backup").
_UNPACKS = ("extract", "unzip", "unpack", "untar", "decompress", "unarchive", "restore")
_WORDS_OF = {op: tuple(word for word in OP_WORDS[op] if word not in ("backup", "back")) for op in ("copy", "archive")}
#: Words that surely pack files into an archive (besides "zip up", "tar them": ARCHIVING_VERB).
_PACKS = ("compress", "compressed", "pack", "bundle", "zipped", "zipping", "archive")
#: Words that surely tag ("add" alone adds lines too).
_TAGS = tuple(word for word in OP_WORDS["tag"] if word != "add")
#: A question: "whats the vis at blue hole?", "where did I put the lease", "is it going to rain".
_QUESTION = re.compile(
    r"^\s*(?:what|whats|what's|when|where|wheres|where's|why|how|hows|how's|who|whos|who's|which|is|are|was|were|will"
    r"|does|do|did)\b|\?\s*$",
    re.IGNORECASE,
)


def _narrowed(
    request: str,
    entries: list[ViewEntry],
    today: dt.date,
    chars: int,
    *,
    by_piece: bool = False,
    into: list[str] | None = None,
    off: list[str] | None = None,
) -> dict[str, Any]:
    """The reply schema for ``request`` with each list at most ``chars`` characters (``by_piece``:
    each step of a sentence that asks several things narrowed to its piece; ``into``: the places a
    piece puts files, where an earlier piece made them; ``off``: the tags the whole request swaps
    for others, of a piece of it).

    First what the request says over the workspace (its scope, its dates, the other values it
    offers), then the schema: its ops, its paths, here its match filters and other values, then its
    steps, how a step chooses files, and where it puts them.
    """
    bounded = partial(bounded_to, chars=chars)
    scope = request_scope(request, entries, chars)
    times = request_times(request, scope, today, chars)
    offer = offered_values(request, scope, chars)
    schema = base_reply_schema()
    defs = schema["$defs"]
    ops, retag, unpacking, missing, renaming = _narrow_ops(defs, request, scope, by_example=offer.by_example)
    named, listed, placeless = narrow_paths(
        defs, request, scope, chars, unpacking=unpacking, missing=missing, into=into, ops=ops
    )
    unoffer(schema, placeless)
    ops = ops - placeless if ops is not None else None
    existing = set(scope.all_files)
    # (a request that puts tags on and takes others off swaps them, in whatever words)
    swaps = off is not None or (ops is not None and {"tag", "untag"} <= ops)
    m = narrow_match(defs, request, scope, times, offer, entries, chars, retag=retag, swaps=swaps, off=off)
    match = defs["match"]["properties"]
    asked, one_thing, timed, sized, dated = m.asked, m.one_thing, m.timed, m.sized, m.dated
    by_tag, said_about = m.by_tag, m.said_about
    rename = defs["rename"]["properties"]
    narrow_enum(rename, "find", offer.finds, defs)
    narrow_enum(rename, "replace", offer.replaces, defs)
    # Only when every line fits the bounds: a long request's content stays free rather than cut short.
    lines = dictated_lines(request)
    if lines and bounded(lines) == lines:
        defs["content"] = {"enum": [f"{line}\n" for line in lines]}
    # A count is one the request names ("the first 3", "three of them"), or a small one when it
    # asks for the first few without a number; no count at all when it does neither.
    if offer.counts or scope.words_of.uses(FEW_WORDS):
        match["limit"] = {"enum": offer.counts or list(LIMITS)}
        if FIRST_N.search(request) and not CLAUSE_BREAK.search(request):
            defs["match"]["required"] = [*defs["match"]["required"], "limit"]
    else:
        del match["limit"]
    rule = defs["classify"]["properties"]["rules"]["items"]["properties"]
    rule_exts = referred_exts(request, offer.exts) or offer.exts
    narrow_enum(rule["ext"], "items", rule_exts, defs)
    # A list never holds an item twice (no gold plan does, and llguidance does not enforce
    # uniqueItems): at most as many items as it has values, so "[.jpg, .jpg, ...]" cannot be.
    rule["ext"]["maxItems"] = min(rule["ext"]["maxItems"], len(rule_exts))
    defs["tags"]["maxItems"] = min(defs["tags"]["maxItems"], len(defs["tag_name"].get("enum", range(64))))
    items = defs["listed"] if listed else defs["source"]
    defs["paths"]["maxItems"] = min(defs["paths"]["maxItems"], len(items.get("enum", range(MAX_VALUES))))
    # A request that asks one thing of files it spells whole by path takes those files, all of them.
    spelled = [path for path in scope.all_files if "/" in path and scope.words_of.spells(path)]
    if 1 < len(spelled) <= defs["paths"]["maxItems"] and one_thing:
        narrow_enum(defs, "listed", spelled)
        items = defs["listed"]
        defs["paths"].update(items={"$ref": "#/$defs/listed"}, minItems=len(spelled), maxItems=len(spelled))
    unique_when_few(defs["paths"], items.get("enum"))
    # A rule sorts by what files say only when the request says what they are about, as a match does.
    if said_about:
        narrow_enum(rule, "contains", said_about, defs)
    else:
        del rule["contains"]
    narrow_enum(rule, "regex", offer.regexes, defs, drop=True)
    narrow_enum(rename, "template", offer.templates, defs)
    listed_dirs = _narrow_steps(
        schema, request, ops, retag=retag, one_thing=one_thing, asked=asked, names=scope.all_folders, missing=missing
    )
    # Text of names said to change into other text is found and replaced, by no template (offered.py).
    if offer.swapped:
        ways = defs["rename"]["anyOf"]
        defs["rename"]["anyOf"] = [way for way in ways if "find" in way["required"]] or ways
    selected = bool(sized or dated or (one_thing and by_tag and "tag" in match))
    _narrow_choice(defs, request, scope, one_thing=one_thing, selected=selected, timed=bool(timed),
                   by_tag=bool(by_tag))  # fmt: skip
    _narrow_places(defs, request, scope, offer, ops, one_thing=one_thing, rule_exts=rule_exts)
    if renaming:
        # (a file renamed by a move is one file, from its name to another)
        defs["move"]["anyOf"] = [way for way in defs["move"]["anyOf"] if "from" in way["required"]] or defs["move"][
            "anyOf"
        ]
    sent_named = moved_and_named(request, scope.all_files, scope.all_folders, scope.folder_refs)
    if renaming:
        for path, new in _renamed_by_stem(request, scope.all_files):
            sent_named.setdefault(path, []).append(new)
    renamed_beside(defs, [path for path in scope.sources if path in existing], named, existing, sent_named)
    # A file sent to a folder under a new name goes from its path to the new one, one file alone.
    if sent_named and one_thing:
        for op in ("move", "copy"):
            ways = defs[op]["anyOf"]
            defs[op]["anyOf"] = [way for way in ways if "from" in way["required"]] or ways
    if by_piece and "prefixItems" in schema["properties"]["steps"] and not listed_dirs:
        steps_by_piece(schema, asked_pieces(request), entries, today, chars)
    return schema
