"""Confinement of file access to a workspace root.

Every path is resolved by the kernel beneath a directory descriptor of the root, with
``openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`` where the kernel has it. Elsewhere the path
is walked one component at a time with ``O_NOFOLLOW`` and directory descriptors, refusing every
symlink. No decision is ever made on a path string and then acted on by path: every operation
works on descriptors, so a symlink swapped in between a check and a use cannot redirect it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from engine.errors import RouteshellError
from engine.names import quoted_name

STATE_DIR = ".routeshell"
GIT_DIR = ".git"
PROTECTED = (GIT_DIR, STATE_DIR)
MAX_PATH = 4096
MAX_NAME = 255

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall tables were unified)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08


class SandboxError(RouteshellError):
    """A path or operation the sandbox refuses; the message names the path and the rule."""


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(dir_fd: int, path: str, flags: int, mode: int, *, follow: bool = True) -> int:
    resolve = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS | (0 if follow else _RESOLVE_NO_SYMLINKS)
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return int(fd)


def _probe_openat2() -> bool:
    try:
        os.close(_openat2(os.open("/", os.O_PATH | os.O_DIRECTORY), ".", os.O_PATH | os.O_DIRECTORY, 0))
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
            return False
        raise
    return True


HAVE_OPENAT2 = _probe_openat2()


def check_relpath(path: str, *, write: bool = False) -> str:
    """Return the normal form of a workspace-relative POSIX path, or raise :class:`SandboxError`.

    Refuses empty and absolute paths, NUL bytes, lone surrogates other than the ones that carry
    the bytes of a non-UTF-8 name (U+DC80..U+DCFF, Python's ``surrogateescape``), ``..`` that
    climbs above the root, names over 255 bytes and paths over 4096 bytes; with ``write``, also
    a ``.git`` (directory or gitdir file) at any depth, anything in one, and the state directory.
    The normal form has no ``.``, ``..`` or repeated slashes; the root is ``"."``.
    """
    if not isinstance(path, str) or path == "":
        raise SandboxError("empty path")
    if "\0" in path:
        raise SandboxError(f"{quoted_name(path)}: NUL byte in path")
    if path.startswith("/"):
        raise SandboxError(f"{quoted_name(path)}: absolute paths are refused; give a path relative to the workspace")
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:
        raise SandboxError(f"{quoted_name(path)}: not a valid file name (a lone surrogate code point)") from None
    # Escaped bytes that spell valid UTF-8 name the same file as the text: one spelling per name.
    path = os.fsdecode(encoded)
    if len(encoded) > MAX_PATH:
        raise SandboxError(f"{quoted_name(path[:40])}...: path longer than {MAX_PATH} bytes")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise SandboxError(f"{quoted_name(path)}: '..' leads outside the workspace")
            parts.pop()
            continue
        if len(os.fsencode(part)) > MAX_NAME:
            raise SandboxError(f"{quoted_name(path)}: a name is longer than {MAX_NAME} bytes")
        parts.append(part)
    found = protected_part(parts) if write else None
    if found is not None:
        raise SandboxError(f"{quoted_name(path)}: {found}/ is protected and cannot be changed by a plan")
    return "/".join(parts) or "."


def protected_part(parts: list[str]) -> str | None:
    """Return the protected name among path ``parts``: ``.git`` at any depth, or the state directory on top."""
    if parts and parts[0] == STATE_DIR:
        return STATE_DIR
    for part in parts:
        # Any case: on a case-insensitive filesystem ".GIT" is the same directory.
        if part.lower() == GIT_DIR:
            return part
    return None


_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISREG, "file"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def file_kind(mode: int) -> str:
    """Name the file type encoded in an ``st_mode``: "file", "directory", "symlink", "FIFO", ..."""
    return next((name for test, name in _KINDS if test(mode)), "unknown")


class Entry(NamedTuple):
    """A name in a directory, as a listing sees it (a NamedTuple: listings hold 100,000 of them).

    ``kind`` is the type of the name itself (:func:`file_kind`; a symlink is ``"symlink"``);
    ``is_dir`` is True for a directory, and for a symlink that resolves to one beneath the root;
    ``stat`` is the name's ``lstat`` when the listing was asked for it, else None.
    """

    name: str
    kind: str
    is_dir: bool
    stat: os.stat_result | None = None

    @property
    def is_link(self) -> bool:
        """True for a symlink (followed or not)."""
        return self.kind == "symlink"


class Workspace:
    """A workspace root held open as a directory descriptor; all access goes through it.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(os.path.realpath(root))
        try:
            self.root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SandboxError(f"workspace {self.root}: {exc.strerror}") from None

    def close(self) -> None:
        os.close(self.root_fd)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ----------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o644, *, follow: bool = True) -> int:
        """Open ``path`` (already checked) beneath the root and return the descriptor.

        A path that escapes the root, through ``..`` or any symlink, raises :class:`SandboxError`.
        ``follow``: a symlink on the way that stays beneath the root is followed; False refuses every
        symlink on the way (errno ``ELOOP``; ``ENOTDIR`` from the walk), as a step that writes must.
        """
        try:
            if HAVE_OPENAT2:
                return _openat2(self.root_fd, path, flags, mode, follow=follow)
            return self._open_walk(path, flags, mode)
        except OSError as exc:
            raise self._refusal(path, exc) from None

    def _open_walk(self, path: str, flags: int, mode: int) -> int:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        current = os.dup(self.root_fd)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
                os.close(current)
                current = nxt
            if not parts:
                return os.open(".", flags | os.O_CLOEXEC, dir_fd=current)
            return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=current)
        finally:
            os.close(current)

    @staticmethod
    def _refusal(path: str, exc: OSError) -> SandboxError:
        if exc.errno == errno.EXDEV:
            error = SandboxError(f"{quoted_name(path)}: resolves outside the workspace (through '..' or a symlink)")
        elif exc.errno == errno.ELOOP:
            error = SandboxError(
                f"{quoted_name(path)}: symlink refused (a magic link, a loop, or a symlink as the last name)"
            )
        else:
            error = SandboxError(f"{quoted_name(path)}: {exc.strerror}")
        # Callers tell "outside", "a symlink" and "missing" apart by the errno, not by the text.
        error.errno = exc.errno  # type: ignore[attr-defined]
        return error

    @contextmanager
    def parent(self, path: str, *, write: bool = False, follow: bool | None = None) -> Iterator[tuple[int, str]]:
        """Yield a descriptor of the directory holding ``path`` and the final name in it.

        ``write``: the caller changes what is at ``path``, so a path in ``.git`` or the state
        directory is refused, by its name (:func:`check_relpath`) or by where its directory really
        is. ``follow``: as for :meth:`open`, for the directories on the way; by default a caller
        that writes goes through no symlink (nothing is changed through a symlinked directory).
        """
        if path == ".":
            raise SandboxError("the workspace root itself cannot be the target")
        if write:
            check_relpath(path, write=True)
        head, _, name = path.rpartition("/")
        fd = self.open(head or ".", os.O_PATH | os.O_DIRECTORY, follow=not write if follow is None else follow)
        try:
            if write:
                self._refuse_protected(fd, path, head)
            yield fd, name
        finally:
            os.close(fd)

    def open_dir(self, path: str, *, write: bool = False) -> int:
        """Open directory ``path`` (``O_PATH``) and return the descriptor; the caller closes it.

        ``write``: the caller changes what is in it, so it is refused in ``.git`` or the state
        directory, as :meth:`parent` refuses them, and through any symlink on the way, ``path``
        itself included (errno ``ELOOP``, or ``ENOTDIR`` where the kernel lacks ``openat2``).
        """
        if write:
            check_relpath(path, write=True)
        fd = self.open(path, os.O_PATH | os.O_DIRECTORY, follow=not write)
        if write:
            try:
                self._refuse_protected(fd, path, path)
            except SandboxError:
                os.close(fd)
                raise
        return fd

    def _refuse_protected(self, fd: int, path: str, head: str) -> None:
        """Raise :class:`SandboxError` when directory ``fd`` (``head``, on the way to ``path``) is in
        ``.git`` or the state directory."""
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            # Without /proc the directory's real place is unknown: refuse to go through a symlink.
            parts = [part for part in head.split("/") if part not in ("", ".")]
            for end in range(1, len(parts) + 1):
                info = self.lstat("/".join(parts[:end]))
                if info is not None and stat.S_ISLNK(info.st_mode):
                    raise SandboxError(
                        f"{quoted_name(path)}: goes through a symlink, which cannot be checked here"
                    ) from None
            return
        inside = os.path.relpath(real, self.root)
        found = protected_part(inside.split("/") if inside != "." else [])
        if found is not None:
            raise SandboxError(f"{quoted_name(path)}: resolves into {found}/, which is protected and cannot be changed")

    def lstat(self, path: str) -> os.stat_result | None:
        """Return the ``lstat`` of ``path``, or None when nothing is there."""
        if path == ".":
            return os.stat(self.root_fd)
        try:
            with self.parent(path) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except SandboxError as exc:
            if getattr(exc, "errno", None) in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise

    # -- reading -------------------------------------------------------------------------

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """Read a regular file (never a FIFO, socket or device: the open cannot block); with
        ``limit``, its first ``limit`` bytes, and no byte past them is read."""
        fd = self.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SandboxError(f"{quoted_name(path)}: not a regular file")
            chunks: list[bytes] = []
            done = 0
            while limit is None or done < limit:
                # The whole file in one read where it can be (a file growing meanwhile: on to its end),
                # but never past the limit: a read of a huge or endless file stops there.
                want = max(info.st_size - done, 65536)
                if limit is not None:
                    want = min(want, limit - done)
                chunk = os.read(fd, want)
                if not chunk:
                    break
                chunks.append(chunk)
                done += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_text(self, path: str) -> str:
        """Read a regular file as UTF-8 text."""
        data = self.read_bytes(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SandboxError(f"{quoted_name(path)}: not UTF-8 text") from None

    def scandir(self, path: str, *, with_stat: bool = False) -> Iterator[Entry]:
        """Yield the entries of directory ``path`` beneath the root, in no particular order.

        Types come from the directory itself where the filesystem records them, so a listing
        costs no ``stat`` per entry unless ``with_stat`` asks for each entry's ``lstat``. A symlink
        is followed only to tell whether it leads to a directory beneath the root.
        """
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            prefix = "" if path == "." else path + "/"
            with os.scandir(fd) as found:
                for item in found:
                    try:
                        info = item.stat(follow_symlinks=False) if with_stat else None
                        if item.is_dir(follow_symlinks=False):
                            kind, is_dir = "directory", True
                        elif item.is_file(follow_symlinks=False):
                            kind, is_dir = "file", False
                        elif item.is_symlink():
                            kind, is_dir = "symlink", self._leads_to_directory(prefix + item.name)
                        else:
                            kind, is_dir = file_kind((info or item.stat(follow_symlinks=False)).st_mode), False
                    except FileNotFoundError:
                        continue  # removed while listed
                    yield Entry(item.name, kind, is_dir, info)
        finally:
            os.close(fd)

    def _leads_to_directory(self, path: str) -> bool:
        try:
            fd = self.open(path, os.O_PATH | os.O_DIRECTORY)
        except SandboxError:
            return False  # outside, dangling, a loop, or not a directory
        os.close(fd)
        return True

    def listdir(self, path: str) -> list[Entry]:
        """List a directory beneath the root by name, each entry with its ``lstat``."""
        return sorted(self.scandir(path, with_stat=True))

    def walk(self, path: str) -> Iterator[str]:
        """Yield every path beneath directory ``path`` (relative to the root), never following symlinks."""
        for entry in sorted(self.scandir(path)):
            child = entry.name if path == "." else f"{path}/{entry.name}"
            yield child
            if entry.kind == "directory":
                yield from self.walk(child)


def fsync_dir(fd: int) -> None:
    """fsync a directory given by a descriptor opened with O_PATH or O_RDONLY."""
    real = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        os.fsync(real)
    finally:
        os.close(real)


_RENAME_NOREPLACE = 1
_libc.renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)


def rename_noreplace(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Rename without ever replacing what is at the destination (``renameat2(RENAME_NOREPLACE)``)."""
    result = _libc.renameat2(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), _RENAME_NOREPLACE)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), dst)
