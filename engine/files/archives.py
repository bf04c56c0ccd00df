"""Archives for the plan ops: write a zip, tar.gz or tar.xz of workspace paths, check one, extract one.

Every entry is checked before a byte is extracted; extraction then creates each entry by
descriptor and counts the bytes it really writes, so a header that lies cannot unpack more.
"""

from __future__ import annotations

import lzma
import os
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from itertools import takewhile
from typing import IO, Literal

from engine.names import quoted_name
from engine.workspace.sandbox import (
    MAX_NAME,
    MAX_PATH,
    SandboxError,
    Workspace,
    check_relpath,
    file_kind,
    protected_part,
)

FORMATS = ("zip", "tar.gz", "tar.xz")
_CHUNK = 1 << 18
_RATIO_FLOOR = 64 << 20  # a small archive may compress as well as it likes
_ZIP_UTF8, _ZIP_ENCRYPTED, _ZIP_UNIX = 0x800, 0x1, 3  # flag bits, and the system whose modes zip keeps
_MAX_MTIME = 253402300799.0  # the last second of year 9999
_DOS_TIMES = (315619200.0, 4354646400.0)  # 1980-01-02 and 2107-12-30: what a zip date can hold in any zone
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TAR_REFUSED = {tarfile.LNKTYPE: "hard link", tarfile.CHRTYPE: "character device", tarfile.FIFOTYPE: "FIFO"}
_TAR_REFUSED[tarfile.BLKTYPE] = "block device"
# What damaged data raises (NotImplementedError: a zip compression method zipfile lacks).
_LIBRARY_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, lzma.LZMAError, zlib.error)
_READ_ERRORS = (*_LIBRARY_ERRORS, struct.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError)


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may unpack to; the unpacked/packed ratio counts only above 64 MiB unpacked."""

    max_bytes: int = 1 << 30
    max_entries: int = 10_000
    max_ratio: int = 200


class ArchiveError(SandboxError):
    """An archive that cannot be written, read or extracted; one line naming the entry and the rule."""


@dataclass(frozen=True)
class Member:
    """One entry as extraction would make it: normalised name, "file", "dir" or "link", sanitised mode."""

    name: str
    kind: str
    size: int
    mode: int
    mtime: float
    target: str = ""


@dataclass(frozen=True)
class _Raw:  # an entry as the archive states it, before any check, with what opens its data
    name: str
    kind: str  # "file", "dir", "link", or what is refused: "hard link", "FIFO", ...
    size: int
    mode: int
    mtime: float
    target: str
    open: Callable[[], IO[bytes] | None]


def archive_format(name: str) -> str | None:
    """Return "zip", "tar.gz" or "tar.xz" for a file name by its suffix (any case), else None."""
    return next((fmt for fmt in FORMATS if name.lower().endswith("." + fmt)), None)


def _refuse(name: str, rule: str) -> ArchiveError:
    shown = name if len(name) <= 80 else name[:60] + "..."
    return ArchiveError(f"archive entry {quoted_name(shown)}: {rule}")


class _ByteNameInfo(zipfile.ZipInfo):
    """A zip entry whose name, if not UTF-8 (surrogateescape), is stored as its bytes, as Info-ZIP does."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        raw = os.fsencode(self.filename)
        try:
            utf8 = not raw.isascii() and bool(raw.decode("utf-8"))
        except UnicodeDecodeError:
            utf8 = False
        return raw, (self.flag_bits | _ZIP_UTF8) if utf8 else (self.flag_bits & ~_ZIP_UTF8)


def write_archive(ws: Workspace, members: list[str], out_fd: int, fmt: str) -> None:
    """Write an archive of the workspace paths ``members`` to the open, empty file ``out_fd``.

    Directories are taken whole (leaving out ``.git`` and the state directory; naming one raises),
    symlinks are stored as symlinks, and arc names are the workspace-relative paths in sorted
    order; the archive itself is left out. A FIFO, socket or device raises :class:`ArchiveError`.
    ``out_fd`` stays open.
    """
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown archive format {fmt!r}; use one of {', '.join(FORMATS)}")
    paths, own = _collect(ws, members), os.fstat(out_fd)
    with os.fdopen(os.dup(out_fd), "wb") as out, _archive(out, fmt, "w") as archive:
        for path in paths:
            _add(ws, path, archive, (own.st_dev, own.st_ino))


def _archive(file: IO[bytes], fmt: str, mode: Literal["r", "w"]) -> zipfile.ZipFile | tarfile.TarFile:
    if fmt == "zip":
        return zipfile.ZipFile(file, mode)
    # A name that is not UTF-8 keeps its bytes (surrogateescape), in pax headers as in plain ones.
    if mode == "r":
        read_mode: Literal["r:gz", "r:xz"] = "r:gz" if fmt == "tar.gz" else "r:xz"
        return tarfile.open(fileobj=file, mode=read_mode, encoding="utf-8", errors="surrogateescape")
    if fmt == "tar.gz":
        return tarfile.open(fileobj=file, mode="w:gz", compresslevel=6, encoding="utf-8", errors="surrogateescape")
    return tarfile.open(fileobj=file, mode="w:xz", encoding="utf-8", errors="surrogateescape")


def _collect(ws: Workspace, members: list[str]) -> list[str]:
    found: set[str] = set()
    for member in members:
        path = check_relpath(member)
        protected = protected_part(path.split("/"))
        if protected is not None:
            raise ArchiveError(f"{quoted_name(path)}: {protected}/ is never archived")
        info = ws.lstat(path)
        if info is None:
            raise ArchiveError(f"{quoted_name(path)}: no such file or directory in the workspace")
        if path != ".":
            found.add(path)
        if stat.S_ISDIR(info.st_mode):
            found.update(child for child in ws.walk(path) if protected_part(child.split("/")) is None)
    return sorted(found, key=lambda p: p.split("/"))


def _add(ws: Workspace, path: str, archive: zipfile.ZipFile | tarfile.TarFile, own: tuple[int, int]) -> None:
    add = partial(_add_zip, archive) if isinstance(archive, zipfile.ZipFile) else partial(_add_tar, archive)
    try:
        with ws.parent(path) as (parent_fd, name):
            info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode) or stat.S_ISDIR(info.st_mode):
                add(path, info, os.readlink(name, dir_fd=parent_fd) if stat.S_ISLNK(info.st_mode) else "", -1)
            elif stat.S_ISREG(info.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
                try:
                    info = os.fstat(fd)  # the file opened, not the name looked at before
                    if not stat.S_ISREG(info.st_mode):
                        raise ArchiveError(f"{quoted_name(path)}: changed while being archived; try again")
                    if (info.st_dev, info.st_ino) != own:  # the archive, when written inside what it holds
                        add(path, info, "", fd)
                finally:
                    os.close(fd)
            else:
                raise ArchiveError(f"{quoted_name(path)}: cannot archive a {file_kind(info.st_mode)}")
    except OSError as exc:
        raise ArchiveError(f"{quoted_name(path)}: cannot archive: {exc.strerror or exc}") from None


def _add_zip(zipped: zipfile.ZipFile, path: str, info: os.stat_result, target: str, fd: int) -> None:
    is_dir = stat.S_ISDIR(info.st_mode)
    year, month, day, hour, minute, second = time.localtime(min(max(info.st_mtime, _DOS_TIMES[0]), _DOS_TIMES[1]))[:6]
    entry = _ByteNameInfo(path + "/" if is_dir else path, (year, month, day, hour, minute, second))
    # Info-ZIP keeps the unix type and permission bits in the high half of the external attributes.
    entry.external_attr = (stat.S_IFMT(info.st_mode) | (info.st_mode & 0o777)) << 16 | (0x10 if is_dir else 0)
    if is_dir or stat.S_ISLNK(info.st_mode):
        zipped.writestr(entry, os.fsencode(target))
        return
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.file_size = info.st_size  # decides ZIP64 before the data is written
    with zipped.open(entry, "w") as dst:
        left = info.st_size
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                raise ArchiveError(f"{quoted_name(path)}: shrank while being archived; try again")
            dst.write(chunk)
            left -= len(chunk)


def _add_tar(tarred: tarfile.TarFile, path: str, info: os.stat_result, target: str, fd: int) -> None:
    entry = tarfile.TarInfo(path)
    entry.mtime, entry.mode = int(info.st_mtime), info.st_mode & 0o777
    if stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode):
        entry.type, entry.linkname = (tarfile.DIRTYPE if stat.S_ISDIR(info.st_mode) else tarfile.SYMTYPE), target
        tarred.addfile(entry)
        return
    entry.size = info.st_size
    # tarfile copies exactly ``size`` bytes in small chunks, and raises if the file shrank.
    with open(fd, "rb", closefd=False) as src:
        tarred.addfile(entry, src)


@contextmanager
def _damage(fmt: str, entry: str = "") -> Iterator[None]:
    """Turn what the archive libraries raise on damaged data into one :class:`ArchiveError` line."""
    try:
        yield
    except _READ_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        at = f" (at entry {quoted_name(entry)})" if entry else ""
        raise ArchiveError(f"the archive is not a valid {fmt} archive{at}: {reason}") from None


@contextmanager
def _opened(in_fd: int, fmt: str) -> Iterator[Iterator[_Raw]]:
    """Open the archive through a duplicate of ``in_fd``; yield its entries, read as they come."""
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown archive format {fmt!r}; use one of {', '.join(FORMATS)}")
    with os.fdopen(os.dup(in_fd), "rb") as file:
        with _damage(fmt):
            file.seek(0)
            archive = _archive(file, fmt, "r")
        with archive:
            yield _zip_entries(archive) if isinstance(archive, zipfile.ZipFile) else _tar_entries(archive)


def _zip_entries(zipped: zipfile.ZipFile) -> Iterator[_Raw]:
    for info in zipped.infolist():
        # Without the UTF-8 flag zipfile decodes a name as cp437, which maps every byte: undo it.
        name = info.orig_filename if info.flag_bits & _ZIP_UTF8 else os.fsdecode(info.orig_filename.encode("cp437"))
        if info.flag_bits & _ZIP_ENCRYPTED:
            raise _refuse(name, "is encrypted; encrypted archives are not supported")
        unix = info.external_attr >> 16 if info.create_system == _ZIP_UNIX else 0
        kind = "dir" if name.endswith("/") or stat.S_ISDIR(unix) else "link" if stat.S_ISLNK(unix) else ""
        kind = kind or ("file" if stat.S_IFMT(unix) in (0, stat.S_IFREG) else file_kind(unix))
        # A target too long to be one is left empty, which the checks refuse, and never read.
        target = os.fsdecode(zipped.read(info)) if kind == "link" and info.file_size <= MAX_PATH else ""
        mtime = time.mktime((*info.date_time, 0, 0, -1))  # a zip holds local time; years 1980 to 2107
        yield _Raw(name, kind, info.file_size, unix, mtime, target, partial(zipped.open, info))


def _tar_entries(tarred: tarfile.TarFile) -> Iterator[_Raw]:
    for member in tarred:
        kind = "file" if member.isreg() else "dir" if member.isdir() else "link" if member.issym() else ""
        kind = kind or _TAR_REFUSED.get(member.type, f"entry of tar type {member.type!r}")
        opener = partial(tarred.extractfile, member)
        yield _Raw(member.name, kind, member.size, member.mode, member.mtime, member.linkname, opener)


def read_members(in_fd: int, fmt: str, limits: ArchiveLimits) -> list[Member]:
    """List and check the archive open as ``in_fd`` without extracting it; return its members.

    Raises :class:`ArchiveError` for a name that is absolute, empty, too long, climbs with ``..``,
    holds NUL or lies in ``.git`` or the state directory; a symlink out of the extraction directory;
    anything but a file, directory or symlink; a name twice, or beneath a file or symlink; more
    than ``max_entries``, ``max_bytes`` declared or ``max_ratio``; and a damaged archive.
    """
    with _opened(in_fd, fmt) as entries:
        return [member for member, _ in _checked(entries, fmt, limits, os.fstat(in_fd).st_size)]


def _checked(entries: Iterator[_Raw], fmt: str, limits: ArchiveLimits, packed: int) -> list[tuple[Member, _Raw]]:
    result: list[tuple[Member, _Raw]] = []
    kinds: dict[str, str] = {}
    total = 0
    with _damage(fmt):
        for index, raw in enumerate(entries):
            if index >= limits.max_entries:
                raise _refuse(raw.name, f"the archive holds more than {limits.max_entries} entries (the limit)")
            if raw.kind not in ("file", "dir", "link"):
                raise _refuse(raw.name, f"is a {raw.kind}; only files, directories and symlinks are extracted")
            name = _normalise(raw.name)
            if name == "." and raw.kind == "dir":
                continue  # "./" names the extraction directory itself
            if name == ".":
                raise _refuse(raw.name, "the name is empty")
            if name in kinds:
                raise _refuse(name, "appears twice in the archive")
            if raw.kind == "link":
                _check_target(name, raw.target)
            kinds[name] = raw.kind
            mtime = float(raw.mtime) if 0 <= raw.mtime <= _MAX_MTIME else 0.0
            mode = 0o777 if raw.kind == "link" else 0o755 if raw.kind == "dir" or raw.mode & 0o111 else 0o644
            size, target = (raw.size, "") if raw.kind == "file" else (0, raw.target if raw.kind == "link" else "")
            member = Member(name, raw.kind, size, mode, mtime, target)
            total += member.size
            if total > limits.max_bytes:
                raise _refuse(name, f"the archive unpacks to more than {limits.max_bytes} bytes (the limit)")
            result.append((member, raw))
    for name in kinds:
        parts = name.split("/")
        for above in ("/".join(parts[:depth]) for depth in range(1, len(parts))):
            if kinds.get(above, "dir") != "dir":
                what = {"link": "symlink"}.get(kinds[above], "file")
                raise _refuse(name, f"lies beneath {quoted_name(above)}, which is a {what} in the archive")
    if total > _RATIO_FLOOR and total > limits.max_ratio * max(packed, 1):
        biggest = max((member for member, _ in result), key=lambda m: m.size)
        ratio = f"more than {limits.max_ratio} times its size"
        raise _refuse(biggest.name, f"the archive unpacks to {total} bytes from {packed}, {ratio}; a compression bomb")
    return result


def _normalise(raw: str) -> str:
    if raw == "" or "\0" in raw:
        raise _refuse(raw, "the name is empty or holds a NUL byte")
    if raw.startswith("/"):
        raise _refuse(raw, "absolute name; archive entries must be relative")
    encoded = os.fsencode(raw)  # the decoders leave only surrogates that carry bytes
    if len(encoded) > MAX_PATH:
        raise _refuse(raw, f"name longer than {MAX_PATH} bytes")
    parts: list[str] = []
    # Escaped bytes that spell valid UTF-8 name the same file as the text: one spelling per name.
    for part in os.fsdecode(encoded).split("/"):
        if part == ".." and not parts:
            raise _refuse(raw, "'..' climbs out of the extraction directory")
        if part == "..":
            parts.pop()
        elif len(os.fsencode(part)) > MAX_NAME:
            raise _refuse(raw, f"a name in the path is longer than {MAX_NAME} bytes")
        elif part not in ("", "."):
            parts.append(part)
    protected = protected_part(parts)
    if protected is not None:
        raise _refuse(raw, f"{protected}/ is protected; an archive cannot write into it")
    return "/".join(parts) or "."


def _check_target(name: str, target: str) -> None:
    if target.startswith("/"):
        raise _refuse(name, f"symlink to the absolute path {quoted_name(target)}")
    if target == "" or "\0" in target or len(os.fsencode(target)) > MAX_PATH:
        raise _refuse(name, f"symlink target is empty, holds a NUL byte or is longer than {MAX_PATH} bytes")
    parts = [part for part in target.split("/") if part not in ("", ".")]
    climbs = sum(1 for _ in takewhile(lambda part: part == "..", parts))
    # After a name, ".." is resolved by the kernel through whatever that name is (perhaps another
    # symlink in the archive), not by the text: only a leading ".." can be checked here.
    if ".." in parts[climbs:]:
        raise _refuse(name, f"symlink target {quoted_name(target)} has '..' after a name; only leading '..' is allowed")
    if climbs > name.count("/"):
        raise _refuse(name, f"symlink to {quoted_name(target)} leads outside the extraction directory")
    if protected_part(parts[climbs:]) is not None:
        raise _refuse(name, f"symlink to {quoted_name(target)} leads into a protected directory")


def extract_archive(in_fd: int, fmt: str, dest_fd: int, limits: ArchiveLimits) -> list[str]:
    """Extract the archive open as ``in_fd`` into the empty directory ``dest_fd``; return its top-level names.

    Every check of :func:`read_members` comes first; then each entry is created by descriptor, never
    through a symlink, with a sanitised mode and its mtime, and synced. Past ``max_bytes`` or an
    entry's declared size, counted as written, it stops. On any error it raises :class:`ArchiveError`
    and leaves what it made: the caller removes the partly filled directory.
    """
    try:
        if os.listdir(dest_fd):
            raise ArchiveError("the extraction directory is not empty; extract into a new directory")
    except OSError as exc:
        raise ArchiveError(f"cannot read the extraction directory: {exc.strerror}") from None
    with _opened(in_fd, fmt) as entries:
        checked = _checked(entries, fmt, limits, os.fstat(in_fd).st_size)
        written, current = 0, ""
        dir_mtimes: dict[str, float | None] = {}  # None: made for the entries beneath it
        try:
            for member, raw in checked:
                current = member.name
                parent, _, leaf = member.name.rpartition("/")
                parts = parent.split("/") if parent else []
                for depth in range(1, len(parts) + 1):
                    dir_mtimes.setdefault("/".join(parts[:depth]), None)
                parent_fd = _open_dir(dest_fd, parts)
                try:
                    if member.kind == "dir":
                        os.close(_open_dir(parent_fd, [leaf]))
                        dir_mtimes[member.name] = member.mtime
                    elif member.kind == "link":
                        os.symlink(member.target, leaf, dir_fd=parent_fd)
                        os.utime(leaf, (member.mtime, member.mtime), dir_fd=parent_fd, follow_symlinks=False)
                    else:
                        written += _extract_file(raw, member, (parent_fd, leaf), fmt, limits.max_bytes - written)
                finally:
                    os.close(parent_fd)
            # Modes and mtimes last: creating an entry in a directory changes the directory.
            for current in sorted(dir_mtimes, key=lambda n: n.count("/"), reverse=True):
                fd = _open_dir(dest_fd, current.split("/"))
                try:
                    os.fchmod(fd, 0o755)
                    mtime = dir_mtimes[current]
                    if mtime is not None:
                        os.utime(fd, (mtime, mtime))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.fsync(dest_fd)
        except OSError as exc:
            raise _refuse(current, f"cannot extract: {exc.strerror or exc}") from None
    return sorted({member.name.split("/")[0] for member, _ in checked})


def _open_dir(base_fd: int, parts: list[str]) -> int:
    """Open the directory ``parts`` beneath ``base_fd``, making what is missing, never through a symlink."""
    fd = os.dup(base_fd)
    for part in parts:
        try:
            # One made for an earlier entry is reused: the open below refuses anything but a directory.
            with suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = inner
    return fd


def _extract_file(raw: _Raw, member: Member, where: tuple[int, str], fmt: str, room: int) -> int:
    """Write a file entry to ``where`` (a directory descriptor and a name); return the bytes written."""
    fd = os.open(where[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=where[0])
    try:
        written = 0
        with _damage(fmt, member.name):
            data = raw.open()
        if data is None:
            raise _refuse(member.name, "the archive holds no data for this file")
        with data:
            while True:
                with _damage(fmt, member.name):
                    chunk = data.read(_CHUNK)
                written += len(chunk)
                if written > member.size:
                    raise _refuse(member.name, f"holds more than the {member.size} bytes its header declares")
                if written > room:
                    raise _refuse(member.name, "the archive unpacks past its limit on the total size")
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        if written < member.size:
            raise _refuse(member.name, f"holds {written} bytes, fewer than the {member.size} its header declares")
        os.fchmod(fd, member.mode)
        os.utime(fd, (member.mtime, member.mtime))
        os.fsync(fd)
    finally:
        os.close(fd)
    return written
