"""Tags on files: YAML front matter for markdown, the ``user.xdg.tags`` extended attribute elsewhere.

Markdown files (``.md``, ``.markdown``) keep tags under ``tags:`` in a leading ``---`` block, as Obsidian,
Jekyll and Hugo read them; other regular files keep them comma-separated in freedesktop's ``user.xdg.tags``.
Readers never raise on junk and return only tags that :func:`check_tag` accepts, safe to show and write back.
Writers refuse what they cannot rewrite exactly: a front matter edit changes the ``tags`` lines and no others.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import unicodedata
from collections.abc import Iterable
from typing import NoReturn

import yaml  # type: ignore[import-untyped]

from engine.errors import keep_errno
from engine.names import quoted_name
from engine.workspace.sandbox import SandboxError

XATTR = "user.xdg.tags"
MARKDOWN_SUFFIXES = (".md", ".markdown")
MAX_TAGS = 64
MAX_TAG_CHARS = 64
FRONT_MATTER_LIMIT = 64 * 1024  # front matter that does not close within this many bytes counts as absent

_BOM = b"\xef\xbb\xbf"
_OPENING = re.compile(rb"---[ \t\r]*\n")
_CLOSING = re.compile(rb"^---[ \t\r]*(?:\n|\Z)", re.MULTILINE)
_UNSUPPORTED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP})
_TOO_LARGE = frozenset({errno.E2BIG, errno.ENOSPC, errno.ERANGE, errno.EDQUOT})
_REFUSED = frozenset({errno.EPERM, errno.EACCES, errno.EROFS})
# Building values also raises ValueError (a date such as 2024-13-45) and RecursionError (deep nesting).
_YAML_FAILURES = (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError)


class TagError(SandboxError):
    """Tags that cannot be read or written; the message is one line naming the problem."""


def is_markdown(name: str) -> bool:
    """Whether ``name`` ends in a markdown suffix (any case), so that its tags live in front matter."""
    return os.path.splitext(name)[1].lower() in MARKDOWN_SUFFIXES


def check_tag(tag: str) -> str | None:
    """Return why ``tag`` cannot be a tag, as a phrase ("holds a comma"), or ``None`` when it can."""
    if not tag.strip():
        return "is empty"
    if len(tag) > MAX_TAG_CHARS:
        return f"is longer than {MAX_TAG_CHARS} characters"
    if "," in tag:
        return "holds a comma"
    # Control, format (bidi overrides, zero-width), private-use, surrogate and unassigned characters
    # and the line and paragraph separators can break a line or disguise text in a terminal or in YAML.
    if any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in tag):
        return "holds a control or invisible character"
    if tag != tag.strip():
        return "starts or ends with whitespace"
    if tag.startswith("#"):
        return "starts with '#'"
    return None


def _clean(tags: Iterable[str]) -> list[str]:
    """Strip each tag and keep the first of each valid one, in order."""
    return list(dict.fromkeys(tag.strip() for tag in tags if check_tag(tag.strip()) is None))


def _checked(tags: Iterable[str]) -> list[str]:
    """Return ``tags`` without repeats, or raise :class:`TagError` for an invalid tag or too many."""
    unique = list(dict.fromkeys(tags))
    for tag in unique:
        reason = check_tag(tag)
        if reason is not None:
            raise TagError(f"the tag {tag[:MAX_TAG_CHARS]!r} {reason}")
    if len(unique) > MAX_TAGS:
        raise TagError(f"a file holds at most {MAX_TAGS} tags, not {len(unique)}")
    return unique


def decode_tags(value: bytes) -> list[str]:
    """Return the tags in a ``user.xdg.tags`` value: split on commas, stripped, valid ones once each."""
    return _clean(value.decode("utf-8", errors="replace").split(","))


def encode_tags(tags: Iterable[str]) -> bytes:
    """Return the ``user.xdg.tags`` value for ``tags``; :class:`TagError` for an invalid tag or too many."""
    return ",".join(_checked(tags)).encode()


def merged(old: Iterable[str], add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
    """Return ``old`` followed by the new tags of ``add``, without those in ``remove`` or repeats."""
    gone = set(remove)
    return [tag for tag in dict.fromkeys([*old, *add]) if tag not in gone]


def _front_matter(data: bytes) -> tuple[int, int, int] | None:
    """Locate front matter: where its YAML starts, where it ends (the closing line) and where that line ends."""
    opening = _OPENING.match(data, len(_BOM) if data.startswith(_BOM) else 0)
    if opening is None:
        return None
    closing = _CLOSING.search(data, opening.end())
    return None if closing is None else (opening.end(), closing.start(), closing.end())


def _tags_in(value: object) -> list[str]:
    """The tags in the value of a ``tags`` key: a list, or a string split on commas (else on spaces)."""
    if isinstance(value, str):
        return _clean(value.split(",") if "," in value else value.split())
    if isinstance(value, list):
        return _clean(str(v) for v in value if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)))
    return []


def front_matter_tags(data: bytes) -> list[str]:
    """Return the tags in a markdown file's front matter; [] without any, on junk, or past the size limit."""
    span = _front_matter(data[: FRONT_MATTER_LIMIT + 1])  # one more byte tells a cut line from a closing one
    if span is None or span[2] > FRONT_MATTER_LIMIT:
        return []
    try:  # str() of a huge integer (0x followed by thousands of digits) raises ValueError too
        mapping: object = yaml.safe_load(data[span[0] : span[1]].decode())
        return _tags_in(mapping.get("tags")) if isinstance(mapping, dict) else []
    except (UnicodeDecodeError, *_YAML_FAILURES):
        return []


_YAML12_NUMBER = re.compile(r"^[-+]?(\.?[0-9]|\.(inf|Inf|INF|nan|NaN|NAN)$|0[oxbOXB])")


def _yaml_item(tag: str) -> str:
    """Write a valid tag as a block-sequence item that reads back as the same string: plain where it can be."""
    with contextlib.suppress(*_YAML_FAILURES):
        # YAML 1.2 readers (Hugo, js-yaml) take 1e3, 0o17 and .inf as numbers where PyYAML's 1.1 does not.
        if yaml.safe_load(f"- {tag}") == [tag] and not _YAML12_NUMBER.match(tag):
            return tag
    return '"' + tag.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_yaml(body: str) -> None:
    """Raise :class:`TagError` unless the front matter ``body`` loads as YAML."""
    try:
        yaml.safe_load(body)
    except _YAML_FAILURES as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2} of the file" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or getattr(exc, "reason", None) or exc)
        problem = "".join(c if c.isprintable() else "?" for c in problem[:200])
        raise TagError(f"the front matter is not valid YAML{where} ({problem}); fix it by hand") from None


def _entry_lines(body: str) -> tuple[int, int] | None:
    """The span of the whole lines that hold the root ``tags`` entry of ``body``, or None; TagError for no mapping."""
    root = yaml.compose(body, Loader=yaml.SafeLoader)
    if root is not None and not isinstance(root, yaml.MappingNode):  # an empty body has no node
        raise TagError("the front matter is not a YAML mapping of keys to values, so it cannot hold tags")
    found = [(k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "tags"] if root else []
    if not found:
        return None
    if len(found) > 1:
        raise TagError("the front matter has more than one tags key; keep one by hand")
    key, value = found[0]
    if isinstance(value, yaml.MappingNode):
        raise TagError("the front matter's tags are a mapping, not a list; edit them by hand")
    # A block collection's own end mark runs on over the comments after it; its last item's does not.
    while isinstance(value, yaml.CollectionNode) and not value.flow_style and value.value:
        value = value.value[-1][1] if isinstance(value, yaml.MappingNode) else value.value[-1]
    start = body.rfind("\n", 0, key.start_mark.index) + 1
    end = start + len(body[start : value.end_mark.index].rstrip())
    return start, body.find("\n", end) + 1 or len(body)


def _rest(body: str) -> list[tuple[object, ...]]:
    """The YAML events inside the root of ``body``, less its ``tags`` entry and positions, to compare versions."""
    events: list[tuple[object, ...]] = []
    depth, entries, skipping = 0, 0, False
    for event in yaml.parse(body, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if depth == 1 and isinstance(event, yaml.NodeEvent):
            if entries % 2 == 0:
                skipping = isinstance(event, yaml.ScalarEvent) and event.value == "tags"
            entries += 1
        if depth > 0 and not skipping:
            fields = ("anchor", "tag", "implicit", "value", "style", "flow_style")
            events.append((type(event).__name__, *(getattr(event, f, None) for f in fields)))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
    return events


def with_front_matter_tags(data: bytes, tags: Iterable[str]) -> bytes:
    """Return a markdown file's bytes with its front matter's tags set to exactly ``tags``, nothing else changed.

    Without front matter, one with only the tags goes first (after a BOM). A ``tags`` entry (flow list,
    block list or string) becomes a block list, or goes for no tags (emptied front matter stays as
    ``---``/``---``); a new entry goes before the closing line. New lines are CRLF where the first line
    is; tags are plain where YAML reads them back unchanged, else double-quoted. :class:`TagError` for
    bad or too many tags, non-UTF-8 data, front matter that is no YAML mapping or past the size limit.
    """
    wanted = _checked(tags)
    try:
        data.decode()
    except UnicodeDecodeError as exc:
        raise TagError(f"the file is not UTF-8 text (an invalid byte at offset {exc.start})") from None
    head = len(_BOM) if data.startswith(_BOM) else 0
    nl = "\r\n" if data.find(b"\n", head) > head and data[data.find(b"\n", head) - 1] == ord("\r") else "\n"
    block = "".join([f"tags:{nl}", *(f"  - {_yaml_item(tag)}{nl}" for tag in wanted)]) if wanted else ""
    span = _front_matter(data)
    if span is None:
        if not wanted:
            return data
        result = data[:head] + f"---{nl}{block}---{nl}".encode() + data[head:]
    else:
        if span[2] > FRONT_MATTER_LIMIT:
            raise TagError(f"the front matter is longer than {FRONT_MATTER_LIMIT // 1024} KiB")
        body = data[span[0] : span[1]].decode()
        _check_yaml(body)
        lines = _entry_lines(body)
        new_body = body + block if lines is None else body[: lines[0]] + block + body[lines[1] :]
        try:  # the events outside the tags entry show that no other value changed
            same = _rest(new_body) == _rest(body) and isinstance(yaml.safe_load(new_body) or {}, dict)
        except _YAML_FAILURES:
            same = False
        if not same:
            raise TagError("the tags cannot be set without changing the rest of the front matter; edit it by hand")
        result = data[: span[0]] + new_body.encode() + data[span[1] :]
    if (_front_matter(result) or (0, 0, 0))[2] > FRONT_MATTER_LIMIT:
        raise TagError(f"with these tags the front matter would be longer than {FRONT_MATTER_LIMIT // 1024} KiB")
    if front_matter_tags(result) != wanted:
        raise TagError("the tags would not read back as written; edit the front matter by hand")
    return result


def _raise_for(exc: OSError, name: str, doing: str) -> NoReturn:
    """Raise the one-line :class:`TagError` for a failed attribute call a user can cause, else ``exc``."""
    if exc.errno in _UNSUPPORTED:
        raise keep_errno(TagError(f"the filesystem of {name} does not support extended attributes"), exc) from None
    if exc.errno in _TOO_LARGE:
        raise keep_errno(
            TagError(f"the tags of {name} are too large for its filesystem ({exc.strerror})"), exc
        ) from None
    if exc.errno in _REFUSED:
        raise keep_errno(TagError(f"cannot {doing} the tags of {name}: {exc.strerror}"), exc) from None
    raise exc


def xattr_value(fd: int, *, name: str = "this file") -> bytes | None:
    """Return the raw ``user.xdg.tags`` value of the file open read-only on ``fd`` (named ``name``) or None."""
    try:
        return os.getxattr(fd, XATTR)
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return None
        _raise_for(exc, name, "read")


def read_xattr_tags(fd: int, *, name: str = "this file") -> list[str]:
    """Return the tags in the ``user.xdg.tags`` attribute of the file on ``fd``; [] when it has none."""
    return decode_tags(xattr_value(fd, name=name) or b"")


def set_xattr_value(fd: int, value: bytes | None, *, name: str = "this file") -> None:
    """Set the ``user.xdg.tags`` attribute of the file open read-only on ``fd``, or remove it for None."""
    try:
        if value is None:
            os.removexattr(fd, XATTR)
        else:
            os.setxattr(fd, XATTR, value)
    except OSError as exc:
        if value is not None or exc.errno != errno.ENODATA:
            _raise_for(exc, name, "change")


def _hard_links_protected() -> bool:
    """Whether the kernel lets a user hard-link only files they own or may read and write."""
    try:
        with open("/proc/sys/fs/protected_hardlinks", encoding="ascii") as setting:
            return setting.read().strip() != "0"
    except (OSError, ValueError):
        return True


def unchangeable(parent_fd: int, name: str) -> str | None:
    """Why this user cannot change the tags of the regular file ``name`` in the directory open on
    ``parent_fd``, as a phrase ("is read-only"), or None when they can; a symlink is never followed.

    The ``user.xdg.tags`` attribute needs write permission on the file itself. Front matter is written
    to a new file that takes the old one's name; the old one is kept for undo under a second name,
    which the kernel allows only for a file this user owns or may read and write.
    """
    if is_markdown(name):
        return unreplaceable(parent_fd, name)
    theirs = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_uid != os.geteuid()
    if not os.access(name, os.W_OK, dir_fd=parent_fd, follow_symlinks=False):
        return "belongs to another user and is read-only for this one" if theirs else "is read-only"
    return None


def unreplaceable(parent_fd: int, name: str) -> str | None:
    """Why this user cannot replace the regular file ``name`` in the directory open on ``parent_fd``
    with a new one, keeping the old one for undo under a second name, as a phrase, or None when they
    can; a symlink is never followed. The kernel gives a file a second name only for a user who owns
    it or may read and write it (``fs.protected_hardlinks``); a file this user owns may be replaced
    even when it is read-only, as an editor's forced save does.
    """
    info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if info.st_uid == os.geteuid() or not _hard_links_protected():
        return None
    if not os.access(name, os.W_OK, dir_fd=parent_fd, follow_symlinks=False):
        return "belongs to another user and is read-only for this one"
    if not os.access(name, os.R_OK, dir_fd=parent_fd, follow_symlinks=False):
        return "belongs to another user and is unreadable for this one"
    return None


def tags_of(parent_fd: int, name: str) -> list[str]:
    """Return the tags of the entry ``name`` in the directory open on ``parent_fd``, never following a symlink.

    Markdown tags come from front matter in the first :data:`FRONT_MATTER_LIMIT` bytes, others from
    ``user.xdg.tags``. [] for all but a regular file (a symlink, FIFO or device is never opened for reading)
    and on a filesystem without extended attributes; :class:`TagError` for a path or an unreadable file.
    """
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise TagError(f"{quoted_name(name)} is not the name of an entry in a directory")
    fd = -1
    try:
        # The stat keeps devices from being opened at all; the fstat settles a swap in between.
        if not stat.S_ISREG(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            return []
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=parent_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        if is_markdown(name):
            with open(fd, "rb", closefd=False) as file:  # a buffered read returns short only at the end
                return front_matter_tags(file.read(FRONT_MATTER_LIMIT + 1))
        return decode_tags(os.getxattr(fd, XATTR))
    except OSError as exc:
        # ELOOP and ENXIO: a symlink or a socket swapped in since the stat; ENODATA: no tags attribute.
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENODATA) or exc.errno in _UNSUPPORTED:
            return []
        raise TagError(f"{quoted_name(name)}: cannot read its tags: {exc.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)
