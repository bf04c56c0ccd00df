"""The steps of a sentence that asks several things: the ops each piece of it may use, each piece
that names its own files narrowed to its own words, and a classify's rules made one for each place
the request sorts files into, in the order said."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import re
from typing import Any

from engine.planner.kind_words import SPELLED_PATH, group_exts, kind_exts, referred_exts
from engine.planner.parts import goes_on
from engine.planner.places import FILE_NAME, made_folders
from engine.planner.prompt import SINGLE_KEYS, ViewEntry
from engine.planner.refer import GIVEN_NAME, TAG_TAKEN_OFF, referred_ops
from engine.planner.said import QUOTED, STOP_WORDS, undictated
from engine.planner.schema_edit import is_usable, one_file_step, reached_defs, unique_when_few
from engine.planner.values import ARCHIVE_EXTS, globbed, is_changeable
from engine.planner.words import stem

#: A piece that does something to one file an earlier piece chose: "move it to Notes/archive".
_IT = re.compile(r"^\W*[\w-]+\s+it\b", re.IGNORECASE)


#: Where the files no rule takes go ("everything else into misc", "the rest -> inbox/other").
_REST_GOES = re.compile(r"(?:\b(?:everything|anything|all|whatever)\s+else|\bthe\s+rest|\bremaining\s+files"
                        r"|\bother\s+(?:files|stuff|things))\s+(?:goes\s+|go\s+|should\s+go\s+)?(?:in)?(?:to\b|->|=>)",
                        re.IGNORECASE)  # fmt: skip


def said_at(request: str, name: str) -> int:
    """Where ``request`` says files go to ``name`` ("into docs/pdfs", "-> misc"), or -1."""
    found = re.search(rf"(?:\b(?:into|to|onto)|->|=>|\u2192)\s+(?:the\s+)?({re.escape(name)})(?![\w/-])", request,
                      re.IGNORECASE)  # fmt: skip
    return found.start(1) if found else -1


def names_alone(request: str, folder: str, *, sorted_from: bool = False) -> bool:
    """Whether ``request`` names ``folder`` by itself, not as the start of a longer path (with
    ``sorted_from``, nor as a kind of file sorted somewhere: "pictures to Pictures/downloaded")."""
    # (Not said at all, the usual case for most folders of a big workspace: no pattern to compile.)
    if folder.isascii() and request.isascii() and folder.lower() not in request.lower():
        return False
    after = r"(?![\w-]|/[\w.-])" + (r"(?!\s+(?:go(?:es)?\s+)?(?:in)?to\b|\s*(?:->|=>))" if sorted_from else "")
    return re.search(rf"(?<![\w/.-]){re.escape(folder)}{after}", request, re.IGNORECASE) is not None


def rules_in_order(defs: dict[str, Any], request: str, places: list[str], exts: list[str], files: list[str]) -> None:
    """Make a classify's rules one for each of the ``places`` the request spells, in its order, the
    last the default when it says where the rest goes ("everything else into inbox/other"), and each
    rule's extensions those of the kinds said before its place and after the one before: all the
    kinds of a word for several ("pictures"), and of the kinds of one word ("notes": .md, .txt) those
    the files sorted have. What it sorts is never a folder that holds the places, unless the
    request names that folder by itself ("tidy courses/databases: pngs into courses/databases/figures")."""
    said = sorted((at, place) for place in places if (at := said_at(request, place)) >= 0)
    # Of the places said at one spot, the longest ("into Keep Forever/2026", not "Keep").
    said = [(at, place) for at, place in said if not any(a == at and len(p) > len(place) for a, p in said)]
    if len(said) < 2 or len(said) > 16:
        return
    globs = defs["glob"].get("enum", [])
    sorted_from = []
    for glob in globs:
        top = glob.split("/*")[0]
        if (
            glob == "**"
            or names_alone(request, top, sorted_from=True)
            or not any(p.startswith(f"{top}/") for _, p in said)
        ):
            sorted_from.append(glob)
    sorted_files = [path for path in files if any(globbed(path, g) for g in sorted_from or globs)]
    held = {posixpath.splitext(path)[1].lower() for path in sorted_files}
    sorted_names = [posixpath.basename(path) for path in sorted_files]
    rules = defs["classify"]["anyOf"][0]["properties"]["rules"]
    ways = rules["items"]["anyOf"]
    conditions = [way for way in ways if "default" not in way["required"]]
    default = [way for way in ways if "default" in way["required"]]
    rest = _REST_GOES.search(request) is not None
    prefix = []
    every: list[str] = []  # the kinds the rules may name, and those they surely name
    sure: list[str] = []
    since = 0
    for n, (at, place) in enumerate(said):
        piece = request[since:at]
        since = at + len(place)
        kinds = referred_exts(piece, exts) if n < len(said) - 1 or not rest else None
        group = [ext for ext in group_exts(piece) if kinds and ext in kinds]
        kinds = [ext for ext in kinds or [] if ext in held] or kinds
        # A rule for files said by a word of their names, not a kind ("invoices go to
        # accounts/invoices"), takes the names that hold that word.
        # (Not the rule for the rest, "everything else into misc".)
        # (or by the name of its place: "into journals, sketchbooks and other subfolders")
        # (A kind that every file sorted is, "sort the product photos into journals, ...", says no rule's.)
        by_name: list[str] = []
        if not kinds:
            by_name = _name_globs(piece, sorted_names) or _name_globs(posixpath.basename(place), sorted_names)
        elif held <= set(kinds):
            by_name = _name_globs(posixpath.basename(place), sorted_names)
        chosen = []
        for way in default if rest and n == len(said) - 1 else conditions:
            if by_name and "ext" in way["required"]:  # (by name, not by kind; or by what they say)
                continue
            way = {**way, "properties": {**way["properties"], "to": {"const": place}}}
            if by_name:
                way["properties"]["glob"] = {"enum": by_name}
            if kinds and "ext" in way["properties"]:
                way["properties"]["ext"] = (
                    {"const": group}
                    if len(group) > 1
                    else {**way["properties"]["ext"], "items": {"enum": kinds}, "maxItems": len(kinds)}
                )
            chosen.append(way)
        prefix.append({"anyOf": chosen})
        every += [ext for ext in group or kinds or [] if ext not in every]
        sure += [ext for ext in group if len(group) > 1] or (kinds if kinds and len(kinds) == 1 else [])
    # What it sorts is by the kinds the rules name, all of them, if by kind at all.
    match = defs["match"]
    properties = {**match["properties"]}
    if sorted_from and sorted_from != globs:
        defs["sorted-glob"] = {"enum": sorted_from}
        properties["glob"] = {"$ref": "#/$defs/sorted-glob"}
    if "ext" in properties and every:
        properties["ext"] = {**properties["ext"], "items": {"enum": every}, "minItems": max(1, len(set(sure))),
                             "maxItems": len(every)}  # fmt: skip
        unique_when_few(properties["ext"], every)
    defs["sorted-match"] = {**match, "properties": properties}
    for way in defs["classify"]["anyOf"]:
        if "match" in way["properties"]:
            way["properties"] = {**way["properties"], "match": {"$ref": "#/$defs/sorted-match"}}
    rules.update(prefixItems=prefix, minItems=len(prefix), maxItems=len(prefix))


def _name_globs(piece: str, names: list[str]) -> list[str]:
    """Globs of the files of ``names`` that hold a word ``piece`` says, in its singular form
    ("invoices": ``**/*invoice*``, and ``**/invoice*`` where each starts with it), where every name
    that holds it holds it so (in lower case); a word of four letters or more that is no word for a
    kind of file and no small word."""
    globs = []
    for word in re.findall(r"[a-z][a-z0-9-]{3,}", piece.lower()):
        if word in STOP_WORDS or kind_exts(word):
            continue
        for form in dict.fromkeys((stem(word), word)):
            holding = [name for name in names if form in name.lower()]
            if holding and all(form in name for name in holding) and is_usable(form):
                # (where every such name starts with it, "journal A5 forest green.jpg", also so)
                starts = [f"**/{form}*"] if all(name.startswith(form) for name in holding) else []
                globs += [*starts, f"**/*{form}*"]
                break
    return list(dict.fromkeys(globs))


def steps_by_piece(
    schema: dict[str, Any], pieces: list[str], entries: list[ViewEntry], today: dt.date, chars: int
) -> None:
    """Make each step of ``schema`` asked by a piece of its sentence that names its own files
    ("put cover.psd into Edits/cover-psd.zip", "rename cover-final.png to cover.png") a step of
    that piece's own schema, with the ops the step had. A piece that goes on with what an earlier
    one chose ("tag it approved", "copy them to Y") keeps the whole request's step: only the whole
    request says what "it" is."""
    # (Imported here, not at the top: narrow.py imports this module.)
    from engine.planner.narrow import _narrowed

    defs = schema["$defs"]
    prefix = schema["properties"]["steps"]["prefixItems"]
    folders = {entry.path for entry in entries if entry.is_dir} | {posixpath.dirname(e.path) for e in entries}
    made: list[str] = []  # new folders spelled by earlier pieces ("make a folder Videos/archive")
    existing = {entry.path for entry in entries}
    renamed: str | None = None  # the new name an earlier piece gave one file ("rename a.png to b.png")
    for at, piece in enumerate(pieces[: len(prefix)]):
        spelled = [p.strip(".,;:!?'\"()").rstrip("/") for p in SPELLED_PATH.findall(piece)]
        spelled += made_folders(piece)
        new = [p for p in dict.fromkeys(spelled) if p and p not in folders and is_changeable(p)]
        new = [p for p in new if "." not in posixpath.basename(p)]
        if goes_on(piece):
            if _IT.match(piece):
                prefix[at] = one_file_step(defs, prefix[at])
                # ("rename cover-final.png to cover.png and tag it approved": it is cover.png now)
                if renamed is not None:
                    prefix[at] = _on_path(defs, prefix[at], renamed, f"on{at}-")
            continue
        renamed = None
        ops = set(defs[prefix[at]["$ref"].rsplit("/", 1)[1]]["properties"]["op"]["enum"])
        # Files put "in it" or "there" go into the folder an earlier piece made.
        into = list(made) if made and _IN_IT.search(undictated(piece)) else None
        # (a piece of a request that swaps tags swaps the same ones: "tag them paid and take the unpaid tag off")
        off = defs["had_tags"]["items"]["enum"] if "new_tags" in defs else None
        own = _narrowed(piece, entries, today, chars, into=into, off=off)["$defs"]
        made += new
        step = own["step"]
        kept = [op for op in step["properties"]["op"]["enum"] if op in ops]
        if not kept:
            continue
        step["properties"]["op"]["enum"] = kept
        step["allOf"] = [way for way in step["allOf"] if way["if"]["properties"]["op"]["const"] in kept]
        if "move" in kept and not {"copy", "archive", "delete"} & set(kept):
            renamed = _new_name(piece, existing, folders, own["target"].get("enum", []))
        # Only what that step refers to, each under a name of its own.
        name = f"at{at}-"
        reached = reached_defs(own, "step")
        moved = json.loads(json.dumps({key: own[key] for key in reached}).replace('"#/$defs/', f'"#/$defs/{name}'))
        defs.update({f"{name}{key}": value for key, value in moved.items()})
        prefix[at] = {"$ref": f"#/$defs/{name}step"}


def _new_name(piece: str, existing: set[str], folders: set[str], targets: list[str]) -> str | None:
    """The one new path ``piece`` gives one file it names, when it is one of ``targets``: "rename
    cover-final.png to cover.png" is Edits/cover.png where Edits/cover-final.png is, and "move
    cover-final.png into Camera" is Camera/cover-final.png. None when it gives no one such path."""
    given = [name for name in GIVEN_NAME.findall(piece) if name not in existing]
    named = {posixpath.basename(name) for name in FILE_NAME.findall(piece)} - {posixpath.basename(g) for g in given}
    sources = [path for path in existing if path in named or posixpath.basename(path) in named]
    if len(sources) != 1 or len(given) > 1:
        return None
    if given:
        new = given[0] if "/" in given[0] else posixpath.join(posixpath.dirname(sources[0]), given[0])
    elif len(into := [target for target in targets if target in folders]) == 1:
        new = posixpath.join(into[0], posixpath.basename(sources[0]))
    else:
        return None
    return new if (new in targets or not given) and new not in existing else None


def _on_path(defs: dict[str, Any], ref: dict[str, Any], path: str, label: str) -> dict[str, Any]:
    """The one-file step ``ref`` refers to (:func:`one_file_step`), taking ``path`` only: a file an
    earlier step gives that name. Its definitions are named with ``label`` first."""
    name = ref["$ref"].rsplit("/", 1)[1]
    step = json.loads(json.dumps(defs[name]))
    for way in step["allOf"]:
        then = way.get("then", {}).get("$ref", "")
        op = way["if"]["properties"]["op"]["const"]
        key = SINGLE_KEYS.get(op)
        if not then.startswith("#/$defs/one-") or key is None:
            continue
        ways = []
        for one in defs[then.rsplit("/", 1)[1]]["anyOf"]:
            one = dict(one, properties=dict(one["properties"]))
            if key in one["properties"]:
                one["properties"][key] = {"const": path}
            if "paths" in one["properties"]:
                one["properties"]["paths"] = {"type": "array", "items": {"const": path}, "minItems": 1, "maxItems": 1}
            ways.append(one)
        defs[f"{label}{op}"] = {"anyOf": ways}
        way["then"] = {"$ref": f"#/$defs/{label}{op}"}
    defs[f"{label}{name}"] = step
    return {"$ref": f"#/$defs/{label}{name}"}


#: Where an earlier piece said: "put the videos in it", "move them there", "... into it, thanks",
#: "add a README.md in there that says: ...", "add a notes.md in there: hail on 3 july" (read with what
#: it dictates blanked).
_IN_IT = re.compile(
    r"(?:\b(?:in|into|inside|to)\s+(?:it|there)|\bthere)"
    r"(?:\s+(?:(?:that|which)\s+says|saying|reading|with\s+the\s+(?:line|text|words)))?(?:\s*:\s.*)?"
    r"(?:[\s,!.]*(?:please|pls|plz|thanks|thank\s+you|thx|ty|asap|now|when\s+you\s+get\s+a\s+chance|:\)))*\s*\W*$",
    re.IGNORECASE,
)


#: A tag taken off ("take the todo tag off X", "strip the draft label from Y"), not files removed.
_TAG_OFF = re.compile(rf"\b(?:tag|label)s?\s+off\b|{TAG_TAKEN_OFF.pattern}", re.IGNORECASE)
#: An archive named as where files go ("put cover.psd into Edits/cover-psd.zip").
_INTO_ARCHIVE = re.compile(rf"\b(?:into|as|to|in)\s+\S*(?:{'|'.join(re.escape(ext) for ext in ARCHIVE_EXTS)})\b",
                           re.IGNORECASE)  # fmt: skip


#: Text said to go into a file ("add '- call the bank' to notes.md", "write 'hi' into a.txt").
_ADDS_TEXT = re.compile(r"^\W*(?:add|append|write|put|jot|insert)\b", re.IGNORECASE)


def piece_ops(piece: str) -> set[str] | None:
    """The ops one piece of a sentence that asks several things may use (:func:`referred_ops`, its
    quoted text read only as text to write): only an untag where it takes a tag off, only an archive
    where it puts files into a new one."""
    ops = referred_ops(undictated(piece))
    if ops is None:
        return None
    if _TAG_OFF.search(piece) and "untag" in ops:
        return {"untag"}
    if _INTO_ARCHIVE.search(piece) and "archive" in ops and "extract" not in ops:
        return {"archive"}
    if QUOTED.search(piece) and _ADDS_TEXT.search(piece):
        return {"write", "append"}
    return ops
