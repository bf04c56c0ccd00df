"""File operations by descriptor for the plan ops: never through a symlink, never replacing.

Every function takes a directory descriptor and a name in it (from ``Workspace.parent``), so a
symlink swapped in after a check cannot redirect the operation.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.workspace.sandbox import SandboxError, fsync_dir, rename_noreplace

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


def read_regular(parent_fd: int, name: str) -> tuple[bytes, int]:
    """Read a regular file by name in a directory, never through a symlink; return data and mode."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(f"{name!r}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)


def write_new(parent_fd: int, name: str, data: bytes, mode: int) -> None:
    """Create ``name`` (it must not exist) holding ``data`` with ``mode``, fully written and fsynced."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
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


def copy_tree(src_fd: int, src_name: str, dst_fd: int, dst_name: str) -> None:
    """Copy a file, symlink or directory tree by descriptors, never following a symlink."""
    info = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=src_fd), dst_name, dir_fd=dst_fd)
    elif stat.S_ISREG(info.st_mode):
        data, mode = read_regular(src_fd, src_name)
        write_new(dst_fd, dst_name, data, mode)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        source, copy = os.open(src_name, flags, dir_fd=src_fd), os.open(dst_name, flags, dir_fd=dst_fd)
        try:
            copy_xattrs(source, copy)
        finally:
            os.close(source)
            os.close(copy)
    elif stat.S_ISDIR(info.st_mode):
        os.mkdir(dst_name, 0o700, dir_fd=dst_fd)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        inner_src = os.open(src_name, flags, dir_fd=src_fd)
        inner_dst = os.open(dst_name, flags, dir_fd=dst_fd)
        try:
            for name in os.listdir(inner_src):
                copy_tree(inner_src, name, inner_dst, name)
            os.fchmod(inner_dst, stat.S_IMODE(info.st_mode))
            os.fsync(inner_dst)
        finally:
            os.close(inner_src)
            os.close(inner_dst)
    else:
        raise SandboxError(f"{src_name!r}: {CANNOT_COPY}")


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
        result[prefix] = "f:" + sha(read_regular(parent_fd, name)[0])
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


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove ``name`` (if present): a directory with what is in it, else the one name."""
    try:
        directory = is_dir(parent_fd, name)
    except FileNotFoundError:
        return
    if directory:
        shutil.rmtree(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)


def remove_quietly(parent_fd: int, name: str) -> None:
    """Unlink ``name`` if it is there."""
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=parent_fd)


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
