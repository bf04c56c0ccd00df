"""The pretraining documents: where they come from, how they are read, and the 80/10/10 split.

The default corpus is the standard library of the running interpreter (tests excluded); ``--data``
adds text files, JSONL rows and ``datasets``-loadable files. The cleaning filters live in
:mod:`engine.tinyllm.cleaning` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from engine.jsonl import MAX_LINE_BYTES as MAX_LINE_BYTES
from engine.jsonl import read_jsonl
from engine.names import display_name
from engine.tinyllm.cleaning import PRETRAIN_CLEANING, SFT_CLEANING, CleaningConfig, FilterReport, clean
from engine.tinyllm.errors import TrainInputError

__all__ = [
    "PRETRAIN_CLEANING",
    "SFT_CLEANING",
    "CleaningConfig",
    "Document",
    "FilterReport",
    "ReadReport",
    "Splits",
    "clean",
    "corpus_files",
    "corpus_fingerprint",
    "default_corpus_files",
    "read_documents",
    "split_by_hash",
]

T = TypeVar("T")

#: Bumped when reading or splitting changes, so a disk cache keyed by the fingerprint is rebuilt.
CORPUS_FORMAT = 1

#: Files loaded with ``datasets.load_dataset``, by suffix: the builder that reads them.
DATASET_BUILDERS = {".json": "json", ".csv": "csv", ".parquet": "parquet"}

#: Directories never read: caches and installed packages (hidden ones, such as .git, and virtual
#: environments, which hold a pyvenv.cfg, are skipped too).
JUNK_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})

#: Suffixes that are never text, skipped quietly when met inside a directory.
# fmt: off
BINARY_SUFFIXES = frozenset({
    ".pyc", ".pyo", ".so", ".dll", ".dylib", ".exe", ".o", ".a", ".class", ".jar", ".zip", ".gz", ".bz2", ".xz",
    ".zst", ".tar", ".whl", ".egg", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".mp3",
    ".mp4", ".wav", ".ogg", ".sqlite", ".db", ".bin", ".pt", ".safetensors", ".arrow", ".npy", ".npz",
})
# fmt: on

#: A text file larger than this is skipped (and counted): one document must fit in memory several times.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Directories of the standard library that hold its tests, not its code.
_STDLIB_TEST_DIRS = frozenset({"test", "tests", "idle_test"})


@dataclass(frozen=True)
class Document:
    """One pretraining document: its text and where it came from (a path, or ``path:LINE`` for a JSONL row)."""

    text: str
    source: str


@dataclass
class ReadReport:
    """What :func:`read_documents` met besides documents: files it skipped, and why."""

    files: int = 0
    not_utf8: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """How many files were skipped."""
        return len(self.not_utf8) + len(self.too_large)


@dataclass(frozen=True, repr=False)
class Splits(Generic[T]):
    """The train, validation and test parts of a collection, each in the order of the input."""

    train: list[T]
    validation: list[T]
    test: list[T]

    def sizes(self) -> dict[str, int]:
        """Return the size of each part, by name (the shape of ``DataReadyEvent.documents``)."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def __repr__(self) -> str:
        return f"Splits({self.sizes()})"


def default_corpus_files() -> list[Path]:
    """Return the ``.py`` sources of the running interpreter's standard library, sorted.

    Tests are left out (``test/``, ``tests/``, ``idlelib/idle_test``, ``test_*.py``), and so are
    ``site-packages``, ``dist-packages``, caches and hidden directories.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _skip_dir(dirpath, d) and d not in _STDLIB_TEST_DIRS]
        for name in filenames:
            if name.endswith(".py") and not name.startswith(("test_", ".")):
                found.append(Path(dirpath, name))
    return sorted(found)


def _skip_dir(parent: str, name: str) -> bool:
    return name.startswith(".") or name in JUNK_DIRS or os.path.exists(os.path.join(parent, name, "pyvenv.cfg"))


def corpus_files(paths: Sequence[Path]) -> list[Path]:
    """Return the files that ``paths`` name: files as given, directories walked, sorted within each.

    Hidden entries, junk directories, binary files and symlinks that lead out of a directory are
    left out. Raise :class:`TrainInputError` for a path that does not exist.
    """
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise TrainInputError(f"data file not found: {display_name(str(path))} (check the path given to --data)")
        if path.is_dir():
            files += _walk(path)
        elif path.is_file():
            files.append(path)
        else:
            # A FIFO would block for ever and /dev/zero never ends: only regular files are data.
            raise TrainInputError(
                f"--data {display_name(str(path))} is not a regular file or directory (give files of text or rows)"
            )
    return files


def _walk(root: Path) -> list[Path]:
    real_root = root.resolve()
    found: list[Path] = []
    # os.walk does not descend into symlinked directories; a symlinked file counts only if it stays inside.
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(dirpath, d))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.startswith(".") or path.suffix.lower() in BINARY_SUFFIXES:
                continue
            if path.is_symlink() and not _stays_inside(path, real_root):
                continue
            if path.is_file():
                found.append(path)
    return found


def _stays_inside(link: Path, real_root: Path) -> bool:
    """Whether the symlink ``link`` leads to a place inside ``real_root``; a loop of links leads nowhere."""
    try:
        return link.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a loop, 3.13 OSError (ELOOP)
        return False


def read_documents(paths: Sequence[Path], report: ReadReport | None = None) -> Iterator[Document]:
    """Yield the documents of ``paths`` (files or directories, walked in sorted order).

    A text file (``.txt``, ``.md``, ``.py``, ``.rst`` or any other) is one document; a ``.jsonl``
    file gives one document per row's ``"text"``; ``.json``, ``.csv`` and ``.parquet`` files are
    loaded with ``datasets`` and give one document per ``text`` value. A text file that is not
    UTF-8 (or holds NUL bytes), or is over :data:`MAX_FILE_BYTES`, is skipped and recorded in
    ``report``. Raise :class:`TrainInputError` for a missing path, a bad JSONL row or a data
    file without a ``text`` column.
    """
    report = report if report is not None else ReadReport()
    for path in corpus_files(paths):
        report.files += 1
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            yield from _jsonl_documents(path)
        elif suffix in DATASET_BUILDERS:
            yield from _dataset_documents(path, DATASET_BUILDERS[suffix])
        else:
            text = _read_text(path, report)
            if text is not None:
                yield Document(text, str(path))


def _read_text(path: Path, report: ReadReport) -> str | None:
    name = display_name(str(path))
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            report.too_large.append(name)
            return None
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # a file that grows while it is read stops at the cap
    except OSError as exc:
        raise TrainInputError(f"cannot read data file {name}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        report.too_large.append(name)
        return None
    if b"\0" in data:
        report.not_utf8.append(name)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        report.not_utf8.append(name)
        return None


def jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    """Yield ``(line number, parsed JSON value)`` for each non-blank line of a JSONL file.

    Raise :class:`TrainInputError` naming the file and line for a line that is not UTF-8 or not JSON.
    """
    return read_jsonl(path, error=TrainInputError)


def _jsonl_documents(path: Path) -> Iterator[Document]:
    for number, row in jsonl_rows(path):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise TrainInputError(
                f'{display_name(str(path))}:{number}: expected an object with a string "text" field, '
                'like {"text": "..."}'
            )
        yield Document(row["text"], f"{path}:{number}")


def load_data_file(path: Path, builder: str) -> object:
    """Load a local ``.json``, ``.csv`` or ``.parquet`` file with ``datasets``; return its train split.

    Raise :class:`TrainInputError` naming the file when ``datasets`` cannot load it.
    """
    import datasets  # heavy: imported only when a data file needs it

    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many unrelated types for a malformed file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise TrainInputError(f"cannot load {display_name(str(path))} as {builder}: {display_name(reason)}") from None


def _dataset_documents(path: Path, builder: str) -> Iterator[Document]:
    dataset = load_data_file(path, builder)
    columns = getattr(dataset, "column_names", None) or []
    if "text" not in columns:
        shown = ", ".join(display_name(str(c)) for c in columns) or "none"
        raise TrainInputError(f'{display_name(str(path))}: no "text" column (columns: {shown})')
    for index, text in enumerate(dataset["text"]):  # type: ignore[index]
        if text is None:
            continue  # an empty CSV cell
        if not isinstance(text, str):
            raise TrainInputError(f'{display_name(str(path))}: row {index + 1}: "text" is not a string')
        yield Document(text, f"{path}:{index + 1}")


def text_hash(text: str) -> bytes:
    """Return the sha256 digest of ``text`` as UTF-8 (lone surrogates kept, so no text fails)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def split_by_hash(items: Sequence[T], *, text: Callable[[T], str]) -> Splits[T]:
    """Split ``items`` 80/10/10 into train, validation and test by the sha256 of ``text(item)``.

    The bucket is the hash modulo 10: 0-7 train, 8 validation, 9 test. Which part an item lands
    in depends only on its text, never on the order or the other items, and each part keeps the
    input order. One rule for tiny inputs: with at least 3 items, an empty train part takes the
    lowest-hash item of the larger other part, and then an empty validation part takes the
    lowest-hash item of test (or of train when test is empty), so both always hold something.
    """
    parts: tuple[list[tuple[bytes, int]], ...] = ([], [], [])
    for index, item in enumerate(items):
        digest = text_hash(text(item))
        bucket = int.from_bytes(digest, "big") % 10
        parts[0 if bucket < 8 else 1 if bucket == 8 else 2].append((digest, index))
    train, validation, test = parts
    if len(items) >= 3:
        if not train:
            _move_lowest(max(validation, test, key=len), train)
        if not validation:
            _move_lowest(test if test else train, validation)
    return Splits(*([items[index] for _, index in sorted(part, key=lambda p: p[1])] for part in parts))


def _move_lowest(donor: list[tuple[bytes, int]], taker: list[tuple[bytes, int]]) -> None:
    lowest = min(donor)
    donor.remove(lowest)
    taker.append(lowest)


def corpus_fingerprint(paths: Sequence[Path]) -> str:
    """Return a sha256 hex digest of the files ``paths`` name: their paths, sizes and modification times.

    It keys a disk cache and is printed as the data hash in the model card; it changes when a file
    is added, removed, resized or touched, and when :data:`CORPUS_FORMAT` changes. Raise
    :class:`TrainInputError` for a missing path.
    """
    digest = hashlib.sha256(f"routeshell-corpus-{CORPUS_FORMAT}\n".encode())
    for path in corpus_files(paths):
        try:
            info = path.stat()
        except OSError:
            continue  # vanished since the walk: it will be missing from the read as well
        name = os.fsencode(path.absolute())
        digest.update(len(name).to_bytes(4, "big") + name + f"\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()
