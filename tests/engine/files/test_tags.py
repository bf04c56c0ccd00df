"""Tags in markdown front matter and in ``user.xdg.tags``, on real files under a temporary directory."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.files.tags import (
    FRONT_MATTER_LIMIT,
    MAX_TAG_CHARS,
    MAX_TAGS,
    XATTR,
    TagError,
    check_tag,
    decode_tags,
    encode_tags,
    front_matter_tags,
    is_markdown,
    merged,
    read_xattr_tags,
    set_xattr_value,
    tags_of,
    with_front_matter_tags,
    xattr_value,
)

HOSTILE = [
    "[b]x[/b]",
    "yes",
    "No",
    "on",
    "null",
    "~",
    "123",
    "0x1F",
    "1e3",
    "2024-01-01",
    "a: b",
    "a:b",
    "[x]",
    "{x}",
    "-",
    "- a",
    "-a",
    "@at",
    "&anchor",
    "*alias",
    "!tag",
    "%dir",
    "`tick",
    "|",
    ">",
    "?",
    "? a",
    "'quoted'",
    '"double"',
    "back\\slash",
    'mixed "\\"',
    "a #not-a-comment",
    "a#b",
    "<<",
    "=",
    "...",
    "---",
    "café",
    "日本語",
    "🏷 label",
    "a\u00a0b",
    "Ünïcödé: yes",
]

valid_tags = st.text(min_size=1, max_size=MAX_TAG_CHARS).filter(lambda t: check_tag(t) is None)


@contextmanager
def opened(path: Path | str, flags: int = os.O_RDONLY) -> Iterator[int]:
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def plain_file(tmp_path: Path) -> Path:
    """A regular file on a filesystem that takes ``user.*`` extended attributes."""
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF")
    try:
        os.setxattr(path, "user.probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("the temporary directory's filesystem has no user extended attributes")
        raise
    return path


def unsupported_fd_path() -> str:
    """A regular file on a filesystem without extended attributes (procfs), or a skip."""
    path = "/proc/self/stat"
    try:
        os.getxattr(path, XATTR)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return path
    pytest.skip("no filesystem without extended attributes at hand")


# Names and tags


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.md", True), ("Notes.MD", True), ("x.Markdown", True), ("a.txt", False), ("a.md.bak", False), ("md", False)],
)
def test_is_markdown(name: str, expected: bool) -> None:
    assert is_markdown(name) is expected


@pytest.mark.parametrize("tag", ["draft", "a b", "café", "日本語", "[b]x[/b]", "a/b", "x" * MAX_TAG_CHARS, "yes"])
def test_check_tag_accepts(tag: str) -> None:
    assert check_tag(tag) is None


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * (MAX_TAG_CHARS + 1), "longer"),
        ("a,b", "comma"),
        ("a\nb", "control"),
        ("a\x1b[31mb", "control"),
        ("a\u202eb", "control"),
        ("a\u2066b", "control"),
        ("a\u200bb", "control"),
        ("a\u2028b", "control"),
        ("a\x00b", "control"),
        (" a", "whitespace"),
        ("a ", "whitespace"),
        ("#a", "'#'"),
    ],
)
def test_check_tag_refuses(tag: str, reason: str) -> None:
    found = check_tag(tag)
    assert found is not None
    assert reason in found


def test_decode_is_tolerant() -> None:
    assert decode_tags(b" a , b,,a,\t,c") == ["a", "b", "c"]
    assert decode_tags(b"") == []


def test_decode_junk_bytes_drops_unsafe_tags() -> None:
    assert decode_tags(b"\xff\xfeok,\x1b[31mred,b,#x,\xe2\x80\xaeevil,\x00") == ["\ufffd\ufffdok", "b"]


def test_encode_joins_and_refuses_invalid() -> None:
    assert encode_tags(["a", "b c", "a", "日本"]) == "a,b c,日本".encode()
    assert encode_tags([]) == b""
    with pytest.raises(TagError, match="comma"):
        encode_tags(["ok", "a,b"])
    with pytest.raises(TagError, match=f"at most {MAX_TAGS}"):
        encode_tags([f"t{i}" for i in range(MAX_TAGS + 1)])


def test_merged() -> None:
    assert merged(["a", "b"], add=["c", "a", "d"], remove=["b"]) == ["a", "c", "d"]
    assert merged(["a", "a"]) == ["a"]
    assert merged([], remove=["x"]) == []


# Reading front matter


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"---\ntags: [a, b]\n---\nbody", ["a", "b"]),
        (b"---\ntitle: T\ntags:\n  - a\n  - b\n---\n", ["a", "b"]),
        (b"---\ntags:\n- a\n- b\n---\n", ["a", "b"]),
        (b"---\ntags: a, b c\n---\n", ["a", "b c"]),
        (b"---\ntags: a b\n---\n", ["a", "b"]),
        (b"---\ntags: [2024, true, x, [y], {z: 1}]\n---\n", ["2024", "x"]),
        (b"\xef\xbb\xbf---\r\ntags: [a]\r\n---\r\n", ["a"]),
        (b"---   \ntags: [a]\n---  \n", ["a"]),
        (b"---\ntags: [a]\n---", ["a"]),
        (b"---\ntags: [a, a, ' b ', '', 'x,y', '#h']\n---\n", ["a", "b"]),
    ],
)
def test_front_matter_tags_shapes(data: bytes, expected: list[str]) -> None:
    assert front_matter_tags(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"# Title\ntags: [a]\n",
        b"---\ntags: [a]\n",  # a rule at the top and no closing line: no front matter
        b"---\n---\n",
        b"---\ntitle: x\n---\n",
        b"---\ntags: 12\n---\n",
        b"---\ntags: {a: 1}\n---\n",
        b"---\n- tags\n---\n",
        b"---\ntags: [a\n---\n",
        b"---\ndate: 2024-13-45\ntags: [a]\n---\n",
        b"---\ntags: [a]\n---\n".replace(b"a", b"\xff"),
        b"---\ntags: !!python/object:os.system [a]\n---\n",
        b"---\n" + b"[" * 5000 + b"\n---\n",
        b"---\nx: " + b"9" * 5000 + b"\ntags: [a]\n---\n",
        b"---\ntags: [0x" + b"f" * 4000 + b"]\n---\n",
        b"\x00\x01\x02---\n",
        b"tags: [a]\n---\n",
        b"---\n" + b"x: 1\n" * (FRONT_MATTER_LIMIT // 5) + b"tags: [a]\n---\n",
    ],
)
def test_front_matter_tags_finds_none(data: bytes) -> None:
    assert front_matter_tags(data) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_front_matter_tags_never_raises(junk: bytes) -> None:
    assert isinstance(front_matter_tags(b"---\n" + junk + b"\n---\n"), list)


# Writing front matter


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"# Title\n\ntext\n", b"---\ntags:\n  - x\n  - y\n---\n# Title\n\ntext\n"),
        (b"", b"---\ntags:\n  - x\n  - y\n---\n"),
        (b"---\ntitle: T\n---\nbody\n", b"---\ntitle: T\ntags:\n  - x\n  - y\n---\nbody\n"),
        (b"---\n---\nbody\n", b"---\ntags:\n  - x\n  - y\n---\nbody\n"),
        (b"---\n# a comment only\n---\n", b"---\n# a comment only\ntags:\n  - x\n  - y\n---\n"),
        (b"---\na: 1\ntags: [a, b]\nz: 2\n---\n", b"---\na: 1\ntags:\n  - x\n  - y\nz: 2\n---\n"),
        (b"---\ntags: [a,\n  b]  # two\nz: 2\n---\n", b"---\ntags:\n  - x\n  - y\nz: 2\n---\n"),
        (b"---\ntags:\n  - a\n  - b\n# about z\nz: 2\n---\n", b"---\ntags:\n  - x\n  - y\n# about z\nz: 2\n---\n"),
        (b"---\ntags:\n- a\n\nz: 2\n---\n", b"---\ntags:\n  - x\n  - y\n\nz: 2\n---\n"),
        (b"---\ntags: a, b\n---\n", b"---\ntags:\n  - x\n  - y\n---\n"),
        (b"---\ntags:\n---\n", b"---\ntags:\n  - x\n  - y\n---\n"),
        (b"---\ntags: [a]\n", b"---\ntags:\n  - x\n  - y\n---\n---\ntags: [a]\n"),
        (
            b"---\r\ntitle: T\r\ntags: [a]\r\n---\r\nbody\r\n",
            b"---\r\ntitle: T\r\ntags:\r\n  - x\r\n  - y\r\n---\r\nbody\r\n",
        ),
        (b"text\r\nmore\r\n", b"---\r\ntags:\r\n  - x\r\n  - y\r\n---\r\ntext\r\nmore\r\n"),
        (b"\xef\xbb\xbftext\n", b"\xef\xbb\xbf---\ntags:\n  - x\n  - y\n---\ntext\n"),
        (b"\xef\xbb\xbf---\r\ntags: [a]\r\n---\r\n", b"\xef\xbb\xbf---\r\ntags:\r\n  - x\r\n  - y\r\n---\r\n"),
        (b"---\ndesc: |+\n  kept\n\n---\n", b"---\ndesc: |+\n  kept\n\ntags:\n  - x\n  - y\n---\n"),
    ],
)
def test_with_front_matter_tags_shapes(data: bytes, expected: bytes) -> None:
    result = with_front_matter_tags(data, ["x", "y"])
    assert result == expected
    assert front_matter_tags(result) == ["x", "y"]
    assert with_front_matter_tags(result, ["x", "y"]) == result


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"---\na: 1\ntags: [a, b]\nz: 2\n---\nbody", b"---\na: 1\nz: 2\n---\nbody"),
        (b"---\na: 1\ntags:\n  - a\n---\n", b"---\na: 1\n---\n"),
        (b"---\ntags: [a]\n---\nbody\n", b"---\n---\nbody\n"),  # the emptied front matter stays
        (b"---\r\ntags: a\r\n---\r\n", b"---\r\n---\r\n"),
        (b"no front matter\n", b"no front matter\n"),
        (b"---\ntitle: T\n---\n", b"---\ntitle: T\n---\n"),
    ],
)
def test_no_tags_removes_the_entry(data: bytes, expected: bytes) -> None:
    assert with_front_matter_tags(data, []) == expected


def test_only_the_tags_lines_change() -> None:
    head = b"---\ntitle: 'A: b'  # note\nlist:\n  - 1\nnested:\n  k: [v]\n"
    tail = b"when: 2024-01-01\n---\n# Body\n\n---\n\nA rule above, and tags: [not, these]\n\x0c\r\n"
    result = with_front_matter_tags(head + b"tags: [old]\n" + tail, ["new", "yes"])
    assert result == head + b'tags:\n  - new\n  - "yes"\n' + tail


@pytest.mark.parametrize("tag", HOSTILE)
def test_hostile_tag_round_trips(tag: str) -> None:
    assert check_tag(tag) is None
    for data in (b"", b"---\ntitle: T\n---\n", b"---\ntags: [a]\nz: 1\n---\n"):
        result = with_front_matter_tags(data, ["before", tag, "after"])
        assert front_matter_tags(result) == ["before", tag, "after"]
        front_matter = result[4 : result.index(b"\n---\n", 3) + 1]
        assert yaml.safe_load(front_matter)["tags"] == ["before", tag, "after"]


def test_all_hostile_tags_at_once() -> None:
    result = with_front_matter_tags(b"body\n", HOSTILE)
    assert front_matter_tags(result) == HOSTILE
    assert result.endswith(b"---\nbody\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_tags, max_size=8, unique=True))
def test_any_valid_tags_round_trip(tags: list[str]) -> None:
    for data in (b"text\n", b"---\nz: 1\ntags: [a]\n---\ntext\n"):
        assert front_matter_tags(with_front_matter_tags(data, tags)) == tags


def test_front_matter_at_the_size_limit() -> None:
    def sized(total: int) -> bytes:
        head, tail = b"---\ntags: [a]\npad: ", b"\n---\n"
        return head + b"x" * (total - len(head) - len(tail)) + tail

    assert front_matter_tags(sized(FRONT_MATTER_LIMIT)) == ["a"]
    assert front_matter_tags(sized(FRONT_MATTER_LIMIT) + b"body") == ["a"]
    assert front_matter_tags(sized(FRONT_MATTER_LIMIT + 1)) == []
    cut = sized(FRONT_MATTER_LIMIT)[:-1] + b"-rule\n"  # "----rule" is no closing line, even when cut after "---"
    assert front_matter_tags(cut[: FRONT_MATTER_LIMIT + 1]) == []
    assert b"tags" not in with_front_matter_tags(sized(FRONT_MATTER_LIMIT), [])
    with pytest.raises(TagError, match="would be longer than 64 KiB"):
        with_front_matter_tags(sized(FRONT_MATTER_LIMIT), ["a", "b"])
    with pytest.raises(TagError, match="longer than 64 KiB"):
        with_front_matter_tags(sized(FRONT_MATTER_LIMIT + 1), ["b"])


def test_numbers_read_as_tags_are_written_back_as_strings() -> None:
    data = b"---\ntags: [2024, draft]\n---\n"
    result = with_front_matter_tags(data, merged(front_matter_tags(data), add=["new"]))
    assert result == b'---\ntags:\n  - "2024"\n  - draft\n  - new\n---\n'


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k != "tags"), yaml_values, max_size=5),
    st.sampled_from(["none", "flow", "block", "string", "empty"]),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
    st.lists(valid_tags, max_size=4, unique=True),
)
def test_edits_keep_every_other_value(
    mapping: dict[str, object], style: str, at: int, flow: bool, tags: list[str]
) -> None:
    entry = {
        "none": "",
        "flow": "tags: [old, 'other one']  # note\n",
        "block": "tags:\n  - old\n  - other\n\n# about the next key\n",
        "string": "tags: old, other\n",
        "empty": "tags:\n",
    }[style]
    lines = yaml.safe_dump(mapping, allow_unicode=True, default_flow_style=flow, sort_keys=False).splitlines(True)
    lines = [] if mapping == {} else lines
    body = "".join(lines[:at]) + entry + "".join(lines[at:])
    try:
        original = yaml.safe_load(body)
    except yaml.YAMLError:
        return  # the entry landed inside a multi-line value
    data = b"---\n" + body.encode() + b"---\n\nText.\n"
    try:
        result = with_front_matter_tags(data, tags)
    except TagError:
        # A flow mapping at the root cannot take a tags line; tags that are a mapping are not replaced.
        assert flow or isinstance((original or {}).get("tags"), dict)
        return
    assert result.endswith(b"\n---\n\nText.\n")
    assert front_matter_tags(result) == tags
    edited = yaml.safe_load(result[4 : result.index(b"\n---\n\nText.") + 1]) or {}
    assert {k: v for k, v in edited.items() if k != "tags"} == {
        k: v for k, v in (original or {}).items() if k != "tags"
    }


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(valid_tags, max_size=3, unique=True))
def test_with_front_matter_tags_raises_only_tag_error(junk: bytes, tags: list[str]) -> None:
    refusals = []
    for data in (junk, b"---\n" + junk + b"\n---\n", b"---\ntags: [a]\n" + junk + b"\n---\n"):
        try:
            result = with_front_matter_tags(data, tags)
        except TagError as exc:
            refusals.append(str(exc))
            continue
        assert front_matter_tags(result) == tags
    assert all("\n" not in message for message in refusals)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"---\ntags: [a\n---\n", "not valid YAML at line 3"),
        (b"---\ntitle: x: y\n---\n", "not valid YAML"),
        (b"---\n\tx: 1\n---\n", "not valid YAML"),
        (b"---\nx: *nowhere\n---\n", "not valid YAML"),
        (b"---\n- a\n---\n", "not a YAML mapping"),
        (b"---\njust text\n---\n", "not a YAML mapping"),
        (b"---\n~\n---\n", "not a YAML mapping"),
        (b"---\n# comment\n[a]\n---\n", "not a YAML mapping"),
        (b"---\ntags: a\ntags: b\n---\n", "more than one tags key"),
        (b"---\ntags: &t [a]\nother: *t\n---\n", "without changing the rest"),
        (b"---\n{title: T, tags: [a]}\n---\n", "without changing the rest"),
        (b"---\n  title: T\n---\n", "without changing the rest"),
        (b"text \xff\n", "not UTF-8"),
        (b"---\ntags: [a]\n---\n\xc3(", "not UTF-8"),
        (b"---\n" + b"x: 1\n" * (FRONT_MATTER_LIMIT // 5) + b"---\n", "longer than 64 KiB"),
    ],
)
def test_with_front_matter_tags_refuses(data: bytes, problem: str) -> None:
    with pytest.raises(TagError, match=problem) as caught:
        with_front_matter_tags(data, ["x"])
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("tags", "problem"), [(["a,b"], "comma"), (["a\nb"], "control"), (["#h"], "'#'")])
def test_with_front_matter_tags_refuses_bad_tags(tags: list[str], problem: str) -> None:
    with pytest.raises(TagError, match=problem):
        with_front_matter_tags(b"text\n", tags)


# The extended attribute


def test_xattr_set_read_remove(plain_file: Path) -> None:
    with opened(plain_file) as fd:
        assert xattr_value(fd) is None
        assert read_xattr_tags(fd) == []
        set_xattr_value(fd, encode_tags(["a", "b c", "日本"]))
        assert os.getxattr(plain_file, XATTR) == "a,b c,日本".encode()
        assert read_xattr_tags(fd) == ["a", "b c", "日本"]
        set_xattr_value(fd, None)
        assert xattr_value(fd) is None
        set_xattr_value(fd, None)  # removing an absent attribute is fine


def test_xattr_written_by_others_is_read_tolerantly(plain_file: Path) -> None:
    os.setxattr(plain_file, XATTR, b" a ,b,,\x1b]0;x\x07,\xff")
    with opened(plain_file) as fd:
        assert read_xattr_tags(fd) == ["a", "b", "\ufffd"]


def test_xattr_too_large_is_one_line(plain_file: Path) -> None:
    with opened(plain_file) as fd, pytest.raises(TagError, match="too large") as caught:
        set_xattr_value(fd, b"x" * 70_000, name="'report.pdf'")
    assert "'report.pdf'" in str(caught.value)


def test_xattr_unsupported_is_one_line() -> None:
    with opened(unsupported_fd_path()) as fd:
        with pytest.raises(TagError, match="does not support extended attributes"):
            xattr_value(fd, name="stat")
        with pytest.raises(TagError, match="does not support extended attributes"):
            read_xattr_tags(fd)


# tags_of


def test_tags_of_reads_both_conventions(tmp_path: Path, plain_file: Path) -> None:
    (tmp_path / "note.md").write_bytes(b"---\ntags: [idea, draft]\n---\n# Note\n")
    (tmp_path / "NOTE2.MARKDOWN").write_bytes(b"# no front matter\n")
    os.setxattr(plain_file, XATTR, b"invoice,2024")
    os.setxattr(tmp_path / "note.md", XATTR, b"ignored")
    with opened(tmp_path, os.O_RDONLY | os.O_DIRECTORY) as dir_fd:
        assert tags_of(dir_fd, "note.md") == ["idea", "draft"]
        assert tags_of(dir_fd, "NOTE2.MARKDOWN") == []
        assert tags_of(dir_fd, plain_file.name) == ["invoice", "2024"]


def test_tags_of_front_matter_past_the_limit_is_absent(tmp_path: Path) -> None:
    padding = b"pad: " + b"x" * 70 + b"\n"
    (tmp_path / "long.md").write_bytes(
        b"---\n" + padding * (FRONT_MATTER_LIMIT // len(padding) + 1) + b"tags: [a]\n---\n"
    )
    (tmp_path / "short.md").write_bytes(b"---\ntags: [a]\n---\n" + b"text\n" * 100_000)
    with opened(tmp_path, os.O_RDONLY | os.O_DIRECTORY) as dir_fd:
        assert tags_of(dir_fd, "long.md") == []
        assert tags_of(dir_fd, "short.md") == ["a"]


def test_tags_of_does_not_follow_a_symlink(tmp_path: Path, plain_file: Path) -> None:
    os.setxattr(plain_file, XATTR, b"secret")
    (tmp_path / "target.md").write_bytes(b"---\ntags: [secret]\n---\n")
    (tmp_path / "link").symlink_to(plain_file)
    (tmp_path / "link.md").symlink_to(tmp_path / "target.md")
    (tmp_path / "dangling.md").symlink_to(tmp_path / "missing.md")
    with opened(tmp_path, os.O_RDONLY | os.O_DIRECTORY) as dir_fd:
        assert tags_of(dir_fd, "link") == []
        assert tags_of(dir_fd, "link.md") == []
        assert tags_of(dir_fd, "dangling.md") == []


def test_tags_of_a_fifo_or_directory_is_empty_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")
    (tmp_path / "dir.md").mkdir()
    with opened(tmp_path, os.O_RDONLY | os.O_DIRECTORY) as dir_fd:
        assert tags_of(dir_fd, "pipe.md") == []
        assert tags_of(dir_fd, "dir.md") == []


def test_tags_of_on_a_filesystem_without_xattrs_is_empty() -> None:
    path = unsupported_fd_path()
    with opened(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY) as dir_fd:
        assert tags_of(dir_fd, os.path.basename(path)) == []


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x"])
def test_tags_of_takes_only_a_name(tmp_path: Path, name: str) -> None:
    with opened(tmp_path, os.O_RDONLY | os.O_DIRECTORY) as dir_fd, pytest.raises(TagError, match="not the name"):
        tags_of(dir_fd, name)


def test_tags_of_a_missing_or_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with opened(tmp_path, os.O_RDONLY | os.O_DIRECTORY) as dir_fd:
        with pytest.raises(TagError, match=r"'gone\.md': cannot read its tags"):
            tags_of(dir_fd, "gone.md")
        if os.geteuid() != 0:
            locked = tmp_path / "locked.md"
            locked.write_bytes(b"---\ntags: [a]\n---\n")
            locked.chmod(0)
            with pytest.raises(TagError, match="Permission denied"):
                tags_of(dir_fd, "locked.md")
