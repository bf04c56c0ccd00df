"""The text of a growing token sequence, decoding only what changed.

Decoding a row's whole sequence at every step costs time in its length: at 500 tokens about
160 µs per row per step here, a tenth of a step for a batch of eight. :class:`Detokenizer`
decodes a window from the last point where the text was complete: the text of the tokens since
then is the window's text less the text of the tokens before them (decoded together, so a
tokenizer that drops a leading space at the start of a text drops it from both).

A run of byte tokens (SentencePiece's byte fallback) is decoded as one: while its last character is
incomplete, a tokenizer's decoder may turn the whole run, the finished characters before too, into
replacement characters. :func:`incomplete_tail` says how many tokens at the end are such a
character's first bytes, so that a caller decodes only the tokens before them until it is whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: What a partial UTF-8 sequence decodes to: text ending in it is not complete yet.
PARTIAL = "\ufffd"


def incomplete_tail(tokens: Sequence[int], token_bytes: Callable[[int], bytes]) -> int:
    """How many tokens at the end of ``tokens`` are the first bytes of a UTF-8 character not yet whole.

    Only a byte-fallback token stands for one byte of 0x80 or more (a piece of the vocabulary is
    whole characters), so at most three single-byte tokens can be such a beginning."""
    for count in range(1, min(3, len(tokens)) + 1):
        piece = token_bytes(tokens[-count])
        if len(piece) != 1 or piece[0] < 0x80:
            return 0
        if piece[0] >= 0xC0:  # the lead byte: how long its character is
            length = 2 if piece[0] < 0xE0 else 3 if piece[0] < 0xF0 else 4
            return count if length > count else 0
    return 0


class Detokenizer:
    """``text(tokens)`` is ``decode(tokens)``, for a sequence that only grows between calls."""

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._done = ""  # the text of tokens[:read], complete
        self._start = 0  # tokens[start:read] come before the window's new tokens, for context
        self._read = 0
        self._head = ""  # decode(tokens[start:read])

    def text(self, tokens: Sequence[int]) -> str:
        """Return the text of ``tokens``, which begin with every token of the previous call."""
        window = self._decode(tokens[self._start :])
        if not window.startswith(self._head):  # a decoder whose text of a window is not stable
            return self._decode(tokens)
        new = window[len(self._head) :]
        if not new or new.endswith(PARTIAL):
            return self._done + new
        self._done += new
        self._start, self._read = self._read, len(tokens)
        self._head = self._decode(tokens[self._start : self._read])
        return self._done
