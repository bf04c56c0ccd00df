"""The TinyLLM tokenizer: exact round trips, the special ids, the transformers twin that gives the
SentencePiece ids, the chat template and its assistant mask, and every broken tokenizer directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ExitCode
from engine.tinyllm.errors import TrainInputError
from engine.tinyllm.presets import PRESETS
from engine.tinyllm.tokenizer import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    TokenizerSummary,
    copy_tokenizer_files,
    load_tokenizer,
    stop_token_ids,
    train_tokenizer,
)

STDLIB = Path(textwrap.__file__).parent
TRAIN_FILES = ("textwrap.py", "shlex.py", "fnmatch.py", "json/decoder.py", "json/encoder.py")
# Files the tokenizer never saw: the SentencePiece and transformers ids must agree on them too.
UNSEEN_FILES = ("argparse.py", "html/parser.py", "email/_header_value_parser.py")
PROSE = (
    "The quick brown fox jumps over the lazy dog. What is 2+3? The answer is 5.\n\n"
    "Résumé: naïve café, 中文文本, 日本語のテキスト, emoji 😀🚀.\n"
)

ROUND_TRIPS = [
    "",
    "def f(x):\n    return x + 1\n",
    "\tif x:\n\t\treturn  'tabs'\n",
    "   leading spaces and trailing spaces   \n",
    "windows\r\nline\r\nendings\r\n",
    "many\n\n\n\nnewlines\n\n",
    "中文和日本語が混ざる文章。",
    "emoji 😀 🚀 👩‍💻 and a flag 🇫🇷",
    "<s>literal control text</s> and <pad> <unk>",
    "<|user|>\nhi\n<|sep|>\n<|assistant|>\n",
    "zero-width\u200bspace, nbsp\u00a0here, combining e\u0301",
    "a" * 5000,
    "        " * 40 + "deep",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TokenizerSummary:
    texts = [(STDLIB / name).read_text(encoding="utf-8") for name in TRAIN_FILES] + [PROSE * 20]
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    return train_tokenizer(iter(texts), out, vocab_size=PRESETS["nano"].vocab_size)


@pytest.fixture(scope="module")
def tokenizer(trained: TokenizerSummary) -> Any:
    return load_tokenizer(trained.path)


@pytest.fixture(scope="module")
def processor(trained: TokenizerSummary) -> Any:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(trained.path / "tokenizer.model"))


def test_summary_and_files(trained: TokenizerSummary, tokenizer: Any, processor: Any) -> None:
    assert trained.vocab_size == PRESETS["nano"].vocab_size
    assert trained.sentences > 0
    assert trained.seconds > 0
    names = {path.name for path in trained.path.iterdir()}
    assert {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"} <= names
    assert len(tokenizer) == processor.get_piece_size() == trained.vocab_size
    # Nothing of the staging directory is left beside the tokenizer.
    assert [path.name for path in trained.path.parent.iterdir()] == ["tokenizer"]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_round_trip_is_exact_and_ids_match(text: str, tokenizer: Any, processor: Any) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids == processor.encode(text)
    assert tokenizer.decode(ids) == text
    assert processor.decode(ids) == text


@pytest.mark.parametrize("name", UNSEEN_FILES)
def test_unseen_python_source_round_trips(name: str, tokenizer: Any, processor: Any) -> None:
    text = (STDLIB / name).read_text(encoding="utf-8")
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids == processor.encode(text)
    assert tokenizer.decode(ids) == text


def test_whitespace_runs_are_cheap(tokenizer: Any) -> None:
    assert tokenizer.tokenize("        ") == ["▁▁▁▁▁▁▁▁"]
    assert tokenizer.tokenize("\n\n") == ["\n\n"]
    # An indented line costs one token for its indentation, whatever its depth.
    assert tokenizer.tokenize("        return")[0] == "▁▁▁▁▁▁▁▁"
    assert "\t" in tokenizer.get_vocab()


def test_special_token_ids(tokenizer: Any) -> None:
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (
        0,
        1,
        2,
        3,
    )
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<pad>", "<s>", "</s>", "<unk>"]
    ids = [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS]
    assert ids == [4, 5, 6, 7]
    for token, token_id in zip(SPECIAL_TOKENS, ids, strict=True):
        assert tokenizer.encode(token, add_special_tokens=False) == [token_id]
        # Never split, even glued to other text.
        assert token_id in tokenizer.encode(f"x{token}y", add_special_tokens=False)
    # "</s>" written in a document is text, not the end of the sequence.
    assert 2 not in tokenizer.encode("<p>old</s>", add_special_tokens=False)
    assert tokenizer.encode("hello", add_special_tokens=False) == tokenizer.encode("hello")


def test_stop_token_ids(tokenizer: Any) -> None:
    assert stop_token_ids(tokenizer) == [2, tokenizer.convert_tokens_to_ids("<|sep|>")]


def test_auto_tokenizer_loads_offline_in_a_fresh_process(trained: TokenizerSummary, processor: Any) -> None:
    text = "def f(x):\n\treturn '中文 😀'\r\n"
    script = (
        "import json, sys\n"
        "from transformers import AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1], legacy=False)\n"
        "messages = [{'role': 'user', 'content': 'hi'}]\n"
        "print(json.dumps({'ids': tok.encode(sys.argv[2], add_special_tokens=False), 'size': len(tok),\n"
        "  'chat': tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)}))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", script, str(trained.path), text],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ids"] == processor.encode(text)
    assert result["size"] == processor.get_piece_size()
    assert result["chat"] == "<|user|>\nhi\n<|sep|>\n<|assistant|>\n"


def test_chat_template_renders_the_original_format(tokenizer: Any) -> None:
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|system|>\nBe brief.\n<|sep|>\n<|user|>\nWhat is 2+3?\n<|sep|>\n<|assistant|>\n"
    with_reply = [*messages, {"role": "assistant", "content": "5"}]
    assert tokenizer.apply_chat_template(with_reply, tokenize=False) == (
        "<|system|>\nBe brief.\n<|sep|>\n<|user|>\nWhat is 2+3?\n<|sep|>\n<|assistant|>\n5\n<|sep|>\n"
    )
    no_system = [{"role": "user", "content": "hi"}]
    assert tokenizer.apply_chat_template(no_system, tokenize=False) == "<|user|>\nhi\n<|sep|>\n"
    assert (
        tokenizer.apply_chat_template(no_system, tokenize=False, add_generation_prompt=True)
        == "<|user|>\nhi\n<|sep|>\n<|assistant|>\n"
    )


def test_unknown_chat_role_is_refused(tokenizer: Any) -> None:
    with pytest.raises(Exception, match="unknown chat role tool"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_assistant_mask_covers_the_reply_and_its_sep_only(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "You answer in one line."},
        {"role": "user", "content": "What is 2+3?"},
        {"role": "assistant", "content": "The answer is 5."},
        {"role": "user", "content": "And 中文?"},
        {"role": "assistant", "content": "    indented 😀 reply"},
    ]
    out = tokenizer.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    assert ids == tokenizer.encode(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
    # Group the masked tokens into runs: one per assistant turn, each exactly content + "\n<|sep|>".
    runs: list[list[int]] = []
    for index, flag in enumerate(mask):
        if flag and (index == 0 or not mask[index - 1]):
            runs.append([])
        if flag:
            runs[-1].append(ids[index])
    assert [tokenizer.decode(run) for run in runs] == ["The answer is 5.\n<|sep|>", "    indented 😀 reply\n<|sep|>"]
    unmasked = tokenizer.decode([token for token, flag in zip(ids, mask, strict=True) if not flag])
    assert unmasked == (
        "<|system|>\nYou answer in one line.\n<|sep|>\n<|user|>\nWhat is 2+3?\n<|sep|>\n<|assistant|>\n\n"
        "<|user|>\nAnd 中文?\n<|sep|>\n<|assistant|>\n\n"
    )


def test_copy_into_a_checkpoint_loads(trained: TokenizerSummary, tmp_path: Path, tokenizer: Any) -> None:
    checkpoint = tmp_path / "checkpoint"
    copy_tokenizer_files(trained.path, checkpoint)
    assert (checkpoint / "tokenizer.model").is_file()
    copied = load_tokenizer(checkpoint)
    assert copied.encode("def f():\n\tpass\n") == tokenizer.encode("def f():\n\tpass\n")
    assert copied.chat_template == CHAT_TEMPLATE


def test_small_corpus_gives_a_smaller_vocabulary(tmp_path: Path) -> None:
    summary = train_tokenizer(["hello world\n", "hello there\n"], tmp_path / "tok", vocab_size=4000)
    assert summary.vocab_size < 4000
    tokenizer = load_tokenizer(summary.path)
    assert len(tokenizer) == summary.vocab_size
    text = "unseen ünïcode 中文 😀\ttext"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_many_characters_in_a_small_vocabulary(tmp_path: Path) -> None:
    # Over 2,000 distinct CJK characters do not fit in 600 pieces: the rare ones go to bytes.
    text = "中文字符测试 " * 50 + "".join(chr(0x4E00 + index) for index in range(2000))
    summary = train_tokenizer([text], tmp_path / "tok", vocab_size=600)
    tokenizer = load_tokenizer(summary.path)
    assert summary.vocab_size <= 600
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_training_into_an_empty_directory_and_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    first = train_tokenizer(["first corpus\n" * 10], out, vocab_size=600)
    first_ids = load_tokenizer(out).encode("first corpus")
    # A training run keeps its marker beside the tokenizer: retraining replaces only the tokenizer.
    (out / "routeshell-train.json").write_text("{}", encoding="utf-8")
    (out / "chat_template.jinja").unlink()
    second = train_tokenizer(["second corpus\n" * 10], out, vocab_size=600)
    assert (out / "routeshell-train.json").read_text(encoding="utf-8") == "{}"
    assert (out / "chat_template.jinja").is_file()
    assert load_tokenizer(out).encode("first corpus") != first_ids
    assert (first.path, second.path) == (out, out)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


def test_an_out_that_is_a_symlink_to_an_empty_directory_receives_the_tokenizer(tmp_path: Path) -> None:
    from tests.helpers import run_routeshell

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in TRAIN_FILES:
        (corpus / Path(name).name).write_bytes((STDLIB / name).read_bytes())
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to("target")
    result = run_routeshell("train", "tokenizer", "--preset", "nano", "--data", str(corpus),
                            "--out", str(tmp_path / "link"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link").is_symlink()
    assert load_tokenizer(tmp_path / "target").decode(load_tokenizer(tmp_path / "target").encode("x = 1")) == "x = 1"


@pytest.mark.parametrize("texts", [[], ["", ""]])
def test_empty_corpus(tmp_path: Path, texts: list[str]) -> None:
    with pytest.raises(TrainInputError, match="the corpus is empty") as err:
        train_tokenizer(texts, tmp_path / "tok", vocab_size=1000)
    assert err.value.exit_code == ExitCode.USAGE
    assert not (tmp_path / "tok").exists()
    assert list(tmp_path.iterdir()) == []


def test_vocabulary_too_small(tmp_path: Path) -> None:
    with pytest.raises(TrainInputError, match="tokenizer vocabulary 100 is too small"):
        train_tokenizer(["text\n"], tmp_path / "tok", vocab_size=100)


def test_error_while_reading_the_corpus_comes_through(tmp_path: Path) -> None:
    def corpus() -> Any:
        yield "some text\n"
        raise TrainInputError("data.txt: not UTF-8 text")

    with pytest.raises(TrainInputError, match=r"data\.txt: not UTF-8 text"):
        train_tokenizer(corpus(), tmp_path / "tok", vocab_size=1000)
    assert list(tmp_path.iterdir()) == []


def _break_json(path: Path) -> None:
    (path / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": ', encoding="utf-8")


def _foreign_tokenizer(path: Path) -> None:
    data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab["<s>"], vocab["<pad>"] = vocab["<pad>"], vocab["<s>"]
    for added in data["added_tokens"]:
        added["id"] = {0: 1, 1: 0}.get(added["id"], added["id"])
    (path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda path: None, "no tokenizer directory"),
        (lambda path: path.mkdir(), "no tokenizer.json"),
        (_break_json, "corrupt tokenizer"),
        (lambda path: (path / "tokenizer_config.json").write_text("{not json", encoding="utf-8"), "corrupt tokenizer"),
        (_foreign_tokenizer, "not a TinyLLM tokenizer"),
    ],
)
def test_broken_tokenizer_directory(trained: TokenizerSummary, tmp_path: Path, damage: Any, message: str) -> None:
    path = tmp_path / "tokenizer"
    if message not in ("no tokenizer directory", "no tokenizer.json"):
        copy_tokenizer_files(trained.path, path)
    damage(path)
    with pytest.raises(TrainInputError) as err:
        load_tokenizer(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
