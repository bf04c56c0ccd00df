"""Incremental detokenization gives, at every step, the text of decoding the whole sequence."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from engine.serve.detokenize import Detokenizer, incomplete_tail
from tests.engine.tinyllm.training_support import TrainRun


def test_the_text_at_every_step_is_the_whole_decoding(pretrained: tuple[Path, TrainRun]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(pretrained[0]))

    def decode(tokens: Sequence[int]) -> str:
        return str(tokenizer.decode(list(tokens), skip_special_tokens=True))

    vocab = len(tokenizer)
    # byte pieces (partial characters), words with and without a leading space, special tokens
    text = "naïve café 文字 🎉 x = {'a': 1}\n\tdef f():\n    return 2 ** 3"
    natural = tokenizer(text, add_special_tokens=False)["input_ids"]
    rng = random.Random(7)
    sequences = [natural, natural[::-1]] + [[rng.randrange(vocab) for _ in range(60)] for _ in range(40)]
    decoded = 0
    for tokens in sequences:
        detokenizer = Detokenizer(decode)
        for end in range(len(tokens) + 1):
            assert detokenizer.text(tokens[:end]) == decode(tokens[:end]), (tokens, end)
            decoded += 1
    assert decoded > 2000


def test_a_decoder_whose_windows_are_unstable_falls_back_to_the_whole_text() -> None:
    # each decoding starts with its length: a window's text never begins like the text before it
    def decode(tokens: Sequence[int]) -> str:
        return f"{len(tokens)}:" + "".join(chr(97 + t) for t in tokens)

    detokenizer = Detokenizer(decode)
    tokens: list[int] = []
    for token in [0, 1, 2, 3, 4, 5]:
        tokens.append(token)
        assert detokenizer.text(tokens) == decode(tokens)


def test_the_first_bytes_of_an_unfinished_character_are_the_tail_held_back() -> None:
    pieces = {0: b"a", 1: b" box", 2: "日".encode(), **{10 + b: bytes([b]) for b in range(256)}}

    def spelled(text: str) -> list[int]:
        return [10 + b for b in text.encode()]

    def held(tokens: list[int]) -> int:
        return incomplete_tail(tokens, pieces.__getitem__)

    assert held([]) == 0
    assert held([0, 1, 2]) == 0  # whole characters, a multi-byte piece among them
    word = spelled("日本🎉é")  # 3 + 3 + 4 + 2 bytes
    assert [held(word[:end]) for end in range(len(word) + 1)] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, 1, 0]
    assert held([*spelled("a"), *spelled("日")[:2]]) == 2
    assert held(spelled("日")[1:]) == 0  # bytes without their lead byte: nothing to wait for
