"""Where the steps of a narrowed planner reply schema read, make and put things: the path lists of
each op (:func:`narrow_paths`), and taking out the ops left nowhere to put or make anything
(:func:`unoffer`). A new file or folder is never one of the request's stray words, and files go only
into a new place it says or a folder it mentions. (:mod:`engine.planner.narrow` calls these.)
"""

from __future__ import annotations

import posixpath
import re
from functools import partial
from typing import Any

from engine.planner.offered import Scope, changeable_to
from engine.planner.places import (
    described_folders,
    listed_folders,
    made_folders,
    made_names,
    referred_targets,
)
from engine.planner.prompt import SAFE_PATH
from engine.planner.refer import referred_files
from engine.planner.said import undictated
from engine.planner.schema_edit import narrow_enum
from engine.planner.spoken import MKDIR_WORDS, NAMED_WORDS
from engine.planner.values import (
    ARCHIVE_EXTS,
    COMMON_EXTS,
    NAME,
    goes_to,
    has_ext,
    is_text_name,
    parent_folders,
)

#: Which list each path key of each op draws from: ``source`` (exists), ``dest`` (a new place: a
#: name of the request, one of its folders, or a folder that exists), ``target`` (where files go:
#: a name of the request or a folder that exists, never only the folder of a name the request
#: gives, so that "into archive/2026" cannot end as "archive"). (A single path a step changes in
#: place stays ``path``, any name: an earlier step may have made it.)
_ROLES = (("mkdir", "path", "dest"), ("move", "from", "source"), ("move", "to", "target"),
          ("copy", "from", "source"), ("copy", "to", "target"), ("extract", "to", "dest"),
          ("delete", "path", "source"))  # fmt: skip


def narrow_paths(defs: dict[str, Any], request: str, scope: Scope, chars: int, *, unpacking: bool,
                  missing: list[str], into: list[str] | None,
                  ops: set[str] | None = None) -> tuple[list[str], list[str], set[str]]:  # fmt: skip
    """Narrow the paths each op reads, makes and puts things into; return the names with an extension
    the request gives, the files a list of paths may name, and the ops left no place to put or make
    anything (:func:`unoffer`): a new file or folder is never one of the request's stray words."""
    placeless: set[str] = set()
    changeable = partial(changeable_to, chars=chars)
    # A list left empty leaves a name free, but only a plain one (SAFE_PATH).
    free_path = defs["path"] = {**defs["path"], "pattern": SAFE_PATH}
    narrow_enum(defs, "path", scope.names)
    # What a step reads must exist; where it puts things must not be a file that exists.
    # Files go where the request says they go ("into exports/crm"), when it says so (refer.py).
    places = referred_targets(request)
    # A folder it describes by words of its path goes for the words it says ("to the shattered crown
    # maps folder": campaigns/Shattered Crown/maps, never a new "shattered crown maps").
    described = described_folders(request, scope.all_folders)
    if described:
        places = {*(places or ()), *(folder.lower() for folder in described)}
    # A new folder said to be inside one that exists ("into the bible job folder, subfolder called
    # scans") is where files go, not the outer one, nor the words that say it.
    if scope.inside_new:
        said_outer = {word for _, _, where in scope.inside_new for word in _words_of(where)}
        outers = {posixpath.dirname(path).lower() for _, path, _ in scope.inside_new}
        alone = {name.lower() for name, _, _ in scope.inside_new}
        places = {place for place in places or () if place not in outers | alone
                  and not set(_words_of(place)) <= said_outer}  # fmt: skip
        places |= {path.lower() for _, path, _ in scope.inside_new}
    existing = set(scope.all_files)
    # Never a file that exists (a move or a copy onto it is refused), nor a new name at the top when
    # the request renames a file elsewhere ("rename office-8.JPG to old-office-8.JPG" in camera/2025).
    targets = changeable(t for t in [*described, *scope.words, *scope.renamed, *scope.folders] if t not in existing)
    if described:
        targets = [t for t in targets if t in scope.all_folders or not _describes(request, t)]
    said_new = _said_new_folders(request)
    # A new place is never the first words of a longer name said ("into old stuff/2026": not old).
    cut_short = _cut_short(scope, request)
    targets = [t for t in targets if t not in cut_short] or targets
    # Where it says no place, or none of these, a new folder is none of its other words: "so they
    # start with livre- instead of roman-" moves nothing into "instead".
    # (And where nothing is such a place, files go nowhere: "text Jens that the rotor came in" moves
    # nothing into "came".)
    # (Nor into a folder that exists but that it never mentions: "whats the forecast at blue hole?"
    # moves no Blue Hole note into media/.)
    mentioned = {folder.lower() for folder in scope.folder_refs or ()}
    targets = [t for t in targets if places is not None and goes_to(t, places)] or [
        t
        for t in targets
        if _not_made_up(t, scope, said_new) and (t not in scope.all_folders or t.lower() in mentioned)
    ]
    if not targets and not into:
        placeless |= {"move", "copy", "classify"}
    beside = {posixpath.basename(t) for t in targets if "/" in t and t in scope.renamed}
    targets = [t for t in targets if t not in beside or t in scope.folders] or targets
    # A folder made or unpacked into is never a file that exists ("unzip setup-1.zip in setup-1").
    dests = [d for d in [*described, *scope.dests] if d not in existing] or scope.dests
    if described:
        dests = [d for d in dests if d in scope.all_folders or not _describes(request, d)] or dests
    # Files sorted inside the one folder it spells by path go into new folders inside it, said by
    # name: "tidy up staff/rotas? drafts into a drafts folder" is staff/rotas/drafts.
    spelled = [f for f in scope.all_folders if "/" in f and scope.words_of.spells(f)]
    if len(spelled) == 1 and _SORTING.search(request):
        inside = [posixpath.join(spelled[0], t) for t in targets if "/" not in t and t not in scope.all_folders]
        targets = [*targets, *changeable(inside)]
    # (Files put "in it" go into the folder an earlier piece of the sentence made: steps_by_piece.)
    targets = list(into or targets)
    for kind, values in (("source", scope.sources), ("dest", dests), ("target", targets)):
        defs[kind] = free_path
        narrow_enum(defs, kind, values)
    # A list of paths names files that exist ("delete cover-v1.png and cover-v2.png"), never their folder.
    listed = [path for path in scope.sources if path in existing]
    # Where it takes files from a folder and describes none by name ("copy the porto pics"), they
    # are files in that folder.
    if scope.file_refs is None and not scope.everywhere:
        listed = [path for path in listed if any(path.startswith(f"{d}/") for d in scope.taken)] or listed
    if listed:
        narrow_enum(defs, "listed", listed)
    defs["paths"] = {**defs["paths"], "items": {"$ref": "#/$defs/listed" if listed else "#/$defs/source"}}
    for op, key, kind in _ROLES:
        defs[op]["properties"][key] = {"$ref": f"#/$defs/{kind}"}
    # A folder made is one that does not exist yet.
    # ("make a folder Videos/archive" makes no "folder")
    unnamed = {*MKDIR_WORDS, *NAMED_WORDS}
    # (nor one named as a common kind of file is: "with a README.md in it")
    made = [d for d in dests if d not in scope.under and d not in scope.all_folders and d.lower() not in unnamed
            and NAME.match(d) and any(ch.isalnum() for ch in d)
            and not d.lower().endswith(COMMON_EXTS)]  # fmt: skip
    # (A folder made is one said as a place, or asked for: "ditch every __pycache__ folder" makes no "ditch".)
    # (nor the parent of one: "into to-print/song" may make to-print first)
    # (Where no folder is said so, none is made: "unpack the kessel keep token pack into the campaign's
    # maps folder" makes no "keep".)
    made = [d for d in made if _not_made_up(d, scope, said_new) or (places is not None and (goes_to(d, places)
            or any(place.startswith(f"{d.lower()}/") for place in places)))]  # fmt: skip
    made = [d for d in made if d not in cut_short] or made
    narrow_enum(defs["mkdir"]["properties"], "path", made, defs)
    if unpacking and missing:
        narrow_enum(defs["mkdir"]["properties"], "path", list(dict.fromkeys(missing)), defs)
    elif not made:
        placeless.add("mkdir")
    # A file written is a name the request gives (a new one, or one it names to overwrite).
    # A file written is named with its extension ("notes/packing.md"), when the request names one;
    # one appended to is such a name or a file the request refers to outside what it quotes ("add
    # '- book the offsite' to TODO.md" is not about the offsite notes).
    # A name it gives in a new folder it names is that folder's ("make docs/meetings and put a note
    # in it, 2026-02-10.md": docs/meetings/2026-02-10.md).
    placed = [t for t in scope.renamed if "/" in t and posixpath.dirname(t) not in scope.all_folders]
    # So may be one it gives in a folder it says it goes to ("put a NOTES.txt in data/processed").
    placed += [t for t in scope.renamed if "/" in t and posixpath.dirname(t) in scope.all_folders
               and places is not None and posixpath.dirname(t).lower() in places]  # fmt: skip
    named = changeable([*(word for word in scope.words if has_ext(posixpath.basename(word))), *placed])
    # ... and so is one it gives "in it", after an earlier piece made the folder ("create
    # analysis/archive, ... and add a README.md in there").
    if into:
        named = changeable([*(posixpath.join(d, n) for d in into for n in named if "/" not in n)]) or named
    elif placed and _IN_IT.search(undictated(request)):
        # Said "in it", the name is only the new folder's.
        named = [name for name in named if "/" in name]
    # (Where it gives no name, a file written is one it names whole, never one of its words: "add
    # 'Sat 10:00-14:00' to the opening hours file" writes no "now".)
    written = [p for p in named or changeable([*scope.mentioned, *scope.renamed]) if is_text_name(p)]
    narrow_enum(defs["write"]["properties"], "path", written, defs)
    if not written:
        placeless.add("write")
    # Only files carry tags: a step tags a file that exists, or one an earlier step names.
    # A file's bare name, where that file is in a folder, is no other file ("backup-2024-05-05.log").
    in_folders = {posixpath.basename(path) for path in scope.all_files if "/" in path}
    # Nor is a new name that the request gives a file beside another it names ("rename cover-final.png
    # to cover.png and tag it": Edits/cover.png).
    named_in = {
        posixpath.dirname(path)
        for path in scope.all_files
        if "/" in path and scope.words_of.spells(posixpath.basename(path))
    }
    renamed_to = {posixpath.basename(t) for t in scope.renamed if posixpath.dirname(t) in named_in}
    carried = [name for name in [*scope.mentioned, *scope.described, *scope.renamed, *named]
               if "/" in name or (name not in in_folders and name not in renamed_to)]  # fmt: skip
    # (Where no step makes a file, a tag goes on one that exists: "take the open tag off
    # incident_2026-10-03.md" is the one in staff/incident reports, no new one beside another.)
    if ops is not None and not ops & {"move", "copy", "write", "rename", "extract", "archive"}:
        carried = [name for name in carried if name in existing] or carried
    for op in ("tag", "untag"):
        narrow_enum(defs[op]["properties"], "path", changeable(carried), defs)
    # (what it dictates describes no file: "append to staff/log.txt: member rolled ankle" is no members export)
    outside = referred_files(undictated(request), scope.all_files) or []
    # A file appended to is one that exists, when the request names one ("add ... to TODO.md", not
    # to the onboarding-kit.zip it makes).
    # (Never to a picture, a PDF or an archive: "set up projects/X with drawings" appends nothing to
    # "final drawings.pdf".)
    appended = [p for p in changeable([*named, *outside]) if is_text_name(p)]
    appended = [p for p in appended if p in existing] or appended
    # (Of files alike, the one in a folder it refers to: "add a line to sanna's plan" appends to
    # athletes/Sanna Järvinen/plan 2026 autumn.md, not to another athlete's plan nor templates/weekly plan.md.)
    refs = scope.folder_refs or []
    appended = [p for p in appended if any(p.startswith(f"{d}/") for d in refs)] or appended
    narrow_enum(defs["append"]["properties"], "path", appended, defs)
    if not appended:
        placeless.add("append")
    narrow_enum(defs["archive"]["properties"], "to", scope.archives, defs)
    narrow_enum(defs["extract"]["properties"], "from", changeable([*scope.archive_files, *scope.archives]), defs)
    # An archive is unpacked into a folder, never into a name like an archive's.
    unpacked = [d for d in dests if not d.lower().endswith(ARCHIVE_EXTS)]
    unpacked = [d for d in unpacked if goes_to(d, places)] or unpacked
    # ... and into a folder named as the archive is, beside it, where the request says that name
    # ("unzip the Faithful 32x pack into resourcepacks/Faithful 32x"; a name with spaces is no word).
    lowered = request.lower()
    stems = [_archive_stem(path) for path in scope.archive_files]
    said_stems = [stem for stem in stems if " " in posixpath.basename(stem) and stem.lower() in lowered]
    # (where the name, cut at its space, is no other place: "resourcepacks/Faithful")
    unpacked = [d for d in unpacked if not any(stem.startswith(f"{d} ") for stem in said_stems)]
    # (A folder said as a place, or one that exists: "unzip the tree export into family tree/exports"
    # unpacks nothing into "family".)
    unpacked = [d for d in unpacked if _not_made_up(d, scope, said_new) or (places is not None and goes_to(d, places))]
    unpacked = changeable([*said_stems, *unpacked])
    narrow_enum(defs["extract"]["properties"], "to", unpacked, defs)
    if not unpacked:
        placeless.add("extract")
    defs["classify"]["properties"]["rules"]["items"]["properties"]["to"] = {"$ref": "#/$defs/target"}
    return named, listed, placeless


def unoffer(schema: dict[str, Any], ops: set[str]) -> None:
    """Take ``ops`` out of the steps of ``schema``; where no op is left, a plan takes no step (it
    says in its goal what it could not do)."""
    step = schema["$defs"]["step"]
    left = [op for op in step["properties"]["op"]["enum"] if op not in ops]
    if not left:
        # (The step stays as it was, a valid schema no step can be decoded under: an empty enum or
        # allOf is no JSON Schema the server takes.)
        schema["properties"]["steps"]["maxItems"] = 0
        return
    step["properties"]["op"]["enum"] = left
    step["allOf"] = [way for way in step["allOf"] if way["if"]["properties"]["op"]["const"] in left]


def _describes(request: str, name: str) -> bool:
    """Whether ``name`` is made of words that describe a folder said "... folder" in ``request``."""
    return re.search(rf"\b{re.escape(name)}\b[\w\s'\u2019-]*?\s(?:folder|directory|dir)\b", request, re.I) is not None


def _said_new_folders(request: str) -> set[str]:
    """The new folders (lower case) ``request`` asks to make, and their parents."""
    said = {name.lower() for name in [*made_folders(request), *made_names(request), *listed_folders(request)]}
    return said | {parent.lower() for name in said for parent in parent_folders(name)}


def _cut_short(scope: Scope, request: str) -> set[str]:
    """The new names in ``scope.words`` that only start a longer name it says with spaces, one that
    goes on to a slash ("old" of "old stuff/2026", "shop/product" of "shop/product shots/hi-res") or
    that the request calls something ("video" of "a folder called video archive"). (Not a name a
    word after it merely follows: "into archive today" may be into archive.)"""
    spaced = [word.lower() for word in scope.words if " " in word]
    called = {name for name in spaced if re.search(rf"\b(?:called|named)\s+['\"]?{re.escape(name)}", request, re.I)}
    return {word for word in scope.words if word not in scope.all_folders and word not in scope.under
            and any(name.startswith(f"{word.lower()} ") and ("/" in name[len(word.lower()):] or name in called)
                    for name in spaced)}  # fmt: skip


def _not_made_up(path: str, scope: Scope, said: set[str]) -> bool:
    """Whether ``path`` is a place a step may put things without the request saying it as one: a
    folder that exists, a file's new name, a path it spells ("a Documents/house folder"), or a
    folder it asks to make, by a name of one word or more ("a folder called Needs Review")."""
    return (path in scope.all_folders or path in scope.under or has_ext(posixpath.basename(path))
            or ("/" in path and path in scope.words) or path.lower().rstrip("/") in said
            or any(path.lower().startswith(f"{name} ") for name in said))  # fmt: skip


#: Files put into a folder said before: "put a note in it", "add a README.md in there".
_IN_IT = re.compile(r"\b(?:in|into|inside)\s+(?:it|there)\b", re.IGNORECASE)


def _archive_stem(path: str) -> str:
    """``path`` without its archive extension (``a/b.tar.gz``: ``a/b``)."""
    lowered = path.lower()
    for ext in sorted(ARCHIVE_EXTS, key=len, reverse=True):
        if lowered.endswith(ext):
            return path[: -len(ext)]
    return path


#: Words of sorting files into folders.
_SORTING = re.compile(r"\b(?:sort\w*|tidy|tidying|organi[sz]\w*|split\w*|classify\w*|file\s+away)\b", re.IGNORECASE)


def _words_of(text: str) -> list[str]:
    """The words of ``text``, in lower case."""
    return re.findall(r"[^\W_]+", text.lower())
