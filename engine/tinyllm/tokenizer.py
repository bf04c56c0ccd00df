"""The TinyLLM tokenizer: SentencePiece BPE trained on the corpus, saved as a transformers tokenizer.

The directory holds ``tokenizer.model`` (SentencePiece) and ``tokenizer.json`` (the same model for
the ``tokenizers`` library) with the chat template in ``tokenizer_config.json``, so
``AutoTokenizer.from_pretrained(dir)`` loads it offline and gives the ids SentencePiece gives.

Text round-trips exactly: no normalization, no dummy prefix, no whitespace collapsing, and bytes
for characters outside the vocabulary. Runs of spaces and newlines are cheap pieces because the
corpus is mostly Python source.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.tinyllm.errors import TrainFailure, TrainInputError
from engine.tinyllm.presets import BOS_TOKEN_ID, EOS_TOKEN_ID, MIN_VOCAB_SIZE, PAD_TOKEN_ID, UNK_TOKEN_ID

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
SYSTEM_TOKEN = "<|system|>"
USER_TOKEN = "<|user|>"
ASSISTANT_TOKEN = "<|assistant|>"
SEP_TOKEN = "<|sep|>"
SPECIAL_TOKENS: tuple[str, ...] = (SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN, SEP_TOKEN)

# The original prompt format, one block per message:
#   <|system|>\n{system}\n<|sep|>\n<|user|>\n{user}\n<|sep|>\n<|assistant|>\n
# The assistant's content and its closing "\n<|sep|>" sit inside {% generation %} so that
# `return_assistant_tokens_mask=True` marks exactly what SFT computes the loss on. No text lies
# between the tags: Jinja's whitespace control would eat the newlines of the format.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ '<|system|>\\n' + message['content'] + '\\n<|sep|>\\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '<|user|>\\n' + message['content'] + '\\n<|sep|>\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\\n' }}"
    "{%- generation -%}{{ message['content'] + '\\n<|sep|>' }}{%- endgeneration -%}"
    "{{ '\\n' }}"
    "{%- else -%}"
    "{{ raise_exception('unknown chat role ' + message['role'] + ': use system, user or assistant') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)

TOKENIZER_MODEL_FILE = "tokenizer.model"
TOKENIZER_JSON_FILE = "tokenizer.json"
TOKENIZER_FILES = (
    TOKENIZER_MODEL_FILE,
    TOKENIZER_JSON_FILE,
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)

# One training "sentence" is a run of whole lines up to this many characters: SentencePiece skips
# sentences longer than max_sentence_length (in bytes), and a whole module is far longer.
SENTENCE_CHARS = 2048
# At 2,048 characters a sentence, 200,000 sentences is about 400 MB of text: far more than the
# standard library (about 12 MB) and a bound on the trainer's memory for a big --data corpus.
DEFAULT_MAX_SENTENCES = 200_000
# Pieces that are not characters or merges: pad, bos, eos, unk, the 4 chat markers, 256 bytes.
_RESERVED_PIECES = 4 + 4 + 256
# The trainer splits training text at this character and never learns a piece across it. It goes
# after each run of newlines, so a line's newline ends the previous piece (":\n", ")\n\n") and the
# next line starts a fresh one: the "\n" that opens an assistant turn never merges into its reply.
_PIECE_BOUNDARY = "\ue000"
_NEWLINE_RUN = re.compile(r"\n+")
# Printable ASCII and the tab always get a piece of their own, whatever the coverage: "?" is rare
# in Python source but common in the chat data, and tab-indented code must merge its tabs.
CHARACTER_COVERAGE = 0.9995
_REQUIRED_CHARS = "\t" + "".join(chr(code) for code in range(0x21, 0x7F))


@dataclass(frozen=True)
class TokenizerSummary:
    """What ``train_tokenizer`` made: the directory, the real vocabulary size (it can be below the
    one asked for on a small corpus), the sentences the trainer used, and the seconds it took."""

    path: Path
    vocab_size: int
    sentences: int
    seconds: float


def train_tokenizer(
    texts: Iterable[str],
    out_dir: Path,
    *,
    vocab_size: int,
    max_sentences: int = DEFAULT_MAX_SENTENCES,
    seed: int = 0,
) -> TokenizerSummary:
    """Train a SentencePiece BPE tokenizer on ``texts`` and save it as a transformers tokenizer
    directory at ``out_dir``: a new or empty directory is filled in one rename; in one that holds
    other files only the tokenizer's files are replaced.

    At most ``vocab_size`` pieces (fewer when the corpus is too small for that many merges) and
    a random sample of at most ``max_sentences`` training sentences. Raises ``TrainInputError``
    for an empty corpus or a vocabulary too small for the byte and special tokens, and
    ``TrainFailure`` when the directory cannot be written. Returns a ``TokenizerSummary``."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise TrainInputError(f"tokenizer vocabulary {vocab_size} is too small; it needs at least {MIN_VOCAB_SIZE}")
    import sentencepiece as spm

    started = time.monotonic()
    # The sentence sample is drawn at random: a fixed seed makes the same corpus give the same
    # tokenizer.
    spm.set_random_generator_seed(seed)
    feed = _SentenceFeed(texts, keep=max_sentences)
    try:
        model_proto = _train_model(iter(feed), vocab_size, CHARACTER_COVERAGE, max_sentences)
    except RuntimeError as exc:
        feed.reraise()
        if feed.count == 0:
            raise TrainInputError("no text to train the tokenizer on: the corpus is empty") from None
        if "smaller than required_chars" not in str(exc):
            raise TrainInputError(f"cannot train the tokenizer: {_first_line(exc)}") from None
        # More distinct characters (CJK, say) than a small vocabulary holds: the rarest ones are
        # cut out of the training text and left to byte fallback, keeping half the room for merges.
        kept = _drop_rare_chars(feed.kept, (vocab_size - _RESERVED_PIECES - len(_REQUIRED_CHARS)) // 2)
        try:
            model_proto = _train_model(iter(kept), vocab_size, CHARACTER_COVERAGE, max_sentences)
        except RuntimeError:
            raise TrainInputError(
                f"the corpus has more distinct characters than a vocabulary of {vocab_size} can hold; "
                "use a larger vocab_size (a bigger preset or --config FILE)"
            ) from None
    feed.reraise()
    if feed.count == 0:
        raise TrainInputError("no text to train the tokenizer on: the corpus is empty")
    real_size = _write_tokenizer_dir(model_proto, out_dir)
    return TokenizerSummary(
        path=out_dir,
        vocab_size=real_size,
        sentences=min(feed.count, max_sentences),
        seconds=time.monotonic() - started,
    )


def _train_model(sentences: Iterator[str], vocab_size: int, coverage: float, max_sentences: int) -> bytes:
    """Run the SentencePiece BPE trainer and return the serialized model."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences,
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        # A corpus too small for vocab_size merges gives a smaller vocabulary, not an error.
        hard_vocab_limit=False,
        character_coverage=coverage,
        required_chars=_REQUIRED_CHARS,
        byte_fallback=True,
        pad_id=PAD_TOKEN_ID,
        bos_id=BOS_TOKEN_ID,
        eos_id=EOS_TOKEN_ID,
        unk_id=UNK_TOKEN_ID,
        pad_piece=PAD_TOKEN,
        bos_piece=BOS_TOKEN,
        eos_piece=EOS_TOKEN,
        unk_piece=UNK_TOKEN,
        user_defined_symbols=list(SPECIAL_TOKENS),
        # Exact round trips: keep every character and every space as written.
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        # Indentation becomes one piece instead of one token per space.
        allow_whitespace_only_pieces=True,
        split_digits=True,
        pretokenization_delimiter=_PIECE_BOUNDARY,
        max_sentence_length=4 * SENTENCE_CHARS + 16,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        num_threads=max(1, os.cpu_count() or 1),
        minloglevel=2,
    )
    return model.getvalue()


def _drop_rare_chars(sentences: list[str], budget: int) -> list[str]:
    """Return ``sentences`` with all but the ``budget`` most frequent characters (besides the
    required ones and the space) replaced by a piece boundary, so no piece is learned across them."""
    counts = Counter(char for sentence in sentences for char in sentence)
    keep = set(_REQUIRED_CHARS) | {" ", "\n", _PIECE_BOUNDARY}
    for char, _ in counts.most_common():
        if len(keep) >= budget + len(_REQUIRED_CHARS) + 3:
            break
        keep.add(char)
    return ["".join(char if char in keep else _PIECE_BOUNDARY for char in sentence) for sentence in sentences]


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """Load the tokenizer directory at ``path`` (offline) and return the transformers tokenizer.

    Raises ``TrainInputError`` with one line when the directory is missing, incomplete, corrupt,
    or not a TinyLLM tokenizer (the special tokens are not where they belong)."""
    if not path.is_dir():
        raise TrainInputError(f"{path}: no tokenizer directory; train one with `routeshell train tokenizer`")
    if not (path / TOKENIZER_JSON_FILE).is_file():
        raise TrainInputError(
            f"{path}: no {TOKENIZER_JSON_FILE} in the tokenizer directory; "
            "train it again with `routeshell train tokenizer`"
        )
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        # The loaders raise anything from OSError to a panic of the Rust tokenizer.
        raise TrainInputError(
            f"{path}: corrupt tokenizer ({_first_line(exc)}); train it again with `routeshell train tokenizer`"
        ) from None
    expected = {
        PAD_TOKEN: PAD_TOKEN_ID,
        BOS_TOKEN: BOS_TOKEN_ID,
        EOS_TOKEN: EOS_TOKEN_ID,
        UNK_TOKEN: UNK_TOKEN_ID,
    }
    for token, token_id in expected.items():
        if tokenizer.convert_tokens_to_ids(token) != token_id:
            raise TrainInputError(f"{path}: not a TinyLLM tokenizer ({token} is not id {token_id})")
    for token in SPECIAL_TOKENS:
        if len(tokenizer.encode(token, add_special_tokens=False)) != 1:
            raise TrainInputError(f"{path}: not a TinyLLM tokenizer ({token} is not one token)")
    return tokenizer


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Return the ids that end a generated reply: end of sequence and ``<|sep|>``."""
    sep_id = tokenizer.convert_tokens_to_ids(SEP_TOKEN)
    assert isinstance(sep_id, int)
    return [EOS_TOKEN_ID, sep_id]


class _SentenceFeed:
    """The training sentences of ``texts``, counted; an error raised while reading the corpus is
    kept and raised again after the trainer returns, because SentencePiece's C++ loop would turn
    it into a generic error (or lose a Ctrl-C)."""

    def __init__(self, texts: Iterable[str], *, keep: int) -> None:
        self._texts = texts
        self.count = 0
        # The first `keep` sentences, for a second training run when the first one cannot fit
        # the corpus's characters into the vocabulary.
        self.kept: list[str] = []
        self._keep = keep
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            for text in self._texts:
                for sentence in _split_sentences(text):
                    self.count += 1
                    if len(self.kept) < self._keep:
                        self.kept.append(sentence)
                    yield sentence
        except GeneratorExit:
            raise
        except BaseException as exc:
            # Raised again by reraise() once the trainer returns.
            self._error = exc

    def reraise(self) -> None:
        if self._error is not None:
            raise self._error


def _split_sentences(text: str) -> Iterator[str]:
    """Cut ``text`` into runs of whole lines of at most ``SENTENCE_CHARS`` characters (a longer
    line is cut where it must), each marked with where pieces must end."""
    chunk: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > SENTENCE_CHARS and chunk:
            yield _mark_boundaries("".join(chunk))
            chunk, size = [], 0
        while len(line) > SENTENCE_CHARS:
            yield _mark_boundaries(line[:SENTENCE_CHARS])
            line = line[SENTENCE_CHARS:]
        if line:
            chunk.append(line)
            size += len(line)
    if chunk:
        yield _mark_boundaries("".join(chunk))


def _mark_boundaries(sentence: str) -> str:
    return _NEWLINE_RUN.sub(lambda match: match.group(0) + _PIECE_BOUNDARY, sentence.replace(_PIECE_BOUNDARY, ""))


def _write_tokenizer_dir(model_proto: bytes, out_dir: Path) -> int:
    """Write the tokenizer files into a fresh directory beside ``out_dir`` and swap it into place;
    return the vocabulary size."""
    # Through a symlink, as every training stage writes into --out: the directory it leads to is
    # replaced, beside itself (a rename onto the link would fail, and across file systems).
    target = Path(os.path.realpath(out_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        (staging / TOKENIZER_MODEL_FILE).write_bytes(model_proto)
        hf_tokenizer = _transformers_tokenizer(model_proto)
        hf_tokenizer.save_pretrained(str(staging))
        _replace_dir(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise TrainFailure(f"cannot write the tokenizer to {out_dir}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(hf_tokenizer)


def _replace_dir(new: Path, target: Path) -> None:
    """Move the tokenizer in ``new`` to ``target``. A missing or empty ``target`` is replaced in one
    rename, so a crash leaves no half tokenizer; in a directory that holds other things (a training
    run's marker) only the tokenizer's own files are replaced, each one atomically."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(new, target)
        return
    for name in TOKENIZER_FILES:
        if (new / name).exists():
            os.replace(new / name, target / name)
        else:
            (target / name).unlink(missing_ok=True)
    shutil.rmtree(new, ignore_errors=True)


def _transformers_tokenizer(model_proto: bytes) -> PreTrainedTokenizerBase:
    """Build the ``tokenizers`` twin of the SentencePiece model: the same vocabulary, merges in the
    order of the pieces' scores, byte fallback, spaces as "▁", and the special tokens split off
    before the model sees the text."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast
    from transformers.tokenization_utils_base import generate_merges

    processor = spm.SentencePieceProcessor(model_proto=model_proto)
    vocab = {processor.id_to_piece(index): index for index in range(processor.get_piece_size())}
    # Control, unknown, byte and special pieces are never the product of a merge.
    unmerged = [
        piece
        for piece, index in vocab.items()
        if processor.is_control(index)
        or processor.is_unknown(index)
        or processor.is_byte(index)
        or piece in SPECIAL_TOKENS
    ]
    backend = Tokenizer(
        BPE(
            vocab=vocab,
            merges=generate_merges(vocab, skip_tokens=unmerged),
            unk_token=UNK_TOKEN,
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    # As in SentencePiece, the chat markers are always split off the text (user-defined symbols),
    # while "<s>" or "</s>" written in a document stay text (control symbols): a web page quoting
    # "</s>" must not end a training sequence.
    control = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN]
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in control])
    backend.add_tokens([AddedToken(token, special=False, normalized=False) for token in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        split_special_tokens=True,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        padding_side="right",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def copy_tokenizer_files(source: Path, dest: Path) -> None:
    """Copy the tokenizer files of the directory ``source`` into ``dest`` (a checkpoint), each one
    written atomically; ``save_pretrained`` alone would leave ``tokenizer.model`` behind. Raises
    ``TrainFailure`` when a file cannot be written."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if not (source / name).is_file():
            continue
        part = dest / f".{name}.part"
        try:
            shutil.copyfile(source / name, part)
            os.replace(part, dest / name)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise TrainFailure(f"cannot copy the tokenizer into {dest}: {exc.strerror or exc}") from None
