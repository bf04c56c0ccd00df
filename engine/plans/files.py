"""File operations by descriptor for the plan ops: never through a symlink, never replacing.

Every function takes a directory descriptor and a name in it (from ``Workspace.parent``), so a
symlink swapped in after a check cannot redirect the operation.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.names import quoted_name
from engine.workspace.sandbox import GIT_DIR, SandboxError, fsync_dir, rename_noreplace

#: One entry of a tree fingerprint: ``d`` (a directory), ``f:<sha256>``, ``l:<target>`` or ``o``.
Fingerprint = dict[str, str]

CANNOT_COPY = "cannot copy a FIFO, socket or device"


def sha(data: bytes) -> str:
    """Return the SHA-256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def dir_fd(path: Path) -> Iterator[int]:
    """Hold a descriptor of a directory the state layout names (never through a symlink)."""
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


#: The most bytes a step reads of a file it rewrites (write, append, patch, tags in front matter):
#: its old and new content are held in memory, and a preview shows their difference.
MAX_EDIT_BYTES = 64 << 20
#: How much of a file one read or write moves while copying or hashing it.
CHUNK_BYTES = 1 << 20


def _open_regular(parent_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open a regular file by name for reading, never through a symlink (a FIFO does not block)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SandboxError(f"{quoted_name(name)}: not a regular file")
    return fd, info


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):g} MB"


def read_regular(parent_fd: int, name: str, limit: int = MAX_EDIT_BYTES) -> tuple[bytes, int]:
    """Read a regular file by name in a directory, never through a symlink; return data and mode.

    A file of more than ``limit`` bytes is refused (:class:`SandboxError`) before it is read."""
    fd, info = _open_regular(parent_fd, name)
    try:
        if info.st_size > limit:
            raise SandboxError(f"{quoted_name(name)} is over {_megabytes(limit)}, too big for a step to rewrite")
        chunks, left = [], limit
        while chunk := os.read(fd, min(CHUNK_BYTES, left + 1)):
            chunks.append(chunk)
            left -= len(chunk)
            if left < 0:  # it grew while it was read
                raise SandboxError(f"{quoted_name(name)} is over {_megabytes(limit)}, too big for a step to rewrite")
        return b"".join(chunks), stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)


def hash_regular(parent_fd: int, name: str) -> str:
    """The SHA-256 of a regular file's content in hex, read a piece at a time (any size)."""
    fd, _ = _open_regular(parent_fd, name)
    try:
        digest = hashlib.sha256()
        while chunk := os.read(fd, CHUNK_BYTES):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def _data_runs(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` byte ranges of ``fd`` that hold data; the rest are holes that read as
    zeros. The whole file is one range where the filesystem cannot tell (no ``SEEK_DATA``)."""
    at = 0
    while at < size:
        try:
            start = os.lseek(fd, at, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from here to the end
                return
            yield at, size
            return
        yield start, min(end, size)
        at = end


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd`` (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def copy_regular(src_fd: int, src_name: str, dst_fd: int, dst_name: str) -> None:
    """Create ``dst_name`` (it must not exist) as a copy of the regular file ``src_name``: same
    bytes, mode and extended attributes, fsynced. A piece at a time, so a file of any size copies in
    bounded memory, and holes stay holes, so a sparse file takes no more disk in its copy."""
    source, info = _open_regular(src_fd, src_name)
    try:
        mode = stat.S_IMODE(info.st_mode)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        copy = os.open(dst_name, flags, mode, dir_fd=dst_fd)
        try:
            os.fchmod(copy, mode)
            for start, end in _data_runs(source, info.st_size):
                at = start
                while at < end:
                    chunk = os.pread(source, min(CHUNK_BYTES, end - at), at)
                    if not chunk:  # the file shrank while it was copied
                        break
                    os.lseek(copy, at, os.SEEK_SET)
                    write_all(copy, chunk)
                    at += len(chunk)
            os.ftruncate(copy, info.st_size)
            copy_xattrs(source, copy)
            os.fsync(copy)
        finally:
            os.close(copy)
    finally:
        os.close(source)


def write_new(parent_fd: int, name: str, data: bytes, mode: int) -> None:
    """Create ``name`` (it must not exist) holding ``data`` with ``mode``, fully written and fsynced."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd)
    try:
        os.fchmod(fd, mode)
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_xattrs(src: int, dst: int) -> None:
    """Give the open file ``dst`` every extended attribute of ``src`` that it may carry (tags, notes, labels).

    One that cannot be set (``security.*`` or ``trusted.*`` without the right to, or a filesystem
    without them) is left out: the content is what a copy or a rewrite must keep.
    """
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        with suppress(OSError):
            os.setxattr(dst, name, os.getxattr(src, name))


def rewrite_identity(parent_fd: int, old: str, new: str, mode: int) -> None:
    """Give ``new`` (a rewrite of ``old`` about to replace it) the owner, group and attributes of ``old``.

    A rewrite by root keeps a user's file theirs; changing the owner clears set-id bits, so the
    mode is set again after it.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    src = os.open(old, flags, dir_fd=parent_fd)
    try:
        dst = os.open(new, flags, dir_fd=parent_fd)
        try:
            info = os.fstat(src)
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                with suppress(PermissionError):
                    os.fchown(dst, info.st_uid, info.st_gid)
                    os.fchmod(dst, mode)
            copy_xattrs(src, dst)
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def is_git(name: str) -> bool:
    """Whether ``name`` names a ``.git`` (any case: on a case-insensitive filesystem ``.GIT`` is one)."""
    return name.lower() == GIT_DIR


def leave_out_git(tree: Fingerprint) -> tuple[Fingerprint, list[str]]:
    """``tree`` (a :func:`fingerprint`) less every ``.git`` beneath its top and what is in it, as
    :func:`copy_tree` copies it; and the ``.git`` left out, in order."""
    kept: Fingerprint = {}
    left: list[str] = []
    for rel, described in tree.items():
        parts = rel.split("/") if rel else []
        at = next((n for n, part in enumerate(parts) if is_git(part)), None)
        if at is None:
            kept[rel] = described
        elif at == len(parts) - 1:
            left.append(rel)
    return kept, sorted(left, key=lambda rel: rel.split("/"))


def copy_tree(src_fd: int, src_name: str, dst_fd: int, dst_name: str) -> None:
    """Copy a file, symlink or directory tree by descriptors, never following a symlink.

    Every ``.git`` in a directory is left out (a nested repository's hooks and config are code that
    ``git`` runs, and a plan never writes into a ``.git``)."""
    info = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=src_fd), dst_name, dir_fd=dst_fd)
    elif stat.S_ISREG(info.st_mode):
        copy_regular(src_fd, src_name, dst_fd, dst_name)
    elif stat.S_ISDIR(info.st_mode):
        os.mkdir(dst_name, 0o700, dir_fd=dst_fd)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        inner_src = os.open(src_name, flags, dir_fd=src_fd)
        inner_dst = os.open(dst_name, flags, dir_fd=dst_fd)
        try:
            for name in os.listdir(inner_src):
                if not is_git(name):
                    copy_tree(inner_src, name, inner_dst, name)
            os.fchmod(inner_dst, stat.S_IMODE(info.st_mode))
            os.fsync(inner_dst)
        finally:
            os.close(inner_src)
            os.close(inner_dst)
    else:
        raise SandboxError(f"{quoted_name(src_name)}: {CANNOT_COPY}")


def fingerprint(parent_fd: int, name: str) -> Fingerprint:
    """Describe the tree at ``name`` entry by entry (``""`` is the top), never following a symlink.

    Content and kind only: a changed mode or mtime loses nothing, so it is not a change here.
    """
    result: Fingerprint = {}
    _fingerprint_into(result, "", parent_fd, name)
    return result


def _fingerprint_into(result: Fingerprint, prefix: str, parent_fd: int, name: str) -> None:
    info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        result[prefix] = "l:" + os.readlink(name, dir_fd=parent_fd)
    elif stat.S_ISREG(info.st_mode):
        result[prefix] = "f:" + hash_regular(parent_fd, name)
    elif stat.S_ISDIR(info.st_mode):
        result[prefix] = "d"
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            for child in os.listdir(fd):
                _fingerprint_into(result, f"{prefix}/{child}" if prefix else child, fd, child)
        finally:
            os.close(fd)
    else:
        result[prefix] = "o"


def is_dir(parent_fd: int, name: str) -> bool:
    """Whether ``name`` is a directory (a symlink to one is not)."""
    return stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)


class MountedInside(SandboxError):
    """A tree to take away holds a mount point of another filesystem (``where``, relative to the tree)."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


def _mountinfo_path(field: bytes) -> str:
    # The kernel writes a space, tab, newline and backslash in a mount point as an octal escape.
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda found: bytes([int(found.group(1), 8) & 0xFF]), field))


def mount_points() -> list[str] | None:
    """Every mount point this process sees, as ``/proc/self/mountinfo`` names them; None without it."""
    try:
        with open("/proc/self/mountinfo", "rb") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    return [_mountinfo_path(fields[4]) for fields in (line.split(b" ") for line in lines) if len(fields) > 4]


def mounts_beneath(fd: int, points: list[str] | None = None) -> list[str]:
    """The mount points at or beneath the directory open as ``fd``, relative to it (``""``: itself), in order.

    From ``points`` (:func:`mount_points`, read now when not given; a bind mount of the same
    filesystem included); without them, the directories on another device than ``fd`` itself,
    found by walking the tree (not into them).
    """
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return _other_devices(fd)
    points = mount_points() if points is None else points
    if points is None:
        return _other_devices(fd)
    prefix = real.rstrip("/") + "/"
    found = {"" if point == real else point[len(prefix) :] for point in points
             if point == real or point.startswith(prefix)}  # fmt: skip
    return sorted(found, key=lambda rel: rel.split("/"))


def _other_devices(fd: int) -> list[str]:
    found: list[str] = []
    top = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        _walk_devices(top, os.fstat(top).st_dev, "", found)
    finally:
        os.close(top)
    return found


def _walk_devices(fd: int, device: int, prefix: str, found: list[str]) -> None:
    for entry in sorted(os.scandir(fd), key=lambda entry: entry.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        try:
            if os.fstat(inner).st_dev != device:
                found.append(prefix + entry.name)
            else:
                _walk_devices(inner, device, f"{prefix}{entry.name}/", found)
        finally:
            os.close(inner)


def mounted_inside(name: str, where: str) -> MountedInside:
    """The refusal to take away ``name``, which holds a mount point at ``where`` (relative to it)."""
    point = f"{name}/{where}" if where else name
    inside = f", inside {quoted_name(name)}" if where else ""
    return MountedInside(f"{quoted_name(point)}: another filesystem is mounted there{inside}; a folder with a "
                         "mount point in it is never moved or deleted (that filesystem would go with it); unmount "
                         "it first", where)  # fmt: skip


def remove_tree(parent_fd: int, name: str) -> bool:
    """Remove ``name`` (if present): a directory with what is in it, else the one name. Return
    whether it was there.

    Never across a mount point: a directory that holds one raises :class:`MountedInside` with
    nothing removed, and a walk that meets another device on its way stops there.
    """
    try:
        directory = is_dir(parent_fd, name)
    except FileNotFoundError:
        return False
    if not directory:
        os.unlink(name, dir_fd=parent_fd)
        return True
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        mounted = mounts_beneath(fd)
        if mounted:
            raise mounted_inside(name, mounted[0])
        _empty_dir(fd, os.fstat(fd).st_dev, name, "")
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)
    return True


def _empty_dir(fd: int, device: int, name: str, prefix: str) -> None:
    _writable(fd)
    for entry in list(os.scandir(fd)):
        if not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.name, dir_fd=fd)
            continue
        inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        try:
            if os.fstat(inner).st_dev != device:  # mounted after the check above
                raise mounted_inside(name, prefix + entry.name)
            _empty_dir(inner, device, name, f"{prefix}{entry.name}/")
        finally:
            os.close(inner)
        os.rmdir(entry.name, dir_fd=fd)


def _writable(fd: int) -> None:
    """Let this user change what is in directory ``fd`` if it is this user's and does not yet: a
    read-only directory (a copy keeps a folder's mode) would stop its removal halfway."""
    info = os.fstat(fd)
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o300 != 0o300:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) | 0o700)


def remove_quietly(parent_fd: int, name: str) -> bool:
    """Unlink ``name`` if it is there; return whether it was."""
    try:
        os.unlink(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return False
    return True


def to_trash(trash_dir: Path, parent_fd: int, name: str, trash_name: str) -> None:
    """Move ``name`` (if present) into ``trash_dir``: undo displaces, it never destroys."""
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    with dir_fd(trash_dir) as trash_fd:
        rename_noreplace(parent_fd, name, trash_fd, trash_name)
        fsync_dir(trash_fd)
    fsync_dir(parent_fd)


def discard_or_trash(
    trash_dir: Path, parent_fd: int, name: str, trash_name: str, unchanged: Callable[[int, str], bool]
) -> None:
    """Take away ``name`` (if present), which a plan that never took effect made.

    Removed outright when ``unchanged(parent_fd, name)`` says it still holds only what the plan
    put there (nothing of anyone's is lost, and its space is freed); anything else, anything that
    cannot be checked, or that another filesystem is mounted in, goes to the trash as :func:`to_trash` moves it.
    """
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    try:
        ours = unchanged(parent_fd, name)
    except (OSError, SandboxError):
        ours = False
    if ours:
        try:
            remove_tree(parent_fd, name)
        except MountedInside:
            ours = False  # another filesystem mounted in it since: moved aside whole, nothing on it deleted
    if not ours:
        to_trash(trash_dir, parent_fd, name, trash_name)
        return
    fsync_dir(parent_fd)


def holds_digest(digest: str) -> Callable[[int, str], bool]:
    """A check for :func:`discard_or_trash`: the entry is a regular file whose SHA-256 is ``digest``."""
    return lambda parent_fd, name: hash_regular(parent_fd, name) == digest
