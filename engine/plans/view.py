"""What a plan op sees of the workspace while it checks a step: the real one, or a simulated one.

The apply checks each step against :class:`WorkspaceView` (the workspace as it is); the dry run
checks the same step, with the same code, against an :class:`Overlay` (the workspace as the
earlier steps of the plan would leave it). So the preview and the apply refuse the same steps
with the same words.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Protocol

from engine.files.archives import ArchiveLimits
from engine.names import quoted_name
from engine.plans.files import (
    CANNOT_COPY,
    Fingerprint,
    fingerprint,
    is_git,
    mount_points,
    mounts_beneath,
    read_regular,
)
from engine.workspace import sandbox
from engine.workspace.links import MAX_LINKS, Kind, LinkReader, WorkspaceLinks
from engine.workspace.sandbox import SandboxError, Workspace, protected_part


class View(LinkReader, Protocol):
    """The queries a step's checks make; paths are normalised workspace-relative paths."""

    def read(self, path: str) -> tuple[bytes, int]:
        """Return the content and mode of the regular file at ``path``."""
        ...

    def fingerprint(self, path: str) -> Fingerprint:
        """Return the fingerprint of the tree at ``path`` (empty where nothing is recorded)."""
        ...

    def check_writable(self, path: str, *, inclusive: bool = False) -> None:
        """Raise :class:`SandboxError` when ``path``'s directory resolves into ``.git`` or the state directory,
        or lies on another filesystem mounted inside the workspace (``inclusive``: ``path`` itself, a
        directory things are put in)."""
        ...

    def tags_value(self, path: str) -> bytes | None:
        """Return the raw ``user.xdg.tags`` of the file at ``path`` (None: not set, or a file the plan makes)."""
        ...

    def tags_unchangeable(self, path: str) -> str | None:
        """Why this user cannot change the tags of the file at ``path`` ("is read-only"), or None."""
        ...

    def replace_refused(self, path: str) -> str | None:
        """Why this user cannot replace the file at ``path`` by a new one (it "belongs to another
        user and is read-only for this one"), or None."""
        ...

    def open_file(self, path: str) -> int:
        """Open the real regular file that holds ``path``'s content, read-only; the caller closes it."""
        ...

    def links(self, path: str) -> int:
        """How many names the file at ``path`` has (hard links); a file the plan makes has one."""
        ...

    def mounts_inside(self, path: str) -> list[str]:
        """The mount points at or beneath the directory ``path``, relative to it (``""``: itself); none for a file."""
        ...

    @property
    def archive_limits(self) -> ArchiveLimits:
        """The bounds an archive to extract must stay within."""
        ...


def open_regular(ws: Workspace, path: str, *, write: bool = False, follow: bool | None = None) -> int:
    """Open the regular file at ``path`` read-only (never through a final symlink, never blocking on a FIFO).

    ``write``: the caller changes the file (its tags), so one in ``.git`` or the state directory is
    refused, and so is a symlink anywhere on the way unless ``follow`` says otherwise.
    ``follow``: False refuses a symlink anywhere on the way too (:meth:`Workspace.parent`).
    """
    with ws.parent(path, write=write, follow=follow) as (parent_fd, name):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SandboxError(f"{quoted_name(path)}: not a regular file")
    return fd


class WorkspaceView(WorkspaceLinks):
    """The workspace as it is now, read through its confined descriptors."""

    def __init__(self, ws: Workspace, archive_limits: ArchiveLimits | None = None, *, steady: bool = False) -> None:
        super().__init__(ws)
        self._archive_limits = archive_limits or ArchiveLimits()
        # ``steady``: nothing on disk changes while the view is in use, so the mount table is read once.
        self._steady = steady
        self._points: list[str] | None = None

    @property
    def archive_limits(self) -> ArchiveLimits:
        return self._archive_limits

    def open_file(self, path: str) -> int:
        return open_regular(self.ws, path)

    def links(self, path: str) -> int:
        info = self.ws.lstat(path)
        return 1 if info is None else info.st_nlink

    def tags_value(self, path: str) -> bytes | None:
        from engine.files.tags import xattr_value

        fd = self.open_file(path)
        try:
            return xattr_value(fd)
        finally:
            os.close(fd)

    def tags_unchangeable(self, path: str) -> str | None:
        from engine.files.tags import unchangeable

        with self.ws.parent(path) as (parent_fd, name):
            return unchangeable(parent_fd, name)

    def replace_refused(self, path: str) -> str | None:
        from engine.files.tags import unreplaceable

        with self.ws.parent(path) as (parent_fd, name):
            return unreplaceable(parent_fd, name)

    def mounts_inside(self, path: str) -> list[str]:
        if self.kind(path) != "dir":
            return []
        if self._steady and self._points is None:
            self._points = mount_points()
        fd = self.ws.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            return mounts_beneath(fd, self._points)
        finally:
            os.close(fd)

    def read(self, path: str) -> tuple[bytes, int]:
        with self.ws.parent(path) as (parent_fd, name):
            return read_regular(parent_fd, name)

    def fingerprint(self, path: str) -> Fingerprint:
        with self.ws.parent(path) as (parent_fd, name):
            return fingerprint(parent_fd, name)

    def children(self, path: str) -> list[str]:
        """Return the names in directory ``path``."""
        return [entry.name for entry in self.ws.listdir(path)]

    def check_writable(self, path: str, *, inclusive: bool = False) -> None:
        head = path if inclusive else (path.rpartition("/")[0] or ".")
        try:
            fd = self.ws.open(head, os.O_PATH | os.O_DIRECTORY)
        except SandboxError as exc:
            if getattr(exc, "errno", None) in (errno.ENOENT, errno.ENOTDIR):
                return  # nothing there yet: the step's own checks say so
            raise
        try:
            # A filesystem mounted inside the workspace: a rename into or out of it (a move, the trash,
            # a backup kept for undo) cannot be done, so no step writes there.
            elsewhere = os.fstat(fd).st_dev != os.fstat(self.ws.root_fd).st_dev
        except OSError:
            elsewhere = False
        try:
            real: str | None = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            real = None
        finally:
            os.close(fd)
        if elsewhere:
            raise SandboxError(
                f"{quoted_name(path)}: on another filesystem mounted inside the workspace; plans change files on the "
                "workspace's own filesystem only, where every change can be undone"
            )
        if real is None:
            # Without /proc the directory's real place is unknown: refuse to go through a symlink.
            parts = head.split("/") if head != "." else []
            for end in range(1, len(parts) + 1):
                if self.kind("/".join(parts[:end])) == "link":
                    raise SandboxError(f"{quoted_name(path)}: goes through a symlink, which cannot be checked here")
            return
        # Both paths are canonical, so below the root a slice is what relpath returns, at a fraction of
        # its cost (this runs for every path a step writes); elsewhere (the root moved) ask relpath.
        root = str(self.ws.root)
        prefix = root if root.endswith("/") else root + "/"
        if real == root:
            inside = "."
        elif real.startswith(prefix):
            inside = real[len(prefix) :]
        else:
            inside = os.path.relpath(real, root)
        found = protected_part(inside.split("/") if inside != "." else [])
        if found is not None:
            raise SandboxError(
                f"{quoted_name(path)}: leads into {found} (through a symlink), which a plan cannot change"
            )


@dataclass(frozen=True)
class _Node:
    """An entry the plan makes: a directory, a file (bytes, or those of a real file), a symlink."""

    kind: Kind
    data: bytes | None = None
    source: str | None = None  # a real file whose bytes these are (read when needed)
    mode: int = 0o644
    target: str = ""


class _Real:
    """Marks a path whose state the plan has not changed: ask the workspace."""


_REAL = _Real()


class Overlay:
    """The workspace as the plan's earlier steps would leave it; nothing on disk changes.

    ``nodes`` maps paths to what earlier steps put there (None: removed). A directory the plan
    makes holds only what the plan puts in it; a path not under any changed entry is real.
    """

    def __init__(self, ws: Workspace, archive_limits: ArchiveLimits | None = None, *,
                 real: WorkspaceView | None = None) -> None:  # fmt: skip
        #: The workspace itself, asked about every path the plan has not changed.
        self.real = real or WorkspaceView(ws, archive_limits, steady=True)
        self.nodes: dict[str, _Node | None] = {}
        self._names: dict[str, set[str]] = {}  # directory -> names of its entries in ``nodes``
        self._dirs: dict[str, Kind] = {}  # real directories met on the way to a path

    def _set(self, path: str, node: _Node | None) -> None:
        head, _, name = path.rpartition("/")
        self.nodes[path] = node
        self._names.setdefault(head or ".", set()).add(name)

    def _drop_beneath(self, path: str) -> None:
        for name in self._names.pop(path, set()):
            child = f"{path}/{name}"
            self._drop_beneath(child)
            del self.nodes[child]

    # -- queries (the View protocol) ------------------------------------------------------

    def _lookup(self, path: str, origin: str = "", hops: int = 0) -> tuple[str, _Node | _Real | None]:
        """Resolve ``path`` as the kernel would, beneath the root; return it and what the plan left there.

        Symlinks on the way are followed, those the plan makes and real ones alike (a real one
        may now lead into something the plan changed). ``_REAL`` means: ask the workspace.
        """
        origin = origin or path
        parts = path.split("/")
        covered = False  # inside a directory the plan made: only what the plan put there exists
        for end in range(1, len(parts) + 1):
            prefix = "/".join(parts[:end])
            last = end == len(parts)
            if prefix in self.nodes:
                node = self.nodes[prefix]
                if last:
                    return path, node
                if node is None or node.kind not in ("dir", "link"):
                    return path, None
                if node.kind == "link":
                    return self._lookup(self._follow(origin, prefix, node.target, parts[end:], hops), origin, hops + 1)
                covered = True
            elif covered:
                return path, None
            elif last:
                return path, _REAL
            else:
                # Nothing on disk changes while an overlay is in use: a directory on the way is asked once.
                kind = self._dirs.get(prefix) or self.real.kind(prefix)
                if kind == "dir":
                    self._dirs[prefix] = kind
                if kind == "link":
                    if not sandbox.HAVE_OPENAT2:
                        return path, _REAL  # the workspace refuses every symlink on the way: let it say so
                    target = self.real.link_target(prefix)
                    return self._lookup(self._follow(origin, prefix, target, parts[end:], hops), origin, hops + 1)
                if kind != "dir":
                    return path, None
        return path, _REAL

    @staticmethod
    def _follow(origin: str, prefix: str, target: str, rest: list[str], hops: int) -> str:
        # The same refusals, in the same words, as Workspace.open gives for the directory of ``origin``.
        where = origin.rpartition("/")[0] or "."
        if hops >= MAX_LINKS:
            why = "symlink refused (a magic link, a loop, or a symlink as the last name)"
            loop = SandboxError(f"{quoted_name(where)}: {why}")
            loop.errno = errno.ELOOP  # type: ignore[attr-defined]
            raise loop
        outside = SandboxError(f"{quoted_name(where)}: resolves outside the workspace (through '..' or a symlink)")
        outside.errno = errno.EXDEV  # type: ignore[attr-defined]
        if target.startswith("/"):
            raise outside
        parts: list[str] = prefix.split("/")[:-1]
        for part in [*target.split("/"), *rest]:
            if part == "..":
                if not parts:
                    raise outside
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return "/".join(parts) or "."

    def _node(self, path: str) -> _Node | None:
        path, found = self._lookup(path)
        if not isinstance(found, _Real):
            return found
        kind = self.real.kind(path)
        if kind is None:
            return None
        if kind == "link":
            return _Node("link", target=self.real.link_target(path))
        return _Node(kind, source=path if kind == "file" else None)

    def kind(self, path: str) -> Kind | None:
        node = self._node(path)
        return None if node is None else node.kind

    def link_target(self, path: str) -> str:
        node = self._node(path)
        if node is None or node.kind != "link":
            raise SandboxError(f"{quoted_name(path)}: not a symlink")
        return node.target

    def read(self, path: str) -> tuple[bytes, int]:
        node = self._node(path)
        if node is None or node.kind != "file":
            raise SandboxError(f"{quoted_name(path)}: not a regular file")
        if node.data is not None:
            return node.data, node.mode
        assert node.source is not None
        return self.real.read(node.source)

    def fingerprint(self, path: str) -> Fingerprint:
        return {}  # only an apply records what it made

    @property
    def archive_limits(self) -> ArchiveLimits:
        return self.real.archive_limits

    def open_file(self, path: str) -> int:
        node = self._node(path)
        if node is None or node.kind != "file":
            raise SandboxError(f"{quoted_name(path)}: not a regular file")
        if node.source is None or node.data is not None:
            raise SandboxError(f"{quoted_name(path)} is made by this plan; use it in a later plan")
        return self.real.open_file(node.source)

    def links(self, path: str) -> int:
        node = self._node(path)
        return self.real.links(node.source) if node is not None and node.source and node.data is None else 1

    def tags_value(self, path: str) -> bytes | None:
        node = self._node(path)
        if node is None or node.kind != "file":
            raise SandboxError(f"{quoted_name(path)}: not a regular file")
        # A file the plan wrote is a new inode, without attributes; a moved one keeps its own.
        return self.real.tags_value(node.source) if node.source is not None and node.data is None else None

    def mounts_inside(self, path: str) -> list[str]:
        # What the plan made holds no mount point; a real folder it moved away held none (refused otherwise).
        resolved, found = self._lookup(path)
        return self.real.mounts_inside(resolved) if isinstance(found, _Real) else []

    def tags_unchangeable(self, path: str) -> str | None:
        node = self._node(path)
        if node is None or node.source is None or node.data is not None:
            return None  # a file the plan writes is a new one, this user's own
        return self.real.tags_unchangeable(node.source)

    def replace_refused(self, path: str) -> str | None:
        node = self._node(path)
        if node is None or node.source is None or node.data is not None:
            return None  # a file the plan writes is a new one, this user's own
        return self.real.replace_refused(node.source)

    def check_writable(self, path: str, *, inclusive: bool = False) -> None:
        resolved, found = self._lookup(path)
        if isinstance(found, _Real):
            self.real.check_writable(resolved, inclusive=inclusive)

    def children(self, path: str) -> list[str]:
        """Return the names in directory ``path`` as the plan would leave it."""
        names: set[str] = set()
        resolved, found = self._lookup(path)
        if isinstance(found, _Real):
            names.update(self.real.children(resolved))
        prefix = "" if resolved == "." else resolved + "/"
        names.update(self._names.get(resolved, ()))
        return sorted(name for name in names if self.kind(prefix + name) is not None)

    # -- changes --------------------------------------------------------------------------

    # Each change is recorded under the path as resolved. A step that changes files never goes
    # through a symlinked directory (engine/plans/op_table.py refuses it before these are called).

    def put_file(self, path: str, data: bytes, mode: int) -> None:
        """Record that ``path`` holds ``data``."""
        self._set(self._lookup(path)[0], _Node("file", data=data, mode=mode))

    def make_dir(self, path: str) -> None:
        """Record a new, empty directory at ``path``."""
        self._set(self._lookup(path)[0], _Node("dir"))

    def remove(self, path: str) -> None:
        """Record that ``path`` (and everything beneath it) is gone."""
        path = self._lookup(path)[0]
        self._drop_beneath(path)
        self._set(path, None)

    def transfer(self, src: str, dst: str, *, keep_source: bool) -> list[str]:
        """Record a copy (``keep_source``) or a move of the tree at ``src`` to ``dst``.

        A copy leaves out every ``.git`` in the tree, as :func:`~engine.plans.files.copy_tree` does:
        return them, relative to ``src``."""
        src, dst = self._lookup(src)[0], self._lookup(dst)[0]
        entries: list[tuple[str, _Node]] = []
        left: list[str] = []
        self._collect(src, "", entries, left if keep_source else None)
        for rel, node in entries:
            if keep_source and node.kind == "other":
                raise SandboxError(f"{quoted_name(src + '/' + rel if rel else src)}: {CANNOT_COPY}")
        if not keep_source:
            self.remove(src)
        self._drop_beneath(dst)
        for rel, node in entries:
            self._set(f"{dst}/{rel}" if rel else dst, node)
        return left

    def _collect(self, path: str, rel: str, entries: list[tuple[str, _Node]], left: list[str] | None) -> None:
        """Gather the tree at ``path``; ``left``: leave out every ``.git`` in it, and list them there."""
        node = self._node(path)
        if node is None:
            return
        entries.append((rel, node))
        if node.kind == "dir":
            for name in self.children(path):
                inner = f"{rel}/{name}" if rel else name
                if left is not None and is_git(name):
                    left.append(inner)
                else:
                    self._collect(f"{path}/{name}", inner, entries, left)


class UndoSimulation:
    """The workspace as undoing a journal's later records would leave it (records walked newest first)."""

    def __init__(self, ws: Workspace) -> None:
        self.view = WorkspaceView(ws)
        self.present: dict[str, bool] = {}  # paths the simulated undo has changed so far

    def exists(self, path: str) -> bool:
        return self.present[path] if path in self.present else self.view.kind(path) is not None

    def kind(self, path: str) -> Kind | None:
        return self.view.kind(path) if self.exists(path) else None

    def affected(self, path: str) -> bool:
        """Whether the simulated undo changed ``path`` or a directory above it."""
        parts = path.split("/")
        return any("/".join(parts[:end]) in self.present for end in range(1, len(parts) + 1))

    def children(self, directory: str) -> list[str]:
        names = set(self.view.children(directory)) if self.view.kind(directory) == "dir" else set()
        names.update(key[len(directory) + 1 :] for key in self.present if key.rpartition("/")[0] == directory)
        return sorted(name for name in names if self.exists(f"{directory}/{name}"))
