"""How a request refers to what it names, and the kinds that name one file or one folder's parts.

People rarely spell a path in full. They write "downloads" for ``Downloads``, ``logs/`` with a
slash, "the kyoto folder" for ``trips/kyoto``, "the crm export" for
``exports/crm-export-2026-06.tar.gz`` or just the file's name. :func:`mentioned` rewrites the
slots of a drawn request that way. A reference stays unambiguous: a bare folder or file name is
used only when no other folder or file has it, and a description only when its words appear in
that one file's name among the files of its kind. The gold plan keeps the real paths, so the
model learns to find them in the workspace view. See :mod:`engine.planner.requests` for the
conventions the plans follow.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re

from engine.planner.phrasing import pick
from engine.planner.requests import AGE_PHRASES, NEW_TAGS, RECENT_ADJECTIVES, Draft, Scene, Step, _match
from engine.planner.single import _plain
from engine.planner.workspaces import when

#: What a file of an extension is called in a description ("the budget note").
NOUNS: dict[str, list[str]] = {
    ".pdf": ["pdf", "document", "PDF"], ".md": ["note", "notes", "doc"], ".txt": ["text file", "note"],
    ".zip": ["zip", "archive", "backup"], ".tar.gz": ["archive", "backup", "tarball"],
    ".jpg": ["photo", "picture", "pic"], ".png": ["image", "picture", "screenshot"], ".heic": ["photo", "pic"],
    ".mp4": ["video", "clip"], ".mov": ["video", "clip"], ".mkv": ["video"], ".mp3": ["song", "track"],
    ".csv": ["csv", "spreadsheet", "export"], ".docx": ["doc", "Word file", "document"], ".log": ["log"],
    ".py": ["script", "module"], ".xlsx": ["spreadsheet", "sheet"],
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z']+")


def _words(name: str) -> list[str]:
    stem = name.split(".")[0]
    return [word.lower() for word in _WORD.findall(stem) if len(word) >= 2]


def folder_mention(s: Scene, folder: str) -> str:
    """How a request names ``folder``: as it is, lower case, with a slash, by its last part, as words."""
    if s.rng.random() < 0.4:
        return folder
    folders = s.folders()
    base = posixpath.basename(folder)
    options = [f"{folder}/", f"the {folder} folder", f"my {folder}", f"{folder} folder"]
    if folder.lower() != folder and sum(f.lower() == folder.lower() for f in folders) == 1:
        options += [folder.lower()] * 3
    if "/" in folder and sum(posixpath.basename(f) == base for f in folders) == 1:
        options += [base, f"the {base} folder", f"{base}/"]
    spoken = " ".join(_words(base))
    if (
        spoken
        and spoken != base.lower()
        and sum(" ".join(_words(posixpath.basename(f))) == spoken for f in folders) == 1
    ):
        options += [f"my {spoken}", f"the {spoken}"]
    return pick(s.rng, options)


def file_mention(s: Scene, path: str) -> str:
    """How a request names the file ``path``: its path, its name when no other file has it, or a description."""
    roll = s.rng.random()
    if roll < 0.4:
        return path
    name = posixpath.basename(path)
    kinds = {spec.path: s.ext(spec) for spec in s.files if spec.kind == "file"}
    files = list(kinds)
    options = []
    if sum(posixpath.basename(other) == name for other in files) == 1:
        options += [name, name]
    ext = kinds[path]
    words = _words(name)
    same_kind = [other for other in files if other != path and kinds[other] == ext]
    for size in (1, 2):
        described = words[:size]
        if described and not any(set(described) <= set(_words(posixpath.basename(o))) for o in same_kind):
            noun = pick(s.rng, NOUNS.get(ext, ["file"]))
            options.append(f"the {' '.join(described)} {noun}")
            folder = posixpath.dirname(path)
            if folder:
                options.append(f"the {' '.join(described)} {noun} in {folder}")
            break
    return pick(s.rng, options) if options else path


def mentioned(s: Scene, slots: dict[str, str]) -> dict[str, str]:
    """``slots`` with the source folder (``src``) and the existing file (``path``) referred to as people do."""
    out = dict(slots)
    if out.get("src") in s.folders():
        out["src"] = folder_mention(s, out["src"])
    if out.get("path") in {spec.path for spec in s.regular()}:
        out["path"] = file_mention(s, out["path"])
    if "dst" in out and s.rng.random() < 0.15 and "/" not in out["dst"]:
        out["dst"] = f"{out['dst']}/"
    return out


# -- kinds ------------------------------------------------------------------------------------


def _retag_one(s: Scene) -> Draft | None:
    """Tag one file, take a tag off it, or swap one tag for another."""
    paths = _plain(s)
    if not paths:
        return None
    path = s.rng.choice(paths)
    spec = next(spec for spec in s.files if spec.path == path)
    new = pick(s.rng, [t for t in NEW_TAGS if t not in spec.tags])
    slots = {"path": path, "tag": new}
    if not spec.tags:
        template = pick(s.rng, ["tag {path} as {tag}", "add the tag {tag} to {path}", "mark {path} {tag}",
                                "label {path} with {tag}", "{path} gets the {tag} tag"])  # fmt: skip
        return template, slots, [{"op": "tag", "path": path, "tags": [new]}], f"Tag {path} {new}"
    old = s.rng.choice(sorted(spec.tags))
    slots["old"] = old
    untag: Step = {"op": "untag", "path": path, "tags": [old]}
    if s.rng.random() < 0.5:
        template = pick(s.rng, ["clear the {old} tag from {path}", "remove the tag {old} from {path}",
                                "{path} is not {old} anymore, drop the tag", "untag {old} on {path}"])  # fmt: skip
        return template, slots, [untag], f"Remove the tag {old} from {path}"
    template = pick(s.rng, ["change the tag of {path} from {old} to {tag}", "{path}: replace tag {old} with {tag}",
                            "retag {path} from {old} to {tag}", "drop {old} from {path}, add {tag}"])  # fmt: skip
    steps: list[Step] = [untag, {"op": "tag", "path": path, "tags": [new]}]
    return template, slots, steps, f"Change the tag of {path} from {old} to {new}"


def _clean_folder(s: Scene) -> Draft | None:
    """Delete everything in a folder but one of its subfolders."""
    options = []
    for folder in s.folders():
        for sub in s.folders():
            if posixpath.dirname(sub) == folder and len(s.under(sub)) < len(s.under(folder)) and s.under(sub):
                options.append((folder, sub))
    if not options:
        return None
    folder, keep = s.rng.choice(options)
    template = pick(s.rng, ["purge {src}, keeping {keep}", "delete everything in {src} except {keep}",
                            "empty {src}, leave {keep} alone", "wipe {src} apart from {keep}"])  # fmt: skip
    step = {"op": "delete", "match": _match(folder, exclude=[f"{keep}/**"])}
    return template, {"src": folder, "keep": keep}, [step], f"Delete what is in {folder} but {keep}"


def _anything_by_age(s: Scene) -> Draft | None:
    """Everything in a folder by age, whatever its kind ("docs files older than a year -> old")."""
    folders = [folder for folder in s.folders() if len(s.under(folder)) >= 3]
    if not folders:
        return None
    folder = s.rng.choice(folders)
    older = s.rng.random() < 0.6
    age = pick(s.rng, ["30d", "365d", "7d"] if older else ["7d", "30d"])
    cutoff = s.today - dt.timedelta(days=int(age[:-1]))
    if not any((when(s.today, spec.age_days) < cutoff) == older for spec in s.under(folder)):
        return None
    dest = s.new_dir(folder)
    slots = {"src": folder, "dst": dest}
    if older:
        slots["when"] = pick(s.rng, AGE_PHRASES[age])
        template = pick(s.rng, ["{src} files {when} -> {dst}", "move everything in {src} {when} to {dst}",
                                "files in {src} that are {when} go to {dst}"])  # fmt: skip
        match = _match(folder, modified_before=age)
    else:
        slots["when"] = pick(s.rng, RECENT_ADJECTIVES[age])
        template = pick(s.rng, ["duplicate {when} files of {src} into {dst}", "{when} stuff in {src} -> {dst}",
                                "move {when} files from {src} into {dst}"])  # fmt: skip
        match = _match(folder, modified_after=age)
    op = "copy" if template.startswith("duplicate") else "move"
    return template, slots, [{"op": op, "match": match, "to": dest}], f"{op.title()} files in {folder} by age"
