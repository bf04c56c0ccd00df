"""Fixture workspaces: a list of files described as data, made real in a directory, and read back.

A fixture is what one planner case runs against: every file's workspace-relative path, its size
and age, its text (or binary filler), and its tags. :func:`materialize` writes it under a root
with modification times counted back from the moment it is made, so that relative dates in a
plan (``30d``) select the same files on any day. :func:`snapshot` reads a tree back as names,
contents and tags, which is how the evaluation compares what a plan did with what it should do.

Names are ``str`` spelled as the workspace spells them (a byte that is not UTF-8 is a
``\\udc80``-``\\udcff`` escape), so a fixture round-trips through JSON unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.files.tags import XATTR as TAG_XATTR
from engine.files.tags import check_tag, decode_tags, front_matter_tags, is_markdown
from engine.names import display_line, quoted_name

DAY = 86400.0
#: Binary filler past this many bytes is a hole: a fixture may hold a 40 MB video for a size filter
#: without writing 40 MB.
DENSE_BYTES = 64 * 1024
#: A snapshot hashes at most this much of a file; past it, the size and the head decide.
HASHED_BYTES = 1 << 20


class FixtureError(ValueError):
    """A fixture that cannot be made: a bad path, or a file where a directory must go."""


#: The longest name (one path part) Linux file systems take, in bytes.
NAME_MAX = 255


@dataclass(frozen=True)
class FileSpec:
    """One entry of a fixture.

    ``text``: the file's text (UTF-8); ``None`` means binary filler of ``size`` bytes, unless
    ``members`` is set, which makes the file a real archive (zip or tar.gz, by its name) holding
    those ``name -> text`` members. ``kind`` ``dir`` is an empty directory.
    ``tags`` go into the front matter of a Markdown file (written into ``text`` by the generator)
    or into the ``user.xdg.tags`` attribute of any other file.
    """

    path: str
    size: int = 0
    age_days: float = 0.0
    text: str | None = None
    tags: tuple[str, ...] = ()
    members: Mapping[str, str] | None = None
    kind: str = "file"

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"path": self.path, "age_days": round(self.age_days, 4)}
        if self.kind != "file":
            row["kind"] = self.kind
        if self.text is not None:
            row["text"] = self.text
        elif self.members is not None:
            row["members"] = dict(self.members)
        else:
            row["size"] = self.size
        if self.tags:
            row["tags"] = list(self.tags)
        return row

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> FileSpec:
        return cls(
            path=str(row["path"]),
            size=int(row.get("size", 0)),
            age_days=float(row.get("age_days", 0.0)),
            text=row.get("text"),
            tags=tuple(row.get("tags", ())),
            members=row.get("members"),
            kind=str(row.get("kind", "file")),
        )


@dataclass(frozen=True)
class Fixture:
    """A whole workspace as data."""

    files: tuple[FileSpec, ...]
    dirs: tuple[str, ...] = field(default=())

    def to_json(self) -> list[dict[str, Any]]:
        return [spec.to_json() for spec in self.files]

    @classmethod
    def from_json(cls, rows: Iterable[Mapping[str, Any]]) -> Fixture:
        return cls(tuple(FileSpec.from_json(row) for row in rows))

    def paths(self) -> list[str]:
        return [spec.path for spec in self.files]


def fixture_problem(fixture: Fixture) -> str | None:
    """Why ``fixture`` cannot be written as a workspace (a name no file system takes, text that is
    not text, a path that is both a file and a folder, a time that is not one), or None."""
    kinds: dict[str, str] = {}
    for spec in fixture.files:
        shown = display_line(spec.path)[:120]
        parts = spec.path.split("/")
        if not _encodable(spec.path) or "" in parts or any(len(os.fsencode(part)) > NAME_MAX for part in parts):
            return f"{shown}: not a file name (an empty part, a part over {NAME_MAX} bytes, or not text)"
        if spec.path in kinds:
            return f"{shown} is listed twice"
        kinds[spec.path] = spec.kind
        if not math.isfinite(spec.age_days):
            return f"{shown}: its age is not a number of days"
        # Tags and archive members are written as strict UTF-8; a file's text may carry raw bytes.
        strict = [*spec.tags, *(spec.members or {}), *(spec.members or {}).values()]
        if not _encodable(spec.text or "") or not all(_encodable(text, "strict") for text in strict):
            return f"{shown}: its text, tags or members are not text (a lone surrogate)"
        for tag in spec.tags:
            problem = check_tag(tag)
            if problem is not None:  # a tag with a comma, say, would be two tags on the disk
                return f"{shown}: the tag {quoted_name(tag)} {problem}"
        # A Markdown file's tags are those of its front matter: tags the text does not hold would be
        # shown to the planner and be on no file.
        if spec.tags and is_markdown(spec.path):
            held = front_matter_tags((spec.text or "").encode("utf-8", "surrogateescape"))
            if set(held) != set(spec.tags):
                listed = display_line(", ".join(spec.tags))[:120]
                return (f"{shown}: a Markdown file's tags are those of its front matter: give them in its text "
                        f"(---\\ntags: [{listed}]\\n---), or leave them out")  # fmt: skip
    for path in kinds:
        for depth in range(1, path.count("/") + 1):
            parent = path.rsplit("/", depth)[0]
            if kinds.get(parent) == "file":
                return f"{display_line(parent)[:120]} is a file and holds {display_line(path)[:120]}"
    return None


def _encodable(text: str, errors: str = "surrogateescape") -> bool:
    """Whether ``text`` can be written as UTF-8 (by default with lone surrogates only as the bytes
    ``surrogateescape`` gives them)."""
    try:
        text.encode("utf-8", errors)
    except UnicodeEncodeError:
        return False
    return True


def archive_bytes(name: str, members: Mapping[str, str]) -> bytes:
    """The bytes of a real archive named ``name`` (``.zip``, else ``.tar.gz``) holding ``members``."""
    buffer = io.BytesIO()
    if name.lower().endswith(".zip"):
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, text in sorted(members.items()):
                info = zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0))
                archive.writestr(info, text.encode())
    else:
        # gzip's header holds a time: 0, so that one fixture makes the same bytes every time.
        with (
            gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
            tarfile.open(fileobj=packed, mode="w") as archive,
        ):
            for member, text in sorted(members.items()):
                data = text.encode()
                entry = tarfile.TarInfo(member)
                entry.size, entry.mtime, entry.mode = len(data), 1704067200, 0o644
                archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def filler(path: str, size: int) -> bytes:
    """The dense head of binary filler: bytes that depend on the path, so no two files are equal."""
    seed = hashlib.sha256(os.fsencode(path)).digest()
    head = min(size, DENSE_BYTES)
    return (seed * (head // len(seed) + 1))[:head]


def _checked(root: Path, path: str) -> Path:
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\0" in path:
        raise FixtureError(f"{path!r} is not a relative path inside the workspace")
    return root.joinpath(*parts)


def materialize(fixture: Fixture, root: Path, now: float) -> None:
    """Write ``fixture`` under ``root`` (which must exist), with times counted back from ``now``."""
    directories: dict[Path, float] = {}
    for spec in fixture.files:
        target = _checked(root, spec.path)
        when = now - spec.age_days * DAY
        if spec.kind == "dir":
            os.makedirs(os.fsencode(target), exist_ok=True)
            directories[target] = when
            continue
        os.makedirs(os.fsencode(target.parent), exist_ok=True)
        with open(os.fsencode(target), "wb") as handle:
            if spec.text is not None:
                handle.write(spec.text.encode("utf-8", "surrogateescape"))
            elif spec.members is not None:
                handle.write(archive_bytes(spec.path, spec.members))
            else:
                handle.write(filler(spec.path, spec.size))
                if spec.size > DENSE_BYTES:
                    handle.truncate(spec.size)
        if spec.tags and not is_markdown(spec.path):
            os.setxattr(os.fsencode(target), TAG_XATTR, ",".join(spec.tags).encode())
        os.utime(os.fsencode(target), (when, when))
    # Directory times last: writing a file into a directory changes its mtime.
    for target, when in directories.items():
        os.utime(os.fsencode(target), (when, when))


@dataclass(frozen=True)
class Entry:
    """One path of a snapshot: what it is, a digest of its content, and its tags."""

    kind: str
    digest: str = ""
    tags: tuple[str, ...] = ()


def _head(handle: io.BufferedReader, size: int) -> bytes:
    """The first :data:`HASHED_BYTES` of the file, unless a hole ends them: then what comes before
    the hole (a hole holds nothing but zeros; a large fixture file is mostly one, and is not read)."""
    want = min(size, HASHED_BYTES)
    fd = handle.fileno()
    try:
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:  # a filesystem that cannot say
        hole = want
    if hole < want:
        try:
            data = os.lseek(fd, hole, os.SEEK_DATA)
        except OSError:  # ENXIO: holes only, from there to the end
            data = size
        if data < want:
            hole = want  # more data within the head: read it all
    os.lseek(fd, 0, os.SEEK_SET)  # (nothing was read through the buffer yet)
    return handle.read(min(hole, want))


def _digest(path: bytes, size: int) -> str:
    with open(path, "rb") as handle:
        head = _head(handle, size)
    if head[:2] == b"\x1f\x8b":
        # A gzip header holds the time it was written: two archives of the same files differ only
        # there, so a gzip file is compared by what it holds.
        whole = head.ljust(min(size, HASHED_BYTES), b"\0")
        try:
            with gzip.open(io.BytesIO(whole)) as unpacked:
                return "gz:" + hashlib.sha256(unpacked.read(HASHED_BYTES)).hexdigest()[:24]
        except (OSError, EOFError):
            pass
    # The size and the head less the zeros it ends with say as much as the head itself (the size
    # gives back how many bytes it has), and need no hole read.
    return hashlib.sha256(str(size).encode() + b":" + head.rstrip(b"\0")).hexdigest()[:24]


def _file_tags(path: bytes, name: str, data: bytes | None) -> tuple[str, ...]:
    if is_markdown(name) and data is not None:
        return tuple(front_matter_tags(data))
    try:
        return tuple(decode_tags(os.getxattr(path, TAG_XATTR, follow_symlinks=False)))
    except OSError:
        return ()


def _walk(root: bytes, prefix: str) -> Iterator[tuple[str, bytes, os.DirEntry[bytes]]]:
    with os.scandir(root) as entries:
        listed = sorted(entries, key=lambda entry: entry.name)
    for entry in listed:
        name = os.fsdecode(entry.name)
        relative = f"{prefix}{name}"
        yield relative, entry.path, entry
        if entry.is_dir(follow_symlinks=False) and name not in (".routeshell", ".git"):
            yield from _walk(entry.path, f"{relative}/")


def snapshot(root: Path) -> dict[str, Entry]:
    """Every path under ``root`` (not ``.routeshell``, nor what is inside ``.git``) with its kind, digest and tags."""
    found: dict[str, Entry] = {}
    for relative, path, entry in _walk(os.fsencode(root), ""):
        if relative == ".routeshell":
            continue
        if entry.is_symlink():
            found[relative] = Entry("link", os.fsdecode(os.readlink(path)))
        elif entry.is_dir(follow_symlinks=False):
            found[relative] = Entry("dir")
        elif entry.is_file(follow_symlinks=False):
            size = entry.stat(follow_symlinks=False).st_size
            head = None
            if is_markdown(relative):
                with open(path, "rb") as handle:
                    head = handle.read(HASHED_BYTES)
            found[relative] = Entry("file", _digest(path, size), _file_tags(path, relative, head))
        else:
            found[relative] = Entry("other")
    return found


def differences(got: Mapping[str, Entry], want: Mapping[str, Entry], limit: int = 8) -> list[str]:
    """What differs between two snapshots, one short line per path, at most ``limit`` lines."""
    lines: list[str] = []
    for path in sorted(set(got) | set(want)):
        if path not in want:
            lines.append(f"unexpected {path}")
        elif path not in got:
            lines.append(f"missing {path}")
        elif got[path] != want[path]:
            what = "tags" if got[path].digest == want[path].digest and got[path].kind == want[path].kind else "content"
            lines.append(f"{what} differ at {path}")
        if len(lines) >= limit:
            break
    return lines


def changed_paths(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> set[str]:
    """Paths that were added, removed or changed between two snapshots."""
    return {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
