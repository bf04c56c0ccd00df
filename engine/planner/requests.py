"""Requests over a generated workspace, each with its gold plan.

Each *kind* looks at the workspace, picks what a person would plausibly ask about (a folder that
holds PDFs, logs of several ages, notes that mention a topic, a real archive to unpack) and
returns the request's template with its slots and the plan that does exactly that. A kind that
finds nothing to ask about in this workspace returns ``None`` and another kind is drawn.

The gold plans follow a few conventions, written down here so that a person reading a plan the
model wrote knows them too:

- a folder named in a request means everything under it, at any depth (``docs/**``); a kind of
  file is an ``ext`` filter (any case), not part of the glob;
- "older than a week / a month / a year" is ``modified_before`` ``7d`` / ``30d`` / ``365d``;
  "from the last week / month" (or "this week's", "last month's") is ``modified_after`` ``7d`` /
  ``30d``; "from 2025" is the calendar year, ``modified_after`` its first day and
  ``modified_before`` the next year's;
- "big" is ``larger_than`` ``10MB`` and "tiny" ``smaller_than`` ``1KB``;
- "photos" (or "pictures", "images") are the image extensions the folder holds, "videos" the video
  ones;
- a single file moved into a folder is ``paths`` (the folder is made when missing); renamed in
  place, ``from`` and ``to``;
- a request that file operations cannot do gets no steps, and a goal that says why.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from engine.planner.fixtures import FileSpec
from engine.planner.phrasing import pick
from engine.planner.values import parent_folders
from engine.planner.workspaces import HOSTILE, TAGS, TOPICS, when

Step = dict[str, Any]
#: A kind's answer: the request template, its slots, the plan's steps and its goal.
Draft = tuple[str, dict[str, str], list[Step], str]

EXT_WORDS: dict[str, list[str]] = {
    ".pdf": ["PDFs", "pdf files", "PDF documents", "pdfs"],
    ".jpg": ["jpgs", "JPEG photos", "jpg files"],
    ".png": ["PNGs", "png images", "png files"],
    ".log": ["log files", "logs", ".log files"],
    ".md": ["markdown files", "notes", ".md files"],
    ".csv": ["CSV files", "csv exports", "spreadsheets in csv"],
    ".tmp": ["temp files", ".tmp files", "temporary files"],
    ".zip": ["zip files", "zips", "zip archives"],
    ".mp4": ["mp4 videos", "mp4 files"],
    ".mp3": ["mp3s", "songs", "mp3 files"],
    ".txt": ["text files", "txt files"],
    ".docx": ["Word documents", "docx files"],
    ".heic": ["HEIC photos", "heic files"],
    ".py": ["Python files", ".py files"],
}
IMAGE_EXTS = [".jpg", ".png", ".heic"]
NEW_DIRS = ["archive", "sorted", "old", "backup", "keep", "review", "to-print", "shared", "done", "later", "trash-me"]
#: New folders named in several words, drawn too in a wide workspace.
SPOKEN_DIRS = ["old stuff", "Keep Forever", "print later", "Needs Checking", "done/checked", "Old Drafts",
               "Waiting Room", "scanned copies"]  # fmt: skip
CODE_TASKS = [
    "write a function that {what}",
    "fix the failing test in {module}",
    "add a --verbose flag to the cli",
    "refactor {module} so it is easier to read",
    "why is my build failing?",
    "write unit tests for {module}",
    "implement pagination in the api",
    "what's the weather tomorrow",
    "send an email to {person} about the budget",
    "explain what {module} does",
    "install numpy",
    "push my changes to github",
    "book a flight to {place}",
    "the test in tests/test_{stem}.py keeps timing out, sort it out",
    "shrink the {place} video to half its size",
    "post the {place} photos on instagram",
    "forward the budget report to {person}",
    "print the {place} tickets",
    "translate {module} into rust",
    "will it rain in {place} tomorrow?",
    "remind me to call {person} at 5",
]
CODE_WHAT = ["reverses a string", "parses dates", "sums a list", "checks for palindromes", "merges two dicts"]


@dataclass
class Scene:
    """What the kinds look at: the workspace's files and the day it is."""

    rng: random.Random
    today: dt.date
    files: list[FileSpec]
    #: Whether new folders may be named in several words too (a wide workspace's).
    wide: bool = False

    def regular(self) -> list[FileSpec]:
        return [spec for spec in self.files if spec.kind == "file" and spec.path not in _hostile_paths(self.files)]

    def folders(self) -> list[str]:
        """Every directory that holds a file, deepest last."""
        found = {posixpath.dirname(spec.path) for spec in self.files} - {""}
        found.update(parent for folder in list(found) for parent in parent_folders(folder))
        return sorted(found)

    def under(self, folder: str) -> list[FileSpec]:
        return [spec for spec in self.regular() if spec.path.startswith(f"{folder}/")]

    def ext(self, spec: FileSpec) -> str:
        name = posixpath.basename(spec.path).lower()
        return ".tar.gz" if name.endswith(".tar.gz") else posixpath.splitext(name)[1]

    def new_dir(self, *avoid: str) -> str:
        taken = set(self.folders()) | {spec.path for spec in self.files}
        for _ in range(20):
            name = pick(self.rng, [*NEW_DIRS, *SPOKEN_DIRS] if self.wide else NEW_DIRS)
            if self.rng.random() < 0.3:
                name = f"{name}/{pick(self.rng, [str(self.today.year), pick(self.rng, TOPICS), 'misc'])}"
            if name not in taken and name not in avoid and not any(t.startswith(f"{name}/") for t in taken):
                return name
        return f"sorted-{self.rng.randrange(1000)}"


def _hostile_paths(files: list[FileSpec]) -> set[str]:
    return {spec.path for spec in files if posixpath.basename(spec.path) in HOSTILE}


def _ext_word(rng: random.Random, ext: str) -> str:
    return pick(rng, EXT_WORDS.get(ext, [f"{ext} files"]))


def _folder_with_ext(s: Scene, minimum: int = 2) -> tuple[str, str] | None:
    """A folder and an extension with at least ``minimum`` such files under it."""
    options = []
    for folder in s.folders():
        counts = Counter(s.ext(spec) for spec in s.under(folder))
        options += [(folder, ext) for ext, count in counts.items() if count >= minimum and ext in EXT_WORDS]
    return s.rng.choice(options) if options else None


def _match(folder: str | None, **filters: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"glob": f"{folder}/**" if folder else "**"}
    spec.update({key: value for key, value in filters.items() if value is not None})
    return spec


# -- kinds over a selection -------------------------------------------------------------------


def _move_by_type(s: Scene) -> Draft | None:
    found = _folder_with_ext(s)
    if found is None:
        return None
    folder, ext = found
    dest = s.new_dir(folder)
    op = pick(s.rng, ["move", "move", "copy"])
    group = [word for word, exts in GROUPS.items() if ext in exts]
    exts = [ext]
    what = _ext_word(s.rng, ext)
    grouped = bool(group) and s.rng.random() < 0.5
    if grouped:
        what = pick(s.rng, group)
    scoped = s.rng.random() < 0.75
    if grouped:
        # "every photos" are the photos of every kind there: in the folder, or anywhere.
        present = {s.ext(spec) for spec in (s.under(folder) if scoped else s.regular())}
        exts = [e for e in GROUPS[what] if e in present]
    if op == "move":
        template = pick(
            s.rng,
            [
                "move every {what} from {src} into {dst}",
                "put all the {what} in {src} into {dst}",
                "move the {what} out of {src} and into {dst}",
                "{dst} should hold the {what} that are in {src}",
                "gather up the {what} in {src} into {dst}",
                "relocate all {what} under {src} to {dst}",
                "take the {what} from {src} and file them in {dst}",
                "{what} in {src} -> {dst}",
                "{what} from {src} go to {dst}",
            ]
            if scoped
            else [
                "move every {what} into {dst}",
                "put all the {what} in {dst}",
                "collect all {what} into {dst}",
                "move all {what} anywhere in the workspace to {dst}",
            ],
        )
    else:
        template = pick(
            s.rng,
            [
                "copy the {what} from {src} to {dst}",
                "make copies of the {what} in {src} inside {dst}",
                "copy every {what} under {src} into {dst}, keep the originals",
            ]
            if scoped
            else ["copy all {what} into {dst}", "duplicate every {what} into {dst}"],
        )
    step = {"op": op, "match": _match(folder if scoped else None, ext=exts), "to": dest}
    goal = f"{op.title()} the {ext} files{f' in {folder}' if scoped else ''} into {dest}"
    return template, {"what": what, "src": folder, "dst": dest}, [step], goal


AGE_PHRASES = {
    "7d": ["older than a week", "older than 7 days", "not touched in a week", "more than a week old"],
    "30d": ["older than a month", "older than 30 days", "not modified in the last month", "over a month old"],
    "365d": ["older than a year", "from more than a year ago", "over a year old", "not touched in a year"],
}
RECENT_PHRASES = {
    "7d": ["from the last week", "changed in the past 7 days", "modified this past week", "from the last 7 days"],
    "30d": ["from the last month", "changed in the past 30 days", "modified in the last month"],
}
#: The same, said before the files ("last month's screenshots"): ``modified_after`` too.
RECENT_ADJECTIVES = {
    "7d": ["this week's", "the past week's", "last week's", "the last 7 days'"],
    "30d": ["last month's", "the past month's", "this month's", "the last 30 days'"],
}
#: Tags a request may invent: a tag need not exist before a plan adds it.
NEW_TAGS = ["signed-off", "archived", "keep", "read-later", "q3", "exam", "taxes", "shared", "private", "followup",
            "old-laptop", "starred", "pinned", "backlog", "reviewed", "2025"]  # fmt: skip
#: Words for a group of extensions, and the group.
GROUPS = {"photos": IMAGE_EXTS, "pictures": IMAGE_EXTS, "images": IMAGE_EXTS, "pics": IMAGE_EXTS,
          "videos": [".mp4", ".mov", ".mkv"], "video files": [".mp4", ".mov", ".mkv"]}  # fmt: skip


def _by_age(s: Scene) -> Draft | None:
    found = _folder_with_ext(s, 3)
    if found is None:
        return None
    folder, ext = found
    older = s.rng.random() < 0.65
    phrases = AGE_PHRASES if older else RECENT_PHRASES
    age = pick(s.rng, list(phrases))
    key = "modified_before" if older else "modified_after"
    cutoff = s.today - dt.timedelta(days=int(age[:-1]))
    chosen = [
        spec for spec in s.under(folder) if s.ext(spec) == ext and (when(s.today, spec.age_days) < cutoff) == older
    ]
    if not chosen:
        return None
    op = pick(s.rng, ["move", "move", "delete", "archive"])
    match = _match(folder, ext=[ext], **{key: age})
    what = _ext_word(s.rng, ext)
    slots = {"what": what, "src": folder, "when": pick(s.rng, phrases[age])}
    before = not older and s.rng.random() < 0.5
    if before:
        slots["when"] = pick(s.rng, RECENT_ADJECTIVES[age])
    if op == "move":
        dest = s.new_dir(folder)
        slots["dst"] = dest
        template = pick(
            s.rng,
            [
                "file {when} {what} from {src} under {dst}",
                "{when} {what} from {src} -> {dst}",
                "put {when} {what} from {src} into {dst}",
            ]
            if before
            else [
                "move the {what} in {src} {when} to {dst}",
                "{what} in {src} {when} go into {dst}",
                "shift {what} {when} from {src} into {dst}",
                "{what} in {src} {when} -> {dst}",
            ],
        )
        return template, slots, [{"op": "move", "match": match, "to": dest}], f"Move old {ext} files out of {folder}"
    if op == "delete":
        template = pick(
            s.rng,
            ["delete {when} {what} in {src}", "clear out {when} {what} from {src}"]
            if before
            else [
                "delete the {what} in {src} {when}",
                "clean out {what} {when} from {src}",
                "remove all {what} under {src} that are {when}",
                "trash the {what} in {src} {when}",
            ],
        )
        return template, slots, [{"op": "delete", "match": match}], f"Delete {ext} files in {folder} by age"
    name = f"{posixpath.basename(folder)}-{'old' if older else 'recent'}{pick(s.rng, ['.zip', '.tar.gz'])}"
    slots["archive"] = name
    remove = s.rng.random() < 0.5
    template = pick(
        s.rng,
        ["zip up {when} {what} in {src} into {archive}" + (" and delete them" if remove else "")]
        if before
        else [
            "zip up the {what} in {src} {when} into {archive}" + (" and delete them" if remove else ""),
            "archive {what} {when} from {src} as {archive}" + (", removing the originals" if remove else ""),
        ],
    )
    step: Step = {"op": "archive", "match": match, "to": name}
    if remove:
        step["remove"] = True
    return template, slots, [step], f"Archive {ext} files in {folder} into {name}"


def _by_year(s: Scene) -> Draft | None:
    found = _folder_with_ext(s, 2)
    if found is None:
        return None
    folder, ext = found
    years = Counter(when(s.today, spec.age_days).year for spec in s.under(folder) if s.ext(spec) == ext)
    year = s.rng.choice(sorted(years))
    this_year = year == s.today.year and s.rng.random() < 0.5
    match = _match(
        folder, ext=[ext], modified_after=f"{year}-01-01", modified_before=None if this_year else f"{year + 1}-01-01"
    )
    dest = pick(s.rng, [f"{folder}/{year}", f"{s.new_dir(folder)}/{year}"])
    chosen = [spec.path for spec in s.under(folder) if s.ext(spec) == ext and when(s.today, spec.age_days).year == year]
    if all(path.startswith(f"{dest}/") for path in chosen) or posixpath.basename(folder) == str(year):
        dest = f"{s.new_dir(folder)}/{year}"
    slots = {"what": _ext_word(s.rng, ext), "src": folder, "year": str(year), "dst": dest}
    if this_year:
        template = pick(
            s.rng, ["move this year's {what} from {src} into {dst}", "put the {what} in {src} from this year in {dst}"]
        )
    else:
        template = pick(
            s.rng,
            [
                "move every {what} from {year} in {src} into {dst}",
                "file the {year} {what} of {src} under {dst}",
                "{what} in {src} dated {year} should go to {dst}",
            ],
        )
    return template, slots, [{"op": "move", "match": match, "to": dest}], f"Move the {year} {ext} files into {dest}"


def _big_files(s: Scene) -> Draft | None:
    big = [spec for spec in s.regular() if spec.size > 10 * 1024 * 1024]
    if not big:
        return None
    folder = posixpath.dirname(s.rng.choice(big).path)
    explicit = s.rng.random() < 0.4
    size = pick(s.rng, ["20MB", "15MB"]) if explicit else "10MB"
    dest = s.new_dir(folder)
    slots = {"src": folder, "dst": dest, "size": size.replace("MB", " MB") if s.rng.random() < 0.5 else size}
    op = pick(s.rng, ["move", "move", "delete"])
    if op == "move":
        template = pick(
            s.rng,
            ["move the files bigger than {size} in {src} to {dst}", "files over {size} in {src} go to {dst}"]
            if explicit
            else [
                "move the big files in {src} to {dst}",
                "the large videos in {src} belong in {dst}",
                "put the huge files from {src} into {dst}",
            ],
        )
        step: Step = {"op": "move", "match": _match(folder, larger_than=size), "to": dest}
    else:
        template = pick(
            s.rng,
            ["delete everything larger than {size} in {src}"]
            if explicit
            else ["delete the big files in {src}", "get rid of the huge videos in {src}"],
        )
        step = {"op": "delete", "match": _match(folder, larger_than=size)}
    return template, slots, [step], f"{op.title()} the large files in {folder}"


def _tiny_temp(s: Scene) -> Draft | None:
    temps = [spec for spec in s.regular() if s.ext(spec) in (".tmp", ".bak")]
    if not temps:
        return None
    ext = s.ext(s.rng.choice(temps))
    tiny = any(s.ext(spec) == ext and spec.size < 1024 for spec in temps)
    roll = s.rng.random() if tiny else s.rng.choice([0.0, 0.8])
    if roll < 0.4:
        template = pick(
            s.rng, ["delete all {what}", "clean up every {what} in the workspace", "remove the {what} everywhere"]
        )
        match = _match(None, ext=[ext])
    elif roll < 0.7:
        template = pick(s.rng, ["delete the tiny {what}, the ones under 1KB", "remove {what} smaller than 1 KB"])
        match = _match(None, ext=[ext], smaller_than="1KB")
    else:
        folder = posixpath.dirname(s.rng.choice(temps).path).split("/")[0] or None
        if folder is None or all(spec.path.startswith(f"{folder}/") for spec in temps if s.ext(spec) == ext):
            return None
        template = pick(
            s.rng, ["delete all {what} except the ones in {keep}", "remove every {what} but leave {keep} alone"]
        )
        match = _match(None, ext=[ext], exclude=[f"{folder}/**"])
        return (
            template,
            {"what": _ext_word(s.rng, ext), "keep": folder},
            [{"op": "delete", "match": match}],
            f"Delete {ext} files",
        )
    return template, {"what": _ext_word(s.rng, ext)}, [{"op": "delete", "match": match}], f"Delete {ext} files"


def _mentioning(s: Scene) -> Draft | None:
    notes = [spec for spec in s.regular() if spec.text and spec.path.endswith(".md")]
    topics = [topic for topic in TOPICS if any(topic in (spec.text or "").lower() for spec in notes)]
    if not topics:
        return None
    topic = s.rng.choice(topics)
    folder = s.rng.choice(sorted({spec.path.split("/")[0] for spec in notes if topic in (spec.text or "").lower()}))
    op = pick(s.rng, ["move", "tag", "tag+move", "copy"])
    match = _match(folder, ext=[".md"], contains=topic)
    dest = f"{folder}/{topic}" if s.rng.random() < 0.6 else s.new_dir(folder)
    slots = {"topic": topic, "src": folder, "dst": dest, "tag": topic}
    if op in ("move", "copy"):
        template = pick(
            s.rng,
            [
                "{op} the notes in {src} that mention {topic} into {dst}",
                "{op} every markdown file in {src} about {topic} to {dst}",
                "the {topic} notes in {src}: {op} them to {dst}",
            ],
        )
        slots["op"] = op
        return template, slots, [{"op": op, "match": match, "to": dest}], f"{op.title()} the {topic} notes into {dest}"
    tag = topic if s.rng.random() < 0.5 else pick(s.rng, TAGS if s.rng.random() < 0.5 else NEW_TAGS)
    slots["tag"] = tag
    tag_step = {"op": "tag", "match": match, "tags": [tag]}
    if op == "tag":
        template = pick(
            s.rng,
            [
                "tag the {topic} notes in {src} as {tag}",
                "add the tag {tag} to every note in {src} mentioning {topic}",
                "label the markdown files in {src} that talk about {topic} with {tag}",
            ],
        )
        return template, slots, [tag_step], f"Tag the {topic} notes {tag}"
    template = pick(
        s.rng,
        [
            "tag the {topic} notes in {src} as {tag} and put them in {dst}",
            "mark the {topic} notes from {src} with {tag}, then move them to {dst}",
        ],
    )
    return (
        template,
        slots,
        [tag_step, {"op": "move", "match": match, "to": dest}],
        f"Tag the {topic} notes and move them to {dest}",
    )


def _by_tag(s: Scene) -> Draft | None:
    tagged = [spec for spec in s.regular() if spec.tags]
    if not tagged:
        return None
    tag = s.rng.choice(sorted({tag for spec in tagged for tag in spec.tags}))
    roll = s.rng.random()
    if roll < 0.45:
        folder = tagged[0].path.split("/")[0] if s.rng.random() < 0.5 else None
        template = pick(
            s.rng,
            [
                "remove the {tag} tag from everything" + (" in {src}" if folder else ""),
                "untag {tag} on all files" + (" under {src}" if folder else ""),
                "nothing is {tag} anymore" + (" in {src}" if folder else "") + ", drop that tag",
            ],
        )
        step: Step = {"op": "untag", "match": _match(folder, tag=tag), "tags": [tag]}
        return template, {"tag": tag, "src": folder or ""}, [step], f"Remove the tag {tag}"
    dest = s.new_dir()
    template = pick(
        s.rng,
        [
            "move everything tagged {tag} into {dst}",
            "files with the {tag} tag go to {dst}",
            "collect the {tag} files in {dst}",
            "{tag}-tagged files -> {dst}",
            "anything with the {tag} tag -> {dst}",
        ],
    )
    step = {"op": "move", "match": _match(None, tag=tag), "to": dest}
    return template, {"tag": tag, "dst": dest}, [step], f"Move the files tagged {tag} into {dest}"


def _name_prefix(s: Scene) -> Draft | None:
    drafts = [
        spec for spec in s.regular() if posixpath.basename(spec.path).startswith(("draft-", "Screenshot ", "IMG_"))
    ]
    if not drafts:
        return None
    name = posixpath.basename(s.rng.choice(drafts).path)
    prefix = next(p for p in ("draft-", "Screenshot ", "IMG_") if name.startswith(p))
    dest = s.new_dir()
    template = pick(
        s.rng,
        ["move the files whose names start with {prefix} to {dst}", "everything named {prefix}something goes in {dst}"],
    )
    step = {"op": "move", "match": _match(None, name_regex=f"^{prefix}"), "to": dest}
    return template, {"prefix": prefix.strip(), "dst": dest}, [step], f"Move the {prefix.strip()} files into {dest}"


def _first_few(s: Scene) -> Draft | None:
    found = _folder_with_ext(s, 4)
    if found is None:
        return None
    folder, ext = found
    count = s.rng.randint(2, 3)
    dest = s.new_dir(folder)
    template = pick(
        s.rng,
        [
            "move the first {count} {what} in {src} (by name) into {dst}",
            "take {count} {what} from {src}, the first ones alphabetically, and move them to {dst}",
        ],
    )
    step = {"op": "move", "match": _match(folder, ext=[ext], limit=count), "to": dest}
    return (
        template,
        {"count": str(count), "what": _ext_word(s.rng, ext), "src": folder, "dst": dest},
        [step],
        f"Move {count} files",
    )
