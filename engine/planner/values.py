"""The values a narrowed reply schema offers, and the tests on them: the usual extensions and rename
templates, the names a request's words give (their starts, their parent folders, the words of file
names), whether a plan may change a path, and which files a glob or a place takes."""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterable

from engine.files.archives import FORMATS
from engine.workspace.sandbox import SandboxError, check_relpath

COMMON_EXTS = (".pdf", ".jpg", ".jpeg", ".png", ".heic", ".gif", ".log", ".md", ".txt", ".csv", ".tmp", ".bak",
               ".zip", ".gz", ".mp4", ".mov", ".mkv", ".mp3", ".docx", ".xlsx", ".json", ".py")  # fmt: skip
ARCHIVE_EXTS = tuple(f".{fmt}" for fmt in FORMATS)
#: Extensions of files that hold no lines of text to write or add to: pictures, sound, video,
#: documents of office suites, PDFs and archives.
BINARY_EXTS = (".pdf", ".jpg", ".jpeg", ".png", ".heic", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".raw", ".cr2",
               ".nef", ".dng", ".psd", ".ai", ".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".mp4", ".mov", ".mkv",
               ".avi", ".webm", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".exe",
               ".dmg", ".iso", ".bin", ".pyc", ".fit", ".fits", ".sqlite", ".db", ".ttf", ".otf", ".woff",
               *ARCHIVE_EXTS)  # fmt: skip
TEMPLATES = ("{mtime:%Y-%m-%d}_{name}", "{parent}-{name}", "{n:03}_{name}", "{stem}{ext}")
NAME = re.compile(r"^[\w.\-/~+@ \[\]]+$")


def has_ext(name: str) -> bool:
    """Whether ``name`` ends in an extension, which has a letter ("notes.md", not "1.2.0")."""
    return any(ch.isalpha() for ch in posixpath.splitext(name.strip("."))[1])


NUMBERED = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_0*1(?:\.\w+)?$")
#: The first of names numbered in a row, said as an example: "repair-001", "mochi-dental-01", "page1".
FIRST_NUMBERED = re.compile(r"^([^\W\d_][\w.-]*?[-_.]?)(0*1)(?:\.[A-Za-z]\w{0,7})?$")


def counted_template(first: str, words: Iterable[str]) -> str | None:
    """The rename template of names numbered from ``first`` on, with as many digits, where ``words``
    (the request's) go on with the second ("repair-001, repair-002 etc" is ``repair-{n:03}{ext}``,
    "mochi-dental-01, mochi-dental-02" ``mochi-dental-{n:02}{ext}``, "page1, page2" ``page{n}{ext}``);
    None otherwise ("the Q1 reports" numbers nothing)."""
    found = FIRST_NUMBERED.match(first)
    if found is None:
        return None
    width = len(found.group(2))
    second = (found.group(1) + "2".zfill(width)).lower()
    if not any(word.lower() == second or word.lower().startswith(f"{second}.") for word in words):
        return None
    return found.group(1) + ("{n}" if width == 1 else f"{{n:0{width}}}") + "{ext}"


SPLIT = re.compile(r"[-_. ]+")
_SOMETHING = re.compile(r"s[a-z]{0,2}m[a-z]{3,7}$", re.IGNORECASE)


def name_prefixes(word: str) -> list[str]:
    """``word`` and its starts up to each ``-`` or ``_`` (``IMG_something``: ``IMG_``), and with one added."""
    found = [word, f"{word}-", f"{word}_"]
    found += [word[: at + 1] for at, ch in enumerate(word) if ch in "-_" and at > 0]
    # "named draft-something", typed fast too ("Screenshotsomethnig"), or "named draft-..."
    stem = _SOMETHING.sub("", word.removesuffix("..."))
    if stem and stem != word:
        found += [stem, f"{stem} "]
    return found


def words_of_names(files: list[str]) -> list[str]:
    """The words in the workspace's file names (``budget-minutes.md``: budget, minutes)."""
    found = []
    for path in files:
        found += [part.lower() for part in SPLIT.split(posixpath.basename(path)) if len(part) >= 3 and part.isalpha()]
    return found


def innermost(paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` that hold none of the others ("a", "a/b", "c": "a/b", "c"), in order."""
    paths = list(paths)
    return [path for path in paths if not any(other.startswith(f"{path}/") for other in paths)]


def parent_folders(path: str) -> list[str]:
    """The folders above ``path``, nearest first ("a/b/c.txt": "a/b", "a"); an absolute path's end at
    its root ("/x/y": "/x", "/"), which no plan may change."""
    found = []
    while "/" in path:
        parent = posixpath.dirname(path)
        if parent == path:  # the root: its parent is itself
            break
        path = parent
        found.append(path)
    return found


def globbed(path: str, glob: str) -> bool:
    """Whether ``glob`` (``**``, ``folder/**`` or ``folder/*``) selects the file ``path``."""
    if glob == "**":
        return True
    if glob.endswith("/**"):
        return path.startswith(glob[:-2])
    return posixpath.dirname(path) == glob[:-2]


def goes_to(path: str, places: set[str] | None) -> bool:
    """Whether ``path`` is one of the ``places`` a request says files go to (any, when None), by
    its whole path or its name, or as a name of several words that the place starts ("into editor/for
    Ruth": ``editor/for``) or ends ("into My Downloads/pictures": ``downloads/pictures``)."""
    if places is None:
        return True
    lowered = path.lower().rstrip("/")
    return (lowered in places or posixpath.basename(lowered) in places
            or any(lowered.startswith(f"{place} ") or lowered.endswith(f" {place}") for place in places))  # fmt: skip


def is_changeable(path: str) -> bool:
    """Whether a plan may change ``path``: inside the workspace, not its root, never in a ``.git``."""
    try:
        return check_relpath(path, write=True) != "."
    except SandboxError:
        return False


def starts_some(names: list[str], start: str) -> bool:
    """Whether some name of the sorted list ``names`` starts with ``start``."""
    at = bisect.bisect_left(names, start)
    return at < len(names) and names[at].startswith(start)


def compiles(regex: str) -> bool:
    try:
        re.compile(regex)
    except re.error:
        return False
    return True


def put_literally(text: str) -> str:
    """``text`` as what a rename puts in, literally: a backslash doubled (one alone would be read as a
    group, "\\1", or refused as a bad escape)."""
    return text.replace("\\", "\\\\")


def literal(text: str) -> str:
    """``text`` as a regular expression that finds it: its special characters escaped (and only
    those, as a person writes it: ``\\(1\\)``, `` copy``)."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def is_text_name(path: str) -> bool:
    """Whether ``path`` may name a file of text lines (``notes/todo.md``, ``TODO``), by its extension:
    not a picture, a sound, a video, a PDF, an office document nor an archive (:data:`BINARY_EXTS`)."""
    return not path.lower().endswith(BINARY_EXTS)
