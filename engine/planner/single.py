"""Request kinds that name things one by one: a file, a folder, an archive, new text, and requests
that file operations cannot do. See :mod:`engine.planner.requests` for the conventions."""

from __future__ import annotations

import posixpath
from collections import Counter

from engine.planner.phrasing import pick
from engine.planner.requests import (
    CODE_TASKS,
    CODE_WHAT,
    IMAGE_EXTS,
    Draft,
    Scene,
    Step,
    _ext_word,
    _folder_with_ext,
    _match,
)
from engine.planner.workspaces import PEOPLE, PLACES, TOPICS

LINES = [
    "buy milk",
    "call the bank on monday",
    "renew the passport",
    "send the invoice to acme",
    "book the dentist",
    "back up the laptop",
    "pay the electricity bill",
    "review the budget with carol",
]
MODULES = ["utils.py", "parser.py", "cli.py", "storage.py", "models/user.py"]


def _plain(s: Scene) -> list[str]:
    """Files whose names a request can spell: letters, digits, spaces and ``-_.()``, no markup."""
    return [spec.path for spec in s.regular() if all(ch.isalnum() or ch in "-_./ ()" for ch in spec.path)]


def _move_one(s: Scene) -> Draft | None:
    paths = _plain(s)
    if not paths:
        return None
    path = s.rng.choice(paths)
    name = posixpath.basename(path)
    roll = s.rng.random()
    if roll < 0.4:
        dest = s.new_dir(posixpath.dirname(path))
        template = pick(
            s.rng,
            [
                "move {path} into {dst}",
                "put {path} in {dst}",
                "{path} belongs in {dst}, move it",
                "mv {path} to {dst}/",
            ],
        )
        return (
            template,
            {"path": path, "dst": dest},
            [{"op": "move", "paths": [path], "to": dest}],
            f"Move {name} into {dest}",
        )
    if roll < 0.7:
        if any(ch in name for ch in " ()"):
            return None  # a new name is one word of the request
        stem, ext = posixpath.splitext(name)
        new = f"{pick(s.rng, ['final', 'old', 'copy-of', 'v2', 'backup'])}-{stem}{ext}"
        target = posixpath.join(posixpath.dirname(path), new)
        template = pick(s.rng, ["rename {path} to {new}", "call {path} {new} instead", "{path} should be named {new}"])
        return (
            template,
            {"path": path, "new": new},
            [{"op": "move", "from": path, "to": target}],
            f"Rename {name} to {new}",
        )
    if roll < 0.85:
        template = pick(s.rng, ["delete {path}", "remove {path}", "get rid of {path}", "trash {path}"])
        return template, {"path": path}, [{"op": "delete", "path": path}], f"Delete {name}"
    dest = s.new_dir(posixpath.dirname(path))
    template = pick(s.rng, ["copy {path} to {dst}", "make a copy of {path} in {dst}", "back up {path} into {dst}"])
    return (
        template,
        {"path": path, "dst": dest},
        [{"op": "copy", "paths": [path], "to": dest}],
        f"Copy {name} into {dest}",
    )


def _several(s: Scene) -> Draft | None:
    paths = _plain(s)
    if len(paths) < 3:
        return None
    chosen = sorted(s.rng.sample(paths, s.rng.randint(2, 3)))
    dest = s.new_dir()
    listed = ", ".join(chosen[:-1]) + " and " + chosen[-1]
    op = pick(s.rng, ["move", "move", "delete", "copy"])
    if op == "delete":
        template = pick(s.rng, ["delete {list}", "remove these: {list}"])
        return template, {"list": listed}, [{"op": "delete", "paths": chosen}], f"Delete {len(chosen)} files"
    template = pick(s.rng, [f"{op} {{list}} into {{dst}}", f"{op} these to {{dst}}: {{list}}"])
    return (
        template,
        {"list": listed, "dst": dest},
        [{"op": op, "paths": chosen, "to": dest}],
        f"{op.title()} {len(chosen)} files",
    )


def _backup_tree(s: Scene) -> Draft | None:
    folders = [folder for folder in s.folders() if "/" not in folder and len(s.under(folder)) >= 2]
    if not folders:
        return None
    folder = s.rng.choice(folders)
    dest = s.new_dir(folder)
    template = pick(
        s.rng,
        [
            "back up {src} into {dst}, keeping the folder structure",
            "copy everything in {src} to {dst} with its subfolders",
            "mirror {src} into {dst}",
        ],
    )
    step = {"op": "copy", "match": _match(folder), "to": dest, "keep_tree": True}
    return template, {"src": folder, "dst": dest}, [step], f"Copy {folder} into {dest} with its folders"


def _number(s: Scene) -> Draft | None:
    found = _folder_with_ext(s, 3)
    if found is None or found[1] not in [*IMAGE_EXTS, ".pdf", ".log", ".md"]:
        return None
    folder, ext = found
    roll = s.rng.random()
    match = _match(folder, ext=[ext])
    if roll < 0.4:
        word = pick(s.rng, ["photo", "scan", "page", "file", "doc"])
        template = pick(
            s.rng,
            [
                "number the {what} in {src} as {word}_001, {word}_002 and so on",
                "rename the {what} under {src} to {word}_001{ext}, {word}_002{ext}, ...",
            ],
        )
        step: Step = {"op": "rename", "match": match, "template": f"{word}_{{n:03}}{{ext}}"}
        slots = {"word": word}
    elif roll < 0.7:
        template = pick(
            s.rng,
            [
                "prefix the {what} in {src} with their date",
                "put the modification date in front of each of the {what} in {src}",
                "add the date (YYYY-MM-DD) to the start of the {what} names in {src}",
            ],
        )
        step = {"op": "rename", "match": match, "template": "{mtime:%Y-%m-%d}_{name}"}
        slots = {}
    else:
        template = pick(
            s.rng,
            [
                "put the folder name in front of the {what} in {src}",
                "prefix each of the {what} in {src} with its folder's name",
            ],
        )
        step = {"op": "rename", "match": match, "template": "{parent}-{name}"}
        slots = {}
    slots.update({"what": _ext_word(s.rng, ext), "src": folder, "ext": ext})
    return template, slots, [step], f"Rename the {ext} files in {folder}"


def _replace_in_names(s: Scene) -> Draft | None:
    options = []
    for find, replace, phrase in (
        (" ", "-", "spaces with dashes"),
        (" ", "_", "spaces with underscores"),
        (" copy", "", "' copy' from the names"),
        ("(1)", "", "'(1)' from the names"),
        ("_v2", "", "the _v2 suffix"),
    ):
        folders = {posixpath.dirname(spec.path) for spec in s.regular() if find in posixpath.basename(spec.path)}
        options += [(find, replace, phrase, folder) for folder in sorted(folders) if folder]
    if not options:
        return None
    find, replace, phrase, folder = s.rng.choice(options)
    verb = "replace" if replace else "remove"
    template = pick(s.rng, [f"in {{src}}, {verb} {phrase}", f"{verb} {phrase} for the files in {{src}}"])
    pattern = find.replace("(", "\\(").replace(")", "\\)")
    step = {"op": "rename", "match": _match(folder), "find": pattern, "replace": replace}
    return template, {"src": folder}, [step], f"Rename the files in {folder}"


def _sort_by_type(s: Scene) -> Draft | None:
    folders = [
        f for f in s.folders() if len({s.ext(spec) for spec in s.under(f) if "/" not in spec.path[len(f) + 1 :]}) >= 3
    ]
    if not folders:
        return None
    folder = s.rng.choice(folders)
    exts = Counter(s.ext(spec) for spec in s.under(folder) if "/" not in spec.path[len(folder) + 1 :])
    rules: list[dict[str, object]] = []
    spoken = []
    images = [ext for ext in exts if ext in IMAGE_EXTS]
    if images:
        dest = f"{folder}/{pick(s.rng, ['images', 'pictures'])}"
        rules.append({"ext": [".jpg", ".png", ".heic"], "to": dest})
        spoken.append(f"images into {dest}")
    for ext in [
        ext for ext in exts if ext not in IMAGE_EXTS and ext in (".pdf", ".csv", ".zip", ".docx", ".txt", ".mp3")
    ][:2]:
        dest = f"{folder}/{ext[1:]}"
        rules.append({"ext": [ext], "to": dest})
        spoken.append(f"{_ext_word(s.rng, ext)} into {dest}")
    if not rules:
        return None
    if s.rng.random() < 0.6:
        rest = f"{folder}/{pick(s.rng, ['other', 'misc'])}"
        rules.append({"default": True, "to": rest})
        spoken.append(f"everything else into {rest}")
    listed = ", ".join(spoken[:-1]) + (" and " if len(spoken) > 1 else "") + spoken[-1]
    template = pick(
        s.rng, ["sort {src} by type: {rules}", "organise the files in {src}: {rules}", "tidy {src} - {rules}"]
    )
    step = {"op": "classify", "match": {"glob": f"{folder}/*"}, "rules": rules}
    return template, {"src": folder, "rules": listed}, [step], f"Sort {folder} by type"


def _sort_by_topic(s: Scene) -> Draft | None:
    notes = [spec for spec in s.regular() if spec.path.endswith(".md") and spec.text]
    folders = sorted({spec.path.split("/")[0] for spec in notes if "/" in spec.path})
    if not folders:
        return None
    folder = s.rng.choice(folders)
    present = [
        t for t in TOPICS if any(t in (spec.text or "").lower() for spec in notes if spec.path.startswith(f"{folder}/"))
    ]
    if len(present) < 2:
        return None
    topics = s.rng.sample(present, 2)
    rules: list[dict[str, object]] = [{"contains": topic, "to": f"{folder}/{topic}"} for topic in topics]
    spoken = [f"{topic} notes into {folder}/{topic}" for topic in topics]
    template = pick(s.rng, ["sort the notes in {src} by topic: {rules}", "file the markdown in {src}: {rules}"])
    step = {"op": "classify", "match": _match(folder, ext=[".md"]), "rules": rules}
    return template, {"src": folder, "rules": " and ".join(spoken)}, [step], f"Sort the notes in {folder} by topic"


def _archive_folder(s: Scene) -> Draft | None:
    folders = [
        folder
        for folder in s.folders()
        if len(s.under(folder)) >= 2 and all(spec.size < 5 << 20 for spec in s.under(folder))
    ]
    if not folders:
        return None
    folder = s.rng.choice(folders)
    name = f"{posixpath.basename(folder)}{pick(s.rng, ['.zip', '.tar.gz', '-backup.zip', '.tar.xz'])}"
    remove = s.rng.random() < 0.35
    template = pick(
        s.rng,
        [
            "zip {src} into {archive}",
            "make an archive {archive} of everything in {src}",
            "compress {src} as {archive}",
            "pack up {src} into {archive}",
        ],
    )
    if remove:
        template += pick(s.rng, [" and delete the originals", ", then remove the files"])
    step: Step = {"op": "archive", "match": _match(folder), "to": name}
    if remove:
        step["remove"] = True
    return template, {"src": folder, "archive": name}, [step], f"Archive {folder} into {name}"


def _extract(s: Scene) -> Draft | None:
    archives = [spec for spec in s.files if spec.members and all(ch.isalnum() or ch in "-_./" for ch in spec.path)]
    if not archives:
        return None
    spec = s.rng.choice(archives)
    stem = posixpath.basename(spec.path).split(".")[0]
    dest = pick(s.rng, [f"restore/{stem}", stem, f"{s.new_dir()}/{stem}"])
    template = pick(
        s.rng,
        [
            "unpack {path} into {dst}",
            "extract {path} to {dst}",
            "unzip {path} in {dst}",
            "open up the archive {path} into {dst}",
        ],
    )
    steps: list[Step] = [{"op": "extract", "from": spec.path, "to": dest}]
    parent = posixpath.dirname(dest)
    if parent and parent not in s.folders():
        steps.insert(0, {"op": "mkdir", "path": parent})
    return template, {"path": spec.path, "dst": dest}, steps, f"Extract {stem}"


def _make_dirs(s: Scene) -> Draft | None:
    names = sorted({s.new_dir() for _ in range(s.rng.randint(1, 3))})
    listed = " and ".join(names)
    template = pick(
        s.rng,
        ["make a folder called {dirs}", "create the directories {dirs}", "mkdir {dirs}", "I need new folders: {dirs}"]
        if len(names) > 1
        else ["make a folder called {dirs}", "create a directory {dirs}", "mkdir {dirs}", "add an empty folder {dirs}"],
    )
    return template, {"dirs": listed}, [{"op": "mkdir", "path": name} for name in names], f"Make {listed}"


def _write(s: Scene) -> Draft | None:
    line = pick(s.rng, LINES)
    if s.rng.random() < 0.3:
        line = f"- {line}"
    existing = [path for path in _plain(s) if path.endswith((".md", ".txt"))]
    if existing and s.rng.random() < 0.5:
        path = s.rng.choice(existing)
        template = pick(
            s.rng,
            [
                "add a line '{line}' to {path}",
                "append '{line}' to {path}",
                "at the end of {path} write: {line}",
                'tack "{line}" onto {path}',
                'append "{line}" to {path}',
                "{path} needs one more line: {line}",
            ],
        )
        return (
            template,
            {"line": line, "path": path},
            [{"op": "append", "path": path, "content": f"{line}\n"}],
            f"Add a line to {path}",
        )
    folder = s.rng.choice([*s.folders(), ""]) if s.folders() else ""
    name = pick(s.rng, ["todo.md", "notes.txt", "reminder.txt", "shopping.md", "README.md", "ideas.txt"])
    path = posixpath.join(folder, name) if folder else name
    if path in {spec.path for spec in s.files}:
        return None
    template = pick(
        s.rng,
        [
            "create {path} with the text '{line}'",
            "make a file {path} that says {line}",
            "write '{line}' into a new file {path}",
            "new file {path}: {line}",
            "start a note {path} saying {line}",
            "{path} should contain: {line}",
            'put "{line}" in a new file {path}',
        ],
    )
    return (
        template,
        {"line": line, "path": path},
        [{"op": "write", "path": path, "content": f"{line}\n"}],
        f"Write {path}",
    )


def _not_files(s: Scene) -> Draft | None:
    template = pick(s.rng, CODE_TASKS)
    slots = {
        "what": pick(s.rng, CODE_WHAT),
        "module": pick(s.rng, MODULES),
        "person": pick(s.rng, PEOPLE),
        "place": pick(s.rng, PLACES),
        "stem": pick(s.rng, ["api", "cli", "parser", "models"]),
    }
    code = any(word in template for word in ("function", "test", "flag", "refactor", "build", "implement", "module"))
    goal = (
        "This needs code written or run, not file operations: use a profile with a code model (openai, ollama, vllm)"
        if code
        else "This cannot be done with file operations in the workspace"
    )
    return template, slots, [], goal
