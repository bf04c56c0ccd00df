from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.names import display_name, display_text, shell_word

# Every code point, surrogates included: os.fsdecode produces them for undecodable bytes.
ANY_CHAR = st.characters(codec=None, exclude_categories=())


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("plain.txt", "plain.txt"),
        ("[red]x[/red].txt", "[red]x[/red].txt"),
        ("esc\x1b[31mred", "esc\\x1b[31mred"),
        ("new\nline", "new\\nline"),
        ("tab\there", "tab\\there"),
        ("back\\slash", "back\\\\slash"),
        ("bell\x07", "bell\\x07"),
        ("c1\x9bcsi", "c1\\u009bcsi"),
        ("raw\udc9b", "raw\\x9b"),
        ("nbsp\xa0", "nbsp\\u00a0"),
        ("\u202eevil.txt", "\\u202eevil.txt"),
        ("\udcff\udc80.bin", "\\xff\\x80.bin"),
        ("日本語.txt", "日本語.txt"),
        ("with space", "with space"),
    ],
)
def test_display_name(name: str, shown: str) -> None:
    assert display_name(name) == shown


@given(st.text(alphabet=ANY_CHAR))
def test_display_name_is_always_printable(name: str) -> None:
    shown = display_name(name)
    assert shown.isprintable()
    assert "\x1b" not in shown
    assert "\n" not in shown


@given(st.text(alphabet=ANY_CHAR), st.text(alphabet=ANY_CHAR))
def test_display_name_keeps_distinct_names_distinct(a: str, b: str) -> None:
    if a != b:
        assert display_name(a) != display_name(b)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain\ntwo lines\n", "plain\ntwo lines\n"),
        ("[red]x[/red]", "[red]x[/red]"),
        ("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"),
        ('print("a\\n")', 'print("a\\n")'),
        ("\tindented\n+\tin a diff\nab\tc", "        indented\n+       in a diff\nab      c"),
        ("windows\r\nline", "windows\\r\nline"),
        ("over\rwrite", "over\\rwrite"),
        ("del\x7f c1\x9b", "del\\x7f c1\\u009b"),
        ("\u202eevil \u2028sep", "\\u202eevil \\u2028sep"),
        ("raw\udcff lone\ud800", "raw\\xff lone\\ud800"),
        ("\x1b\tafter", "\\x1b    after"),
        ("日本語\n", "日本語\n"),
    ],
)
def test_display_text(text: str, shown: str) -> None:
    assert display_text(text) == shown


def test_display_text_tab_size() -> None:
    assert display_text("a\tb\n\tc", tab_size=4) == "a   b\n    c"


@given(st.text(alphabet=ANY_CHAR))
def test_display_text_keeps_lines_and_is_otherwise_printable(text: str) -> None:
    shown = display_text(text)
    assert shown.count("\n") == text.count("\n")
    assert all(line.isprintable() for line in shown.split("\n"))
    assert "\x1b" not in shown
    assert "\t" not in shown


@pytest.mark.parametrize(
    "word",
    ["plain", "it's", "a\x1b[31mb", "task\nwith\x07bell", "café", "bad\udcffbyte", "back\\slash\x01", "q'uote\x02f"],
)
def test_a_shell_word_is_printable_and_bash_reads_it_back(word: str) -> None:
    quoted = shell_word(word)
    assert quoted.isprintable()
    read = subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True, check=True).stdout
    assert read == word.encode("utf-8", errors="surrogateescape")


def test_a_lone_surrogate_that_no_name_holds_is_still_quoted() -> None:
    assert shell_word("a\ud800b") == "$'a\\xed\\xa0\\x80b'"


def _in_a_name(ch: str) -> bool:
    """Whether a name read from the file system may hold ``ch``: anything but a NUL, and of the
    surrogates only those an undecodable byte is read as (U+DC80 to U+DCFF)."""
    return ch != "\0" and (not 0xD800 <= ord(ch) <= 0xDFFF or 0xDC80 <= ord(ch) <= 0xDCFF)


@settings(max_examples=60, deadline=None)
@given(st.text(ANY_CHAR.filter(_in_a_name), min_size=1, max_size=12))
def test_any_name_but_a_nul_is_read_back_by_bash(word: str) -> None:
    quoted = shell_word(word)
    assert quoted.isprintable()
    read = subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True, check=True).stdout
    assert read == word.encode("utf-8", errors="surrogateescape")


def test_the_move_aside_hint_reads_back_for_any_name(tmp_path: Path) -> None:
    from engine.workspace.state import move_aside_hint

    for name in ("plain", "it's", "esc\x1b[31m"):
        path = tmp_path / name
        hint = move_aside_hint(path)
        assert hint.isprintable()
        command = hint.split("(", 1)[1].rsplit(")", 1)[0]
        words = subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True, check=True).stdout
        assert words.split(b"\0")[:3] == [b"mv", bytes(path), bytes(path) + b".broken"]
