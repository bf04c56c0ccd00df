"""JSON from outside (a file, a model, a server) read with errors that speak of the JSON; JSONL
files read line by line with one clear error for a bad line, and an append-only, fsynced cache of
records by key that a stopped run resumes from."""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from engine.errors import RouteshellError, UsageError
from engine.names import display_name
from engine.textfile import read_capped

#: A JSONL line longer than this is refused rather than read into memory whole.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: The most bytes an :class:`AppendOnlyCache` file is read up to (hundreds of thousands of records);
#: a longer one, or one that is no regular file, is refused in one line rather than filling memory.
MAX_CACHE_BYTES = 256 * 1024 * 1024

RecordT = TypeVar("RecordT")


class NumberTooLong(ValueError):
    """JSON or TOML holds a number that cannot be read as a finite value: an integer with more
    digits than Python reads (``sys.get_int_max_str_digits()``), a number beyond the range of a
    float (``1e999``, which would be read as infinity), or ``NaN``/``Infinity`` (not JSON)."""

    def __init__(self, what: str | None = None) -> None:
        super().__init__(what or f"a number of more than {sys.get_int_max_str_digits()} digits")


class DuplicateKey(ValueError):
    """A JSON object names one key twice: which of its values is meant is not said (Python's
    reader keeps the last, other readers the first)."""


def decode_error_reason(exc: json.JSONDecodeError) -> str:
    """Return why ``exc`` is not JSON, to be followed by where (" at column 3"): some of Python's
    reasons already end in "at" ("Invalid control character at"), which would then read "at at"."""
    return exc.msg.removesuffix(" at")


def parse_json(text: str | bytes, *, unique_keys: bool = False) -> Any:
    """``json.loads(text)``, but a number it cannot hold as a finite value raises
    :class:`NumberTooLong`, which says so (Python's own error for a long integer, a bare
    ValueError, speaks of its settings; a huge float or ``NaN`` would pass unnoticed as infinity or
    NaN); bad JSON is a :class:`json.JSONDecodeError` and nesting too deep a
    :class:`RecursionError`, as ever. ``unique_keys``: an object with a key twice raises
    :class:`DuplicateKey` (a document a person wrote, where one of the two is a mistake)."""
    hook = _unique if unique_keys else None
    return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=hook)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            shown = key if len(key) <= 40 else f"{key[:36]}..."
            raise DuplicateKey(f"an object names the key {shown!r} twice, and which value is meant is not said")
        found[key] = value
    return found


def _int(digits: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(digits) - digits.startswith("-") > limit:
        raise NumberTooLong()
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 24 else f"{text[:20]}..."
        raise NumberTooLong(f"a number too large to hold ({shown})")
    return value


def _constant(name: str) -> float:
    raise NumberTooLong(f"{name}, which is not a JSON number")


def read_jsonl(path: Path, *, error: type[UsageError] = UsageError) -> Iterator[tuple[int, object]]:
    """Yield ``(line number, parsed JSON value)`` for each non-blank line of a JSONL file.

    Raise ``error`` naming the file and line for a file that cannot be read, or a line that is
    too long, not UTF-8 or not JSON.
    """
    name = display_name(str(path))
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise error(f"cannot read data file {name}: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(_raw_lines(handle, name, error), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise error(f"{name}:{number}: a line longer than {MAX_LINE_BYTES >> 20} MiB (one row per line)")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise error(f"{name}:{number}: not UTF-8 text (JSONL files must be UTF-8)") from None
            if not line.strip():
                continue
            try:
                yield number, parse_json(line)
            except json.JSONDecodeError as exc:
                raise error(f"{name}:{number}: not JSON ({decode_error_reason(exc)} at column {exc.colno})") from None
            except NumberTooLong as exc:
                raise error(f"{name}:{number}: not JSON ({exc})") from None
            except RecursionError:
                raise error(f"{name}:{number}: JSON nested too deeply") from None


def _raw_lines(handle: Any, name: str, error: type[UsageError]) -> Iterator[bytes]:
    # A file that opens can still fail to read (EIO from a failing disk, a network or FUSE file
    # system, ``/proc/self/mem``): that is the file's error, in the same words as one that does not open.
    while True:
        try:
            raw = handle.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise error(f"cannot read data file {name}: {exc.strerror or exc}") from None
        if not raw:
            return
        yield raw


def json_text(data: Any, **options: Any) -> str:
    """``json.dumps(data, **options)``, but never ``NaN`` or ``Infinity`` (not JSON: strict readers
    refuse the whole document): a number that is not finite is written as ``null``."""
    try:
        return json.dumps(data, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_finite(data), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def json_record_line(data: Mapping[str, Any]) -> bytes:
    """Return ``data`` as one UTF-8 JSON line (see :func:`json_text`); a lone surrogate is written
    as an ASCII escape."""
    text = json_text(data, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be UTF-8; the ASCII escapes read back as the same string.
        text = json_text(data)
    return (text + "\n").encode("utf-8")


class AppendOnlyCache(Generic[RecordT]):
    """A JSONL file of records by key, open for appending and locked against a second writer.

    Each record is one line, written whole, flushed and fsynced before :meth:`append` returns, so
    a process stopped at any point (Ctrl-C, ``kill -9``, a power cut) loses at most the line being
    written. ``parse`` turns a line's JSON object into a record, or None for a line that is not one
    of ours (a torn line, a foreign or outdated record): such lines are skipped, and the next
    record starts on a line of its own. Errors are ``error`` (one line); ``busy`` is the message
    when another process holds the file. Use it as a context manager.
    """

    def __init__(
        self,
        path: Path,
        parse: Callable[[dict[str, Any]], RecordT | None],
        *,
        busy: str,
        error: type[RouteshellError] = RouteshellError,
    ) -> None:
        self.path = path
        self.records: dict[str, RecordT] = {}
        self._error = error
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise error(f"cannot open {display_name(str(path))}: {err.strerror or err}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UsageError(busy) from None
        try:
            self._load(parse)
        except BaseException:
            os.close(self._fd)
            raise

    def _load(self, parse: Callable[[dict[str, Any]], RecordT | None]) -> None:
        try:
            data = read_capped(self.path, MAX_CACHE_BYTES)
        except OSError as err:
            raise self._error(f"cannot read {display_name(str(self.path))}: {err.strerror or err}") from None
        for line in data.split(b"\n"):
            if not line.strip() or len(line) > MAX_LINE_BYTES:
                continue
            try:
                value = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(value, dict) and isinstance(value.get("key"), str):
                record = parse(value)
                if record is not None:
                    self.records[value["key"]] = record
        if data and not data.endswith(b"\n"):
            # The last run died mid-line: end that line, so the next record starts on a line of its own.
            self._write(b"\n")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock and the file; a file left empty (nothing was ever recorded) is removed."""
        if self._fd >= 0:
            try:
                held = os.fstat(self._fd)
                if held.st_size == 0 and os.stat(self.path, follow_symlinks=False).st_ino == held.st_ino:
                    self.path.unlink()  # still under the lock: no other process has it open for writing
            except OSError:
                pass
            os.close(self._fd)
            self._fd = -1

    def append(self, key: str, record: RecordT, line: Mapping[str, Any]) -> None:
        """Add ``record`` under ``key``, written as ``line`` (which holds the key), on disk before this returns."""
        self._write(json_record_line(line))
        self.records[key] = record

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as err:
            raise self._error(f"cannot write {display_name(str(self.path))}: {err.strerror or err}") from None
