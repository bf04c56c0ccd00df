"""What is wrong with a model directory's tokenizer.json, in words, where a tokenizer does not load:
its shape first (a library's bare KeyError says nothing of it), then the tokenizers library's reason."""

from __future__ import annotations

import json
from pathlib import Path

from engine.serve.model_dir import MAX_TOKENIZER_BYTES, reason
from engine.textfile import read_capped


def tokenizer_problem(path: Path) -> str | None:
    """What is wrong with ``path``'s tokenizer.json, as its shape or the tokenizers library says (None
    when neither finds anything)."""
    try:
        text = read_capped(path / "tokenizer.json", MAX_TOKENIZER_BYTES).decode("utf-8")
        data = json.loads(text)
    except OSError as err:
        return f"tokenizer.json cannot be read: {err.strerror or err}"
    except ValueError:
        return "tokenizer.json is not JSON"
    except RecursionError:  # (json's parser recurses once per level)
        return "tokenizer.json nests too deeply"
    if not isinstance(data, dict):
        return "tokenizer.json is not a JSON object"
    added = data.get("added_tokens")
    if not isinstance(added, list):
        return 'tokenizer.json has no "added_tokens" list'
    for index, token in enumerate(added):
        if not (isinstance(token, dict) and isinstance(token.get("id"), int) and isinstance(token.get("content"), str)):
            return f'tokenizer.json\'s added token {index} is not an object with an "id" number and a "content" text'
    if not isinstance(data.get("model"), dict):
        return 'tokenizer.json has no "model" object'
    from tokenizers import Tokenizer

    try:
        Tokenizer.from_str(text)
    except Exception as err:  # the tokenizers library's own error, with the line and column
        return f"tokenizer.json is not a tokenizer: {reason(err)}"
    return None
