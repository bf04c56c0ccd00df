"""Symlinks on the way to a path: which one comes first, and whether it leads outside the workspace.

A plan's step (:mod:`engine.plans`) and a match (:mod:`engine.files.match`) both refuse a path
that goes through a symlinked directory, naming the symlink in the same words. Both ask here,
through :class:`LinkReader`: the workspace as it is (:class:`WorkspaceLinks`), or a plan's
simulation of it, so the preview and the apply name the same symlink.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Literal, Protocol

from engine.workspace.sandbox import SandboxError, Workspace

Kind = Literal["file", "dir", "link", "other"]

#: As the kernel's own limit on symlinks followed in one lookup.
MAX_LINKS = 40


def kind_of(mode: int) -> Kind:
    """What an entry of ``mode`` (an ``lstat``'s) is."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


class LinkReader(Protocol):
    """What telling the symlinks on a path apart needs; paths are normalised workspace-relative paths."""

    def kind(self, path: str) -> Kind | None:
        """Return what is at ``path`` (a final symlink is described, not followed), or None."""
        ...

    def link_target(self, path: str) -> str:
        """Return the target of the symlink at ``path``."""
        ...


class WorkspaceLinks:
    """The workspace as it is now, read through its confined descriptors."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def kind(self, path: str) -> Kind | None:
        info = self.ws.lstat(path)
        return None if info is None else kind_of(info.st_mode)

    def link_target(self, path: str) -> str:
        """Return the target of the symlink at ``path``."""
        with self.ws.parent(path) as (parent_fd, name):
            return os.readlink(name, dir_fd=parent_fd)


def symlink_on_the_way(links: LinkReader, path: str, *, inclusive: bool = False) -> str | None:
    """Return the first directory on the way to ``path`` that is a symlink in ``links``, or None.

    ``inclusive``: ``path`` itself is on the way too (a directory that things are put in, or that
    a match looks in). The search stops at the first name that is not a directory: the caller's
    own checks say what is wrong. Each name is asked only once every name before it is found to be
    a directory, so no symlink is gone through to find the next.
    """
    parts = path.split("/") if path != "." else []
    for end in range(1, len(parts) + (1 if inclusive else 0)):
        prefix = "/".join(parts[:end])
        kind = links.kind(prefix)
        if kind == "link":
            return prefix
        if kind != "dir":
            return None
    return None


def leads_outside(links: LinkReader, link: str) -> bool:
    """Whether the symlink at ``link`` leads outside the workspace: its target is absolute or climbs
    above the root, or it leads to another symlink that does, or through a symlinked directory that does."""
    path = link
    for _hop in range(MAX_LINKS):
        try:
            target = links.link_target(path)
        except (OSError, SandboxError):
            return False  # no longer a symlink: nothing to say of where it leads
        if target.startswith("/"):
            return True
        parts = path.split("/")[:-1]
        for part in target.split("/"):
            if part == "..":
                if not parts:
                    return True
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        if not parts:
            return False
        path = "/".join(parts)
        try:
            if links.kind(path) != "link":
                return False
        except SandboxError as exc:
            return getattr(exc, "errno", None) == errno.EXDEV
    return False
