"""SFT rows: four row shapes read into one conversation shape, and the reasoning answer format.

The shapes (``engine/schemas/sft_row.schema.json``), all accepted by :func:`read_conversations`:

- chat, the OpenAI fine-tuning format: ``{"messages": [{"role": ..., "content": ...}, ...]}``;
- TinyLLM: ``{"system", "user", "assistant"}`` (system optional);
- Alpaca: ``{"instruction", "input", "output"}`` (input optional);
- reasoning: ``{"system", "user", "cot", "final"}`` (system optional), whose assistant text is the
  reasoning and the final answer between markers (:func:`reasoning_answer`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict

from engine.names import display_name
from engine.schemas import describe_error, pointer, validator
from engine.tinyllm.corpus import corpus_files, jsonl_rows, load_data_file
from engine.tinyllm.errors import TrainInputError

Role = Literal["system", "user", "assistant"]
Markers = Literal["zh", "en"]
RowShape = Literal["chat", "tinyllm", "alpaca", "reasoning"]


class Message(TypedDict):
    """One turn of a conversation."""

    role: Role
    content: str


Conversation = list[Message]


class ReasoningRow(TypedDict):
    """A reasoning SFT row: the question, the worked steps (3-8 sentences) and the final answer."""

    system: str
    user: str
    cot: str
    final: str


#: The reasoning and final-answer markers of each language, as the assistant text spells them.
MARKERS: dict[Markers, tuple[str, str]] = {
    "zh": ("【推理过程】", "【最终答案】"),
    "en": ("Reasoning:", "Answer:"),
}

#: The row shapes in the order of the schema's ``oneOf``, with how each is written, for error messages.
ROW_SHAPES: tuple[RowShape, ...] = ("chat", "tinyllm", "alpaca", "reasoning")
EXPECTED_SHAPES = (
    'expected one of {"messages": [{"role": ..., "content": ...}, ...]}, {"system", "user", "assistant"}, '
    '{"instruction", "input", "output"} or {"system", "user", "cot", "final"}'
)

#: Files read with ``datasets`` rather than line by line, by suffix: the builder that reads them.
DATASET_SUFFIXES = {".json": "json", ".parquet": "parquet"}


def reasoning_answer(cot: str, final: str, markers: Markers = "zh") -> str:
    """Return the assistant text of a reasoning row: ``【推理过程】\\n{cot}\\n【最终答案】\\n{final}``
    (``Reasoning:\\n{cot}\\nAnswer:\\n{final}`` with the English markers)."""
    reasoning, answer = MARKERS[markers]
    return f"{reasoning}\n{cot}\n{answer}\n{final}"


def split_reasoning(text: str, markers: Markers = "zh") -> tuple[str, str] | None:
    """Return ``(cot, final)`` from an assistant text written as :func:`reasoning_answer` writes it.

    The reasoning marker at the start may be missing (a model may drop it); the text is cut at the
    first final-answer marker on a line of its own. Return None when there is no such marker.
    """
    reasoning, answer = MARKERS[markers]
    head, found, final = text.partition(f"\n{answer}\n")
    if not found:
        if not text.startswith(f"{answer}\n"):
            return None
        head, final = "", text[len(answer) + 1 :]
    return head.removeprefix(f"{reasoning}\n").removeprefix(reasoning), final


def row_shape(row: Mapping[str, Any]) -> RowShape:
    """Return which shape a row means to be, by its keys (the schema then says whether it is one)."""
    if "messages" in row:
        return "chat"
    if "instruction" in row or "output" in row or "input" in row:
        return "alpaca"
    if "cot" in row or "final" in row:
        return "reasoning"
    return "tinyllm"


def row_problem(row: object) -> str | None:
    """Return why ``row`` is not an SFT row (a JSON pointer and a reason), or None when it is one."""
    if not isinstance(row, dict):
        return "a row must be a JSON object"
    errors = list(validator("sft_row").iter_errors(row))
    if not errors:
        return _chat_order_problem(row)
    shape = ROW_SHAPES.index(row_shape(row))
    # A oneOf failure holds each branch's errors; report those of the shape the row's keys point to.
    branch = [e for error in errors for e in (error.context or []) if e.relative_schema_path[0] == shape]
    # The deepest error is the most specific: "/messages/1/role: must be one of" over "/messages: must contain".
    chosen = min(
        branch or errors, key=lambda e: (-len(e.absolute_path), [str(p) for p in e.absolute_path], e.validator)
    )
    path, reason = describe_error(chosen)
    return f"{row_shape(row)} row: {pointer(path)}: {reason}"


def _chat_order_problem(row: dict[str, Any]) -> str | None:
    messages = row.get("messages")
    if not isinstance(messages, list):
        return None
    roles = [message["role"] for message in messages]
    if "system" in roles[1:]:
        return (
            f"chat row: {pointer(['messages', roles.index('system', 1), 'role'])}: a system message may only come first"
        )
    if "user" not in roles:
        return "chat row: /messages: must contain a user message"
    if roles[-1] != "assistant":
        return f"chat row: {pointer(['messages', len(roles) - 1, 'role'])}: the last message must be the assistant's"
    return None


def to_conversation(row: Mapping[str, Any], markers: Markers = "zh") -> Conversation:
    """Return the conversation of a valid SFT row (check it with :func:`row_problem` first).

    An Alpaca row's input follows its instruction after a blank line; a reasoning row's assistant
    text is :func:`reasoning_answer` of its cot and final.
    """
    shape = row_shape(row)
    if shape == "chat":
        return [Message(role=m["role"], content=m["content"]) for m in row["messages"]]
    conversation: Conversation = []
    if row.get("system"):
        conversation.append(Message(role="system", content=row["system"]))
    if shape == "alpaca":
        extra = row.get("input") or ""
        user = row["instruction"] + (f"\n\n{extra}" if extra else "")
        return [Message(role="user", content=user), Message(role="assistant", content=row["output"])]
    if shape == "reasoning":
        answer = reasoning_answer(row["cot"], row["final"], markers)
        return [*conversation, Message(role="user", content=row["user"]), Message(role="assistant", content=answer)]
    return [
        *conversation,
        Message(role="user", content=row["user"]),
        Message(role="assistant", content=row["assistant"]),
    ]


def read_conversations(paths: Sequence[Path], *, markers: Markers = "zh") -> list[Conversation]:
    """Read SFT rows from JSONL files (and ``.json``/``.parquet`` files through ``datasets``) into conversations.

    A directory gives its ``.jsonl``, ``.json`` and ``.parquet`` files. Raise :class:`TrainInputError`
    naming the file and line (or row) of the first bad row and the shapes expected, for a file that
    is not JSONL, JSON or Parquet, and when no row was found at all.
    """
    conversations: list[Conversation] = []
    for given in paths:
        for path in corpus_files([given]):
            suffix = path.suffix.lower()
            if suffix not in (".jsonl", *DATASET_SUFFIXES):
                if path == given:
                    raise TrainInputError(
                        f"{display_name(str(path))}: SFT data must be a .jsonl, .json or .parquet file of rows"
                    )
                continue  # other files inside a directory of data are not rows
            for where, row in _rows(path):
                problem = row_problem(row)
                if problem is not None:
                    raise TrainInputError(f"{where}: not an SFT row: {display_name(problem)}; {EXPECTED_SHAPES}")
                conversations.append(to_conversation(row, markers))  # type: ignore[arg-type]
    if not conversations:
        shown = ", ".join(display_name(str(path)) for path in paths) or "no files"
        raise TrainInputError(f"no SFT rows in {shown} (give JSONL files of rows with --data)")
    return conversations


def _rows(path: Path) -> Iterator[tuple[str, object]]:
    """Yield (where, row) for each row of a data file: ``file:LINE`` for JSONL, ``file: row N`` otherwise."""
    name = display_name(str(path))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for number, row in jsonl_rows(path):
            yield f"{name}:{number}", row
        return
    dataset: Any = load_data_file(path, DATASET_SUFFIXES[suffix])
    for index, row in enumerate(dataset):
        # datasets gives every column to every row, None where a row lacked the key.
        yield f"{name}: row {index + 1}", _drop_none(row)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_none(item) for item in value]
    return value


def conversation_text(conversation: Conversation) -> str:
    """Return the user and assistant turns of a conversation as one text, for duplicate detection.

    The system prompt is left out: many rows share one, and it would make them all look alike.
    """
    return "\n".join(m["content"] for m in conversation if m["role"] != "system")


def assistant_text(conversation: Conversation) -> str:
    """Return what the assistant says in a conversation: the output the length filters measure."""
    return "\n".join(m["content"] for m in conversation if m["role"] == "assistant")
