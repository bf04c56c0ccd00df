"""What a request leaves alone: the folders it spells a few words after it says to leave them
(:func:`spared_folders`), and the files it says so by name or path (:func:`spared_files`). A step
never selects from such a folder, and a selection leaves such a file out."""

from __future__ import annotations

import posixpath

from engine.planner.places import REQUEST_TOKEN, one_of

#: Words before a folder the request leaves alone ("leave media/videos alone", "except logs/archive").
_SPARING = frozenset(("leave", "leaving", "except", "excluding", "but", "touch", "skip", "skipping", "keep", "keeping",
                      "apart", "besides", "without", "save"))  # fmt: skip


def spared_folders(request: str, folders: list[str]) -> set[str]:
    """The ``folders`` the request spells whole (with a slash: "media/videos") a few words after it
    says to leave them alone: what a step selects from is never one of them."""
    raw = REQUEST_TOKEN.findall(request)
    tokens = [token.strip(".'\"").rstrip("/").lower() for token in raw]
    by_name = {folder.lower(): folder for folder in folders if "/" in folder}

    def before(at: int) -> list[str]:
        """The few words before token ``at``, in its own sentence ("Don't touch anything else.
        compress code/app/src" spares nothing)."""
        start = max(0, at - 4)
        ends = [i + 1 for i in range(start, at) if raw[i].endswith((".", "!", "?"))]
        return tokens[max([start, *ends]) : at]

    return {by_name[token] for at, token in enumerate(tokens)
            if token in by_name and any(one_of(word, _SPARING) for word in before(at))}  # fmt: skip


#: Words right before a file the request leaves alone ("except Todo.txt", "apart from the README").
_SPARING_FILE = frozenset(("except", "excluding", "apart", "besides", "skip", "skipping", "than", "sparing",
                           "leave", "leaving", "keep", "keeping"))  # fmt: skip


def spared_files(request: str, files: list[str]) -> list[str]:
    """The ``files`` the request says by name or path a few words after it says to leave them
    alone ("delete the tiny txt files in there except Todo.txt", "but keep notes/plan.md"): a step
    leaves them out of what it selects."""
    raw = REQUEST_TOKEN.findall(request)
    tokens = [token.strip(".'\"").rstrip("/").lower() for token in raw]
    said = set(tokens)
    by_name: dict[str, list[str]] = {}
    for path in files:
        for name in {path.lower(), posixpath.basename(path).lower()}:
            if name in said:
                by_name.setdefault(name, []).append(path)
    spared: list[str] = []
    for at, token in enumerate(tokens):
        before = [word for word in tokens[max(0, at - 3) : at] if word not in ("the", "my", "our", "for", "of")]
        if token in by_name and (
            any(one_of(word, _SPARING_FILE) for word in before) or " ".join(before).endswith("but not")
        ):
            spared += by_name[token]
    return list(dict.fromkeys(spared))
