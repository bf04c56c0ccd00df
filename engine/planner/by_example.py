"""Rename templates and changes that a request shows by example: names it gives as examples of the
new ones ("like 2026-06-29_IMG_5521.jpg", "to the 'ep40 - subtitles.srt' pattern"), two names one
after the other ("from 'ch03 - x.docx' to 'Chapter 03 - x.docx'"), and a date spelled out in a
name ("drawing-YYYY-MM-DD")."""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Iterable

from engine.planner.spoken import SHOWN_DATE
from engine.planner.values import literal

#: A day written in a name: 2026-09-18, 20260918, 2026_09_18.
_SHOWN_DAY = re.compile(r"(?:19|20)\d\d[-_.]?[01]\d[-_.]?[0-3]\d")


def example_templates(shown: Iterable[str], basenames: Iterable[str]) -> list[str]:
    """Rename templates that names ``shown`` as examples make of the files ``basenames`` they
    start or end with: "ep40 - subtitles.srt" of ep40.srt is ``{stem} - subtitles{ext}``, and
    "2026 budget.xlsx" of budget.xlsx ``2026 {stem}{ext}``. A template never holds a brace of the
    example (it would be read as a field), nor a date it shows: each file's own date takes its place
    ("like 2026-06-29_IMG_5521.jpg" of IMG_5521.jpg is ``{mtime:%Y-%m-%d}_{stem}{ext}``)."""
    found: list[str] = []
    for example in shown:
        stem_of, ext = posixpath.splitext(posixpath.basename(example))
        for base in basenames:
            stem_, ext_ = posixpath.splitext(base)
            if ext_.lower() != ext.lower() or len(stem_) < 2 or stem_ == stem_of or "{" in stem_of or "}" in stem_of:
                continue
            if stem_of.startswith(stem_):
                found.append(f"{{stem}}{_dated(stem_of[len(stem_) :])}{{ext}}")
            elif stem_of.endswith(stem_):
                found.append(f"{_dated(stem_of[: -len(stem_)])}{{stem}}{{ext}}")
    return list(dict.fromkeys(found))


def _dated(part: str) -> str:
    """``part`` of an example name with the day it shows as each file's own date in that form
    ("2026-06-29_": ``{mtime:%Y-%m-%d}_``, "20260629-": ``{mtime:%Y%m%d}-``)."""
    day = _SHOWN_DAY.search(part)
    if day is None:
        return part
    shown = day.group(0)
    separator = shown[4] if not shown[4].isdigit() else ""
    form = separator.join(("%Y", "%m", "%d"))
    return f"{part[: day.start()]}{{mtime:{form}}}{part[day.end() :]}"


def changed_by_example(shown: list[str]) -> list[tuple[list[str], str]]:
    """What a rename finds and puts instead, shown by two names one after the other ("from 'ch03 -
    x.docx' to 'Chapter 03 - x.docx'"): the part where they differ, literally, and at the start of a
    name where the change is there (``^ch`` and ``Chapter ``)."""
    changes: list[tuple[list[str], str]] = []
    for was, now in itertools.pairwise(shown):
        was, now = posixpath.basename(was), posixpath.basename(now)
        head = len(posixpath.commonprefix([was, now]))
        tail = len(posixpath.commonprefix([was[head:][::-1], now[head:][::-1]]))
        old, new = was[head : len(was) - tail], now[head : len(now) - tail]
        if not old or was == now or was.endswith(now) or now.endswith(was):  # ("x - Inês.docx", "Inês.docx")
            continue
        changes.append(([*([f"^{literal(old)}"] if head == 0 else []), literal(old)], new))
    return changes


def dated_templates(request: str) -> list[str]:
    """The rename templates of the names ``request`` shows with a date spelled out: "drawing-YYYY-MM-DD"
    is ``drawing-{mtime:%Y-%m-%d}{ext}`` (a shown extension stands for the file's own). A date shown
    alone is none."""
    found = []
    for shown in SHOWN_DATE.finditer(request):
        upper = shown[0][len(shown["before"]) :].upper()
        sep = shown["s"]
        date = f"%Y{sep}%m{sep}%d" if f"MM{sep}DD" in upper else f"%Y{sep}%m"
        shown_after = shown["after"].rstrip(".")  # (a sentence's full stop is not the name's)
        stem, ext = posixpath.splitext("x" + shown_after)
        after = stem[1:] if any(ch.isalpha() for ch in ext) else shown_after
        # (A date alone is its form, not a name: "add the date (YYYY-MM-DD) to the start".)
        if shown["before"] or after:
            found.append(f"{shown['before']}{{mtime:{date}}}{after}{{ext}}")
    return found
