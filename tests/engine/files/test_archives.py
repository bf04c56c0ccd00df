"""Archives: a round trip through each format, and hostile archives refused with one line naming the entry."""

from __future__ import annotations

import io
import os
import random
import stat
import struct
import tarfile
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest

from engine.files.archives import (
    FORMATS,
    ArchiveError,
    ArchiveLimits,
    Member,
    archive_format,
    extract_archive,
    read_members,
    write_archive,
)
from engine.workspace.sandbox import Workspace

LATIN1 = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: the name travels as its bytes
BIG = random.Random(7).randbytes(64 * 1024) * 80  # 5 MiB
SUFFIX = {"zip": ".zip", "tar.gz": ".tar.gz", "tar.xz": ".tar.xz"}
MTIME = 1_700_000_000


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "top" / "sub" / "deep").mkdir(parents=True)
    (root / "top" / "sub" / "deep" / "note.txt").write_text("deep\n")
    (root / "top" / "empty").mkdir()
    (root / "top" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "top" / "run.sh").chmod(0o755)
    (root / "top" / "link").symlink_to("sub/deep/note.txt")
    (root / "top" / "big.bin").write_bytes(BIG)
    (root / "top" / ".git").mkdir()
    (root / "top" / ".git" / "config").write_text("[core]\n")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as file:
        file.write(b"a name in latin-1\n")
    for path in [*root.rglob("*"), root / LATIN1]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    return root


def pack(root: Path, members: list[str], fmt: str, out: Path) -> Path:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with Workspace(root) as ws:
            write_archive(ws, members, fd, fmt)
    finally:
        os.close(fd)
    return out


def members_of(path: Path, fmt: str, limits: ArchiveLimits | None = None) -> list[Member]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_members(fd, fmt, limits or ArchiveLimits())
    finally:
        os.close(fd)


def unpack(path: Path, fmt: str, dest: Path, limits: ArchiveLimits | None = None) -> list[str]:
    dest.mkdir()
    fd = os.open(path, os.O_RDONLY)
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return extract_archive(fd, fmt, dest_fd, limits or ArchiveLimits())
    finally:
        os.close(fd)
        os.close(dest_fd)


def refused(path: Path, fmt: str, *needles: str, limits: ArchiveLimits | None = None) -> str:
    """Both reading and extracting refuse the archive in one line holding every needle; nothing is made."""
    with pytest.raises(ArchiveError) as caught:
        members_of(path, fmt, limits)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    dest = path.parent / f"dest-{path.name}"
    with pytest.raises(ArchiveError, match="archive entry"):
        unpack(path, fmt, dest, limits)
    assert list(dest.iterdir()) == []
    return message


def tar_of(tmp_path: Path, *entries: tarfile.TarInfo | tuple[str, bytes], fmt: str = "tar.gz") -> Path:
    """A tar built entry by entry: a ``(name, data)`` pair is a file, a TarInfo goes in as it is."""
    path = tmp_path / f"hostile{SUFFIX[fmt]}"
    with tarfile.open(path, "w:gz" if fmt == "tar.gz" else "w:xz") as tarred:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tarred.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tarred.addfile(info, io.BytesIO(entry[1]))
    return path


def tar_entry(name: str, kind: bytes, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, linkname, mode, MTIME
    return info


def zip_of(tmp_path: Path, *entries: tuple[str, bytes, int]) -> Path:
    """A zip built entry by entry: name, data and the unix mode in the external attributes (0: none)."""
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which is the point
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6))
            info.external_attr = mode << 16
            zipped.writestr(info, data)
    return path


def test_archive_format_by_suffix() -> None:
    assert archive_format("backup.ZIP") == "zip"
    assert archive_format("logs.tar.gz") == "tar.gz"
    assert archive_format("src.Tar.Xz") == "tar.xz"
    assert archive_format("notes.txt") is None
    assert archive_format("old.tgz") is None
    assert FORMATS == ("zip", "tar.gz", "tar.xz")


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(root: Path, tmp_path: Path, fmt: str) -> None:
    archive = pack(root, ["top", LATIN1], fmt, tmp_path / f"out{SUFFIX[fmt]}")
    members = members_of(archive, fmt)
    # Sorted, with .git inside a directory left out.
    assert [m.name for m in members] == [
        LATIN1,
        "top",
        "top/big.bin",
        "top/empty",
        "top/link",
        "top/run.sh",
        "top/sub",
        "top/sub/deep",
        "top/sub/deep/note.txt",
    ]
    by_name = {m.name: m for m in members}
    assert by_name["top/link"].kind == "link"
    assert by_name["top/link"].target == "sub/deep/note.txt"
    assert by_name["top/run.sh"].mode == 0o755
    assert by_name["top/sub/deep/note.txt"].mode == 0o644
    assert by_name["top/empty"].kind == "dir"
    assert by_name["top/big.bin"].size == len(BIG)

    dest = tmp_path / "dest"
    assert unpack(archive, fmt, dest) == sorted([LATIN1, "top"])
    out = dest / "top"
    assert (out / "big.bin").read_bytes() == BIG
    assert (out / "sub" / "deep" / "note.txt").read_text() == "deep\n"
    assert (dest / LATIN1).read_bytes() == b"a name in latin-1\n"
    assert os.readlink(out / "link") == "sub/deep/note.txt"
    assert (out / "empty").is_dir()
    assert list((out / "empty").iterdir()) == []
    assert not (out / ".git").exists()
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "big.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "sub").stat().st_mode) == 0o755
    for path in (out / "big.bin", out / "sub", out / "empty", dest / LATIN1):
        assert abs(path.stat().st_mtime - MTIME) <= 2  # a zip keeps two-second times
    assert abs(os.lstat(out / "link").st_mtime - MTIME) <= 2


def peaks(root: Path, tmp_path: Path, member: str, fmt: str) -> tuple[int, int]:
    """The most memory Python held while writing an archive of ``member``, and while extracting it."""
    name = member.replace("/", "-")
    tracemalloc.start()
    try:
        archive = pack(root, [member], fmt, tmp_path / f"{name}{SUFFIX[fmt]}")
        written = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        unpack(archive, fmt, tmp_path / f"dest-{name}")
        return written, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", FORMATS)
def test_large_files_are_streamed(root: Path, tmp_path: Path, fmt: str) -> None:
    # The compressors hold the same working memory for any file: what a 5 MiB file adds is its chunks.
    small_written, small_extracted = peaks(root, tmp_path, "top/run.sh", fmt)
    big_written, big_extracted = peaks(root, tmp_path, "top/big.bin", fmt)
    assert big_written - small_written < len(BIG) // 2
    assert big_extracted - small_extracted < len(BIG) // 2
    assert (tmp_path / "dest-top-big.bin" / "top" / "big.bin").read_bytes() == BIG


def test_zip_stores_a_symlink_the_way_info_zip_does(root: Path, tmp_path: Path) -> None:
    archive = pack(root, ["top/link"], "zip", tmp_path / "link.zip")
    with zipfile.ZipFile(archive) as zipped:
        (info,) = zipped.infolist()
        assert stat.S_ISLNK(info.external_attr >> 16)
        assert zipped.read(info) == b"sub/deep/note.txt"


def test_zip_stores_a_name_that_is_not_utf8_as_its_bytes(root: Path, tmp_path: Path) -> None:
    (root / "\u00e9t\u00e9.txt").write_text("summer\n")
    archive = pack(root, [LATIN1, "\u00e9t\u00e9.txt"], "zip", tmp_path / "names.zip")
    with zipfile.ZipFile(archive) as zipped:
        latin1, utf8 = zipped.infolist()
    assert latin1.flag_bits & 0x800 == 0
    assert latin1.orig_filename.encode("cp437") == b"caf\xe9.txt"
    assert utf8.flag_bits & 0x800
    assert utf8.filename == "\u00e9t\u00e9.txt"


def test_an_unknown_format_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="unknown archive format 'rar'"):
        pack(root, ["top"], "rar", tmp_path / "a.rar")
    with pytest.raises(ArchiveError, match="unknown archive format 'rar'"):
        members_of(tmp_path / "a.rar", "rar")


def test_a_whole_workspace_leaves_git_out_and_naming_git_is_refused(root: Path, tmp_path: Path) -> None:
    archive = pack(root, ["."], "tar.gz", tmp_path / "all.tar.gz")
    names = [m.name for m in members_of(archive, "tar.gz")]
    assert "top/big.bin" in names
    assert not any(".git" in name for name in names)
    with pytest.raises(ArchiveError, match=r"'top/\.git'"):
        pack(root, ["top/.git"], "zip", tmp_path / "git.zip")


def test_an_archive_written_inside_what_it_holds_leaves_itself_out(root: Path) -> None:
    archive = pack(root, ["."], "zip", root / "self.zip")
    names = [m.name for m in members_of(archive, "zip")]
    assert "top/run.sh" in names
    assert "self.zip" not in names


def test_write_refuses_a_fifo(root: Path, tmp_path: Path) -> None:
    os.mkfifo(root / "top" / "pipe")
    with pytest.raises(ArchiveError, match="'top/pipe': cannot archive a FIFO"):
        pack(root, ["top/pipe"], "tar.gz", tmp_path / "a.tar.gz")
    with pytest.raises(ArchiveError, match="'top/pipe': cannot archive a FIFO"):
        pack(root, ["top"], "zip", tmp_path / "b.zip")


def test_modes_are_sanitised_and_entries_may_come_before_their_directory(tmp_path: Path) -> None:
    archive = tar_of(
        tmp_path,
        tar_entry("d/tool", tarfile.REGTYPE, mode=0o4755),
        tar_entry("d", tarfile.DIRTYPE, mode=0o7777),
        tar_entry("d/plain", tarfile.REGTYPE, mode=0o666),
    )
    assert unpack(archive, "tar.gz", tmp_path / "dest") == ["d"]
    out = tmp_path / "dest" / "d"
    assert stat.S_IMODE((out / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "plain").stat().st_mode) == 0o644
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert out.stat().st_mtime == MTIME


def test_extraction_needs_an_empty_directory(root: Path, tmp_path: Path) -> None:
    archive = pack(root, ["top/run.sh"], "zip", tmp_path / "a.zip")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "already").write_text("here")
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open(archive, os.O_RDONLY)
    try:
        with pytest.raises(ArchiveError, match="not empty"):
            extract_archive(fd, "zip", dest_fd, ArchiveLimits())
    finally:
        os.close(fd)
        os.close(dest_fd)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("/etc/evil", "absolute name"),
        ("../evil", "climbs out"),
        ("a/../../evil", "climbs out"),
        (".git/config", "protected"),
        ("sub/.GIT/hooks/x", "protected"),
        (".routeshell/journal", "protected"),
        ("x" * 256, "longer than 255 bytes"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_names(tmp_path: Path, fmt: str, name: str, rule: str) -> None:
    if fmt == "zip":
        archive = zip_of(tmp_path, (name, b"payload", 0o100644))
    else:
        archive = tar_of(tmp_path, (name, b"payload"), fmt=fmt)
    shown = name if len(name) <= 80 else name[:60] + "..."
    refused(archive, fmt, repr(shown), rule)


@pytest.mark.parametrize(
    ("entries", "entry", "rule"),
    [
        ([tar_entry("passwd", tarfile.SYMTYPE, "/etc/passwd")], "'passwd'", "absolute path '/etc/passwd'"),
        ([tar_entry("a", tarfile.SYMTYPE, ".."), ("a/x", b"out")], "'a'", "outside the extraction directory"),
        ([tar_entry("d/l", tarfile.SYMTYPE, "../../x")], "'d/l'", "outside the extraction directory"),
        ([tar_entry("s", tarfile.SYMTYPE, "."), tar_entry("t", tarfile.SYMTYPE, "s/..")], "'t'", "'..' after a name"),
        (
            [tar_entry("a", tarfile.SYMTYPE, "."), ("a/x", b"through the link")],
            "'a/x'",
            "beneath 'a', which is a symlink",
        ),
        ([("d/f", b"1"), ("d", b"2")], "'d/f'", "beneath 'd', which is a file"),
        ([("x", b"1"), tar_entry("h", tarfile.LNKTYPE, "x")], "'h'", "hard link"),
        ([tar_entry("pipe", tarfile.FIFOTYPE)], "'pipe'", "FIFO"),
        ([tar_entry("tty", tarfile.CHRTYPE)], "'tty'", "character device"),
        ([("x", b"1"), ("./x", b"2")], "'x'", "appears twice"),
    ],
)
def test_hostile_tar_entries(
    tmp_path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], entry: str, rule: str
) -> None:
    refused(tar_of(tmp_path, *entries), "tar.gz", entry, rule)


@pytest.mark.parametrize(
    ("entries", "entry", "rule"),
    [
        ([("passwd", b"/etc/passwd", 0o120777)], "'passwd'", "absolute path '/etc/passwd'"),
        ([("up", b"../..", 0o120777)], "'up'", "outside the extraction directory"),
        ([("pipe", b"", 0o010644)], "'pipe'", "FIFO"),
        ([("x", b"1", 0), ("x", b"2", 0)], "'x'", "appears twice"),
        ([("d/", b"", 0o040755), ("d", b"2", 0)], "'d'", "appears twice"),
    ],
)
def test_hostile_zip_entries(tmp_path: Path, entries: list[tuple[str, bytes, int]], entry: str, rule: str) -> None:
    refused(zip_of(tmp_path, *entries), "zip", entry, rule)


def test_a_nul_byte_in_a_zip_name(tmp_path: Path) -> None:
    archive = zip_of(tmp_path, ("aQb", b"x", 0))
    archive.write_bytes(archive.read_bytes().replace(b"aQb", b"a\0b"))  # local header and central directory
    refused(archive, "zip", "'a\\x00b'", "NUL byte")


def test_too_many_entries(tmp_path: Path) -> None:
    archive = tar_of(tmp_path, *[(f"f{n:02}", b"") for n in range(11)])
    refused(archive, "tar.gz", "'f10'", "more than 10 entries", limits=ArchiveLimits(max_entries=10))
    assert len(members_of(archive, "tar.gz", ArchiveLimits(max_entries=11))) == 11


def zeros_zip(tmp_path: Path, mib: int) -> Path:
    path = tmp_path / "zeros.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped, zipped.open("zeros.bin", "w") as dst:
        for _ in range(mib):
            dst.write(bytes(1 << 20))
    return path


def test_zip_bomb_over_the_size_limit(tmp_path: Path) -> None:
    archive = zeros_zip(tmp_path, 20)
    limits = ArchiveLimits(max_bytes=10_000_000)
    refused(archive, "zip", "'zeros.bin'", "more than 10000000 bytes", limits=limits)


def test_zip_bomb_over_the_ratio(tmp_path: Path) -> None:
    archive = zeros_zip(tmp_path, 80)
    refused(archive, "zip", "'zeros.bin'", "more than 200 times its size", "compression bomb")
    assert members_of(archive, "zip", ArchiveLimits(max_ratio=100_000))[0].size == 80 << 20


def test_a_header_that_understates_the_size_unpacks_no_more(tmp_path: Path) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("big.bin", bytes(1 << 20))
    data = bytearray(archive.read_bytes())
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, 1000)  # the central directory's size
    archive.write_bytes(bytes(data))
    assert [m.size for m in members_of(archive, "zip")] == [1000]
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError, match=r"big\.bin") as caught:
        unpack(archive, "zip", dest)
    assert "\n" not in str(caught.value)
    written = dest / "big.bin"
    assert not written.exists() or written.stat().st_size <= 1000


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_archive(root: Path, tmp_path: Path, fmt: str) -> None:
    archive = pack(root, ["top/sub", "top/run.sh", LATIN1], fmt, tmp_path / f"out{SUFFIX[fmt]}")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=f"not a valid {fmt} archive") as caught:
        members_of(archive, fmt)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_bytes(tmp_path: Path, fmt: str) -> None:
    archive = tmp_path / f"noise{SUFFIX[fmt]}"
    archive.write_bytes(random.Random(3).randbytes(4096))
    with pytest.raises(ArchiveError, match=f"not a valid {fmt} archive"):
        members_of(archive, fmt)
    with pytest.raises(ArchiveError, match=f"not a valid {fmt} archive"):
        unpack(archive, fmt, tmp_path / "dest")
