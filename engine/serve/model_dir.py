"""A model directory checked before its model is built: its files, config.json's sizes, and weights
that are the model config.json describes.

config.json says how big a model to build and the weights file what there is to load into it. Built
from a config.json that does not describe its weights, a model would have tensors that nothing loads
(initialised at random: a model that answers differently on every run), or, with a size such as
100,000 layers, never finish building. So before anything is built, config.json's sizes are checked
against the weights file's header (each tensor's name and shape, read without loading one); then the
model is built without memory (on torch's meta device) and its tensors compared with the weights';
and once loaded, transformers' own account of what it loaded must show nothing missing or left over,
and every weight must be a finite number (a NaN, left by a training that diverged, fails every request:
:mod:`engine.serve.finite_weights`).
Every problem is a :class:`ModelLoadError`: one line, exit code 2.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.names import display_line, display_name
from engine.textfile import read_capped

#: What a directory must hold to be served.
REQUIRED_FILES = ("config.json", "tokenizer.json")
#: The weights file of a model directory.
WEIGHTS = "model.safetensors"
#: The index of weights saved in shards (transformers' ``save_pretrained(max_shard_size=...)``), held
#: instead of WEIGHTS: its ``weight_map`` names the file of the directory that holds each tensor.
WEIGHTS_INDEX = "model.safetensors.index.json"
#: The most bytes WEIGHTS_INDEX may hold: the index of the largest checkpoints (tens of thousands of
#: tensors) is a few MB.
MAX_INDEX_BYTES = 1 << 25
#: The weights file of a pickle, which a model directory may hold instead, and is refused: reading a pickle
#: can run code (torch's restricted reader has been got round before), and needs torch to read at all,
#: in the server's HTTP process too, which never loads it otherwise.
PICKLED_WEIGHTS = "pytorch_model.bin"
#: How to make a model directory's pickled weights into model.safetensors (transformers saves no other).
CONVERT = (
    'python -c "import sys, transformers as t; '
    't.AutoModelForCausalLM.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[1])" DIR'
)
#: The most bytes a model directory's small JSON files (config.json, generation_config.json, the
#: training marker) are read up to: a link to /dev/zero there is refused, never read into memory.
MAX_META_BYTES = 1 << 20
#: How deeply config.json and generation_config.json may nest. A model's nest a few levels; transformers
#: copies and compares them recursively, so that some hundreds of levels (which json's parser reads)
#: ended in Python's "maximum recursion depth exceeded" as the model was loaded.
MAX_META_NESTING = 100
#: The most bytes tokenizer.json may hold. The largest vocabularies' files are tens of MB (Gemma 3's
#: 262,144 tokens, 33 MB; Qwen's and Llama 3's, under 10 MB; ``routeshell train``'s, a few hundred KB),
#: and the tokenizers library takes about 20 times the file's size in memory, and a second per 8 MiB
#: here, in the server's HTTP process and in its engine process each: 64 MiB took 7.5 s and 1.3 GiB,
#: 256 MiB 36 s and 4.8 GiB (and as much again to say what is wrong with one that does not load).
MAX_TOKENIZER_BYTES = 1 << 26
#: The files of a model directory the libraries read whole, and the most bytes each may hold.
LIBRARY_READ_FILES = {
    "config.json": MAX_META_BYTES, "generation_config.json": MAX_META_BYTES,
    "tokenizer_config.json": 64 * MAX_META_BYTES, "special_tokens_map.json": MAX_META_BYTES,
    "chat_template.jinja": MAX_META_BYTES, "tokenizer.json": MAX_TOKENIZER_BYTES,
    WEIGHTS_INDEX: MAX_INDEX_BYTES,
}  # fmt: skip
#: The sizes in config.json that are a dimension of some tensor of the model: none can be larger than
#: the largest dimension of a tensor in the weights. (With the other names transformers' configurations
#: give them: ``n_embd`` is GPT-2's hidden size.)
DIMENSIONS = (
    "hidden_size",
    "intermediate_size",
    "vocab_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "d_model",
    "n_embd",
    "n_inner",
    "ffn_dim",
    "n_head",
    "n_heads",
    "num_heads",
)
#: The names a configuration gives its number of layers: each layer is modules of its own, so a
#: count such as 100,000 never finishes building, even without memory. No more than the weights'
#: tensors (each layer holds one at least).
LAYER_COUNTS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers", "depth")
#: The names under which transformers looks for the configuration of a model's text part.
TEXT_PARTS = ("text_config", "decoder", "generator")
#: The names a configuration gives the longest context it reads.
CONTEXTS = ("max_position_embeddings", "n_positions")
#: The longest context config.json may give (``max_position_embeddings``): 16M tokens, beyond any model's.
MAX_CONTEXT = 1 << 24
#: The most characters of a field's name in config.json shown in a line (its last ones).
MAX_FIELD_CHARS = 120
#: The longest piece of a library's error message shown in a line.
MAX_REASON_CHARS = 400
#: The most characters of a name the weights give (a tensor's, a shard's) shown in a line.
MAX_NAME_CHARS = 80
#: The types of a tensor of weights that are not quantized: safetensors' names of the floating types.
FLOATING = ("F16", "BF16", "F32", "F64")
#: What :func:`probe_file` says of a file that is not there, and of a name too long to be a file's.
ABSENT = "is not there"
TOO_LONG = "is no file name: it is too long"
#: What a mismatch of config.json and the weights means to the user.
NOT_THESE_WEIGHTS = "config.json does not describe these weights"
#: A tensor of the n-th layer: ``model.layers.3.mlp.up_proj.weight``.
LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")

Shapes = dict[str, tuple[int, ...]]
#: Each tensor's name and its type as safetensors names it (``F32``, ``BF16``, ``I8``).
DTypes = dict[str, str]


class ModelLoadError(UsageError):
    """The model, an adapter or the requested format cannot be served (exit code 2)."""


def check_model_dir(path: Path) -> None:
    """Raise ModelLoadError unless ``path`` holds a servable model (touches the disk, loads nothing)."""
    shown = display_name(str(path))
    if path.exists() and not path.is_dir():
        raise ModelLoadError(f"{shown}: not a directory; a model is a directory, such as `routeshell train` makes")
    if not path.is_dir():
        raise ModelLoadError(f"{shown}: no such model directory; train one with `routeshell train all --out DIR`")
    probed = {name: probe_file(path / name) for name in (*REQUIRED_FILES, WEIGHTS, WEIGHTS_INDEX)}
    unweighted = probed[WEIGHTS] is not None and probed[WEIGHTS_INDEX] is not None
    # (One of the two weights files that is there is enough: the other is never read.)
    for name in (*REQUIRED_FILES, *((WEIGHTS, WEIGHTS_INDEX) if unweighted else ())):
        if probed[name] not in (None, ABSENT):
            raise ModelLoadError(f"{shown}: the model cannot be loaded: {name} {probed[name]}")
    missing = [name for name in REQUIRED_FILES if probed[name] is not None]
    if unweighted:
        if (path / PICKLED_WEIGHTS).is_file():
            raise ModelLoadError(
                f"{shown}: its weights are {PICKLED_WEIGHTS}, a pickle, which can run code as it is read and is "
                f"never loaded; where you trust the file, convert it to {WEIGHTS}: {CONVERT}"
            )
        missing.append(WEIGHTS)
    if missing:
        raise ModelLoadError(
            f"{shown}: not a finished model directory (missing {', '.join(missing)}); "
            "a stage's final model is its --out directory"
        )
    # The libraries read these whole, unbounded: a huge one (a link to a big file, a sparse file)
    # would take the memory before anything said what it is.
    for name, most in LIBRARY_READ_FILES.items():
        try:
            size = os.stat(path / name).st_size
        except OSError:
            continue  # absent (or unreadable, which the load says)
        if size > most:
            raise ModelLoadError(f"{shown}: {name} holds {size:,} bytes, more than a model's ever does "
                                 f"({most:,} at most); it is not a model's {name}")  # fmt: skip


def probe_file(file: Path) -> str | None:
    """None where ``file`` is a regular file (or a link to one), else why it is not one, in a few words
    that follow its name: :data:`ABSENT`, "is not a regular file", "cannot be read: Permission denied"."""
    try:
        mode = os.stat(file).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return ABSENT
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return TOO_LONG
        return f"cannot be read: {err.strerror or reason(err)}"
    return None if stat.S_ISREG(mode) else "is not a regular file (a device, a FIFO or a directory)"


def weights_file(path: Path) -> Path:
    """The weights file of the model directory ``path``: WEIGHTS, or the index of its shards."""
    sharded = not (path / WEIGHTS).is_file() and (path / WEIGHTS_INDEX).is_file()
    return path / (WEIGHTS_INDEX if sharded else WEIGHTS)


def weight_headers(path: Path) -> tuple[Shapes, DTypes]:
    """Each tensor's name, shape and type in ``path``'s weights file, or in the shards its index names,
    read from their headers without loading a tensor (or importing torch). Each shard must hold the
    tensors the index assigns to it and no other: transformers loads a shard whole, so a tensor in
    two of them would load from whichever came last, whatever the index says."""
    weights = weights_file(path)
    if weights.name != WEIGHTS_INDEX:
        return _header(path, weights)
    shown = display_name(str(path))
    weight_map = _weight_map(path)
    shapes: Shapes = {}
    dtypes: DTypes = {}
    holder: dict[str, str] = {}
    for shard in sorted(set(weight_map.values())):
        held, types = _header(path, path / shard)
        for name in held:
            if name in holder:
                raise ModelLoadError(
                    f"{shown}: the model cannot be loaded: the shards {quoted(holder[name])} and {quoted(shard)} "
                    f"both hold {named(name)}; a tensor is in one shard, the one {WEIGHTS_INDEX} names"
                )
            holder[name] = shard
        shapes |= held
        dtypes |= types
    for name, shard in holder.items():
        if weight_map.get(name) != shard:
            assigned = f"assigns it to {quoted(weight_map[name])}" if name in weight_map else "does not name it"
            raise ModelLoadError(
                f"{shown}: the model cannot be loaded: the shard {quoted(shard)} holds {named(name)} but "
                f"{WEIGHTS_INDEX} {assigned}; it is not the index of these shards"
            )
    lacking = sorted(name for name in weight_map if name not in shapes)
    if lacking:
        shard = weight_map[lacking[0]]
        raise ModelLoadError(
            f"{shown}: the model cannot be loaded: {WEIGHTS_INDEX} names tensors its shard {quoted(shard)} lacks "
            f"({_listed([name for name in lacking if weight_map[name] == shard])}); it is not the index of these shards"
        )
    return shapes, dtypes


def _header(path: Path, weights: Path) -> tuple[Shapes, DTypes]:
    """Each tensor's name, shape and type in the safetensors file ``weights`` of the model directory ``path``."""
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="numpy") as header:
            slices = {name: header.get_slice(name) for name in header.keys()}  # noqa: SIM118
            return {name: tuple(part.get_shape()) for name, part in slices.items()}, {
                name: part.get_dtype() for name, part in slices.items()
            }
    except Exception as err:  # safetensors' own errors for a damaged file
        shown = display_name(str(path))
        raise ModelLoadError(f"{shown}: the model cannot be loaded: {named(weights.name)}: {reason(err)}") from err


def _weight_map(path: Path) -> dict[str, str]:
    """The ``weight_map`` of ``path``'s WEIGHTS_INDEX: each tensor's name and the shard that holds it,
    every shard a regular file of the directory itself (no other directory, nor a link out of it)."""
    shown = display_name(str(path))
    try:
        index = _read_meta(path, WEIGHTS_INDEX, MAX_INDEX_BYTES)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{shown}: the model cannot be loaded: {WEIGHTS_INDEX}: {reason(err)}") from err
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not (isinstance(weight_map, dict) and weight_map and all(isinstance(v, str) for v in weight_map.values())):
        raise ModelLoadError(
            f'{shown}: the model cannot be loaded: {WEIGHTS_INDEX} has no "weight_map" of tensor names to shard files'
        )
    if not isinstance(index, dict) or not isinstance(index.get("metadata"), dict):  # (transformers reads it)
        raise ModelLoadError(f'{shown}: the model cannot be loaded: {WEIGHTS_INDEX} has no "metadata" object')
    root = path.resolve()
    for shard in sorted(set(weight_map.values())):
        said = f"{shown}: {WEIGHTS_INDEX} names the shard {quoted(shard)}"
        nameless = f"{said}, which is no file name of the model directory; a shard must be beside it"
        if shard in ("", ".", "..") or "/" in shard or "\\" in shard or "\0" in shard:
            raise ModelLoadError(nameless)
        probed = probe_file(path / shard)
        if probed == TOO_LONG:
            raise ModelLoadError(nameless)
        if probed == ABSENT:
            raise ModelLoadError(f"{said}, which the model directory lacks")
        if probed is not None:
            raise ModelLoadError(f"{said}, which {probed}")
        if (path / shard).resolve().parent != root:
            raise ModelLoadError(f"{said}, a link out of the model directory; a shard must be beside it")
    return weight_map


def shard_of(path: Path, name: str) -> str | None:
    """The shard of the model directory ``path`` that holds its tensor ``name``, as a line names it
    ("the shard 'model-00001-of-00002.safetensors'"); None where the weights are one file, or where
    the index names no such tensor (a name the model gives it, not the weights)."""
    if weights_file(path).name != WEIGHTS_INDEX:
        return None
    try:
        shard = _weight_map(path).get(name)
    except ModelLoadError:
        return None
    return None if shard is None else f"the shard {quoted(shard)}"


def _held_in(path: Path, name: str) -> str:
    """The file of the model directory ``path`` that holds its tensor ``name``, for a line: its shard
    (:func:`shard_of`), else its weights file."""
    return shard_of(path, name) or weights_file(path).name


def _also_in(path: Path, name: str) -> str:
    """Where the weights are in shards, which one holds ``name``, as words that follow its name."""
    shard = shard_of(path, name)
    return f" (in {shard})" if shard else ""


def checked_shapes(path: Path) -> Shapes:
    """The shapes of the tensors of the model directory ``path``, once it is one
    (:func:`check_model_dir`) whose config.json describes them (:func:`check_config`); raises
    ModelLoadError. Reads config.json and the weights' header only, and imports no torch: a
    directory that cannot be served is refused in a moment."""
    check_model_dir(path)
    shapes, dtypes = weight_headers(path)
    check_config(path, shapes, dtypes)
    check_generation_config(path)
    return shapes


def check_config(path: Path, shapes: Shapes, dtypes: DTypes | None = None) -> None:
    """Raise ModelLoadError unless config.json's sizes are whole numbers from 1 up that the weights
    (``shapes``) can hold: no dimension larger than the largest of a tensor there, no more layers than
    tensors, a context of at most :data:`MAX_CONTEXT` tokens. Bounds the model that can be built. A
    tensor of no elements (``[0, 10**15]``, no data at all) counts for no size and no layer. The
    weights' layers must be alike (:func:`_check_layers`), and their types (``dtypes``) floating
    unless config.json's ``quantization_config`` says how they are quantized.

    The sizes of nested objects are bounded alike: a composite model's configuration holds those of
    its parts (``text_config``, ``vision_config``), and transformers builds each of them."""
    shown = display_name(str(path))
    try:
        config = _read_meta(path, "config.json")
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{shown}: the model cannot be loaded: config.json: {reason(err)}") from err
    if not isinstance(config, dict):
        raise ModelLoadError(f"{shown}: the model cannot be loaded: config.json is not a JSON object")
    weights = weights_file(path).name
    held = {name: shape for name, shape in shapes.items() if _count(shape)}
    largest = max((size for shape in held.values() for size in shape), default=0)
    wider = f"but no tensor of {weights} is wider than {largest:,}; {NOT_THESE_WEIGHTS}"
    bounds = dict.fromkeys(DIMENSIONS, (largest, wider))
    bounds |= dict.fromkeys(
        LAYER_COUNTS, (len(held), f"but {weights} holds {len(held):,} tensors; {NOT_THESE_WEIGHTS}")
    )
    bounds |= dict.fromkeys(CONTEXTS, (MAX_CONTEXT, f"more than the {MAX_CONTEXT:,} tokens any model reads"))
    # Walked without recursion: config.json may nest as deeply as json's parser allows.
    pending: list[tuple[object, tuple[str, ...]]] = [(config, ())]
    while pending:
        node, where = pending.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            field = (*where, str(key) if isinstance(node, dict) else f"[{key}]")
            if isinstance(value, dict | list):
                pending.append((value, field))
            elif isinstance(node, dict) and key in bounds and value is not None:
                _check_size(shown, _field(field), value, *bounds[key])
    _check_layers_alike(path, shapes)
    _check_layers(shown, config.get("num_hidden_layers"), shapes, weights)
    if not isinstance(config.get("quantization_config"), dict):  # (a quantized one is the library's to read)
        _check_floating(path, dtypes or {})


def check_generation_config(path: Path) -> None:
    """Raise ModelLoadError when ``path``'s generation_config.json, which transformers reads with the
    model, nests too deeply or is JSON of another kind than an object. One that is absent or not
    JSON is no reason to refuse: transformers then makes a generation config of config.json."""
    try:
        generation = _read_meta(path, "generation_config.json")
    except (OSError, ValueError):
        return
    if not isinstance(generation, dict):
        raise ModelLoadError(
            f"{display_name(str(path))}: the model cannot be loaded: generation_config.json is not a JSON object"
        )


def _read_meta(path: Path, name: str, most: int = MAX_META_BYTES) -> object:
    """The JSON of the model directory ``path``'s small file ``name`` (config.json,
    generation_config.json, WEIGHTS_INDEX), read up to ``most`` bytes; raises OSError or ValueError where it
    cannot be read or is not JSON, and ModelLoadError where it nests more than
    :data:`MAX_META_NESTING` levels."""
    nests = f"{display_name(str(path))}: the model cannot be loaded: {name} nests too deeply"
    try:
        # (Decoded first: json.loads would take bytes that begin with a byte order mark, which
        # transformers, reading text, refuses.)
        data = json.loads(read_capped(path / name, most).decode("utf-8"))
    except RecursionError as err:  # (json's parser recurses once per level)
        raise ModelLoadError(nests) from err
    # Measured without recursion: transformers copies and compares these recursively.
    pending: list[tuple[object, int]] = [(data, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_META_NESTING:
            raise ModelLoadError(nests)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        pending.extend((child, depth + 1) for child in children)
    return data


def _check_size(shown: str, field: str, value: object, bound: int, beyond: str) -> None:
    """Raise ModelLoadError unless config.json's ``field`` is a whole number from 1 to ``bound``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ModelLoadError(f"{shown}: config.json's {field} is not a whole number")
    if value < 1:
        raise ModelLoadError(f"{shown}: config.json's {field} is {value}; it must be 1 or more")
    if value > bound:
        raise ModelLoadError(f"{shown}: config.json's {field} is {value:,}, {beyond}")


def _field(where: tuple[str, ...]) -> str:
    """A field of config.json by its keys (``text_config.num_hidden_layers``), escaped and at most
    :data:`MAX_FIELD_CHARS` characters long (the keys are the file's to say)."""
    text = ".".join(where).replace(".[", "[")
    if len(text) > MAX_FIELD_CHARS:
        text = "..." + text[-MAX_FIELD_CHARS:]
    return display_line(text)


def _check_layers(shown: str, layers: object, shapes: Shapes, weights: str) -> None:
    """Raise ModelLoadError when the weights' tensors are numbered in layers (``model.layers.N.``)
    and config.json says another number of them (a model built so would be random where they differ)."""
    held = {match.group(1) for name, shape in shapes.items() if _count(shape) and (match := LAYER.search(name))}
    if isinstance(layers, int) and held and layers != len(held):
        raise ModelLoadError(
            f"{shown}: config.json's num_hidden_layers is {layers} but {weights} holds {len(held)} layers; "
            f"{NOT_THESE_WEIGHTS}"
        )


def _check_layers_alike(path: Path, shapes: Shapes) -> None:
    """Raise ModelLoadError unless each stack of layers in the weights (``model.layers.N.``) is numbered
    from 0 with no gap, and each of its layers holds the tensors its layer 0 holds (by the name after
    ``layers.N.``), of the same shapes, and no other. Tensors of no elements are left out. Otherwise a
    few tiny tensors, one a layer, would let config.json's layer count build a model of that many
    layers, each as big as the first."""
    stacks: dict[str, dict[int, Shapes]] = {}
    for name, shape in shapes.items():
        if _count(shape) and (match := LAYER.search(name)):
            layers = stacks.setdefault(name[: match.start(1)], {})
            layers.setdefault(int(match.group(1)), {})[name[match.end() :]] = shape
    shown, weights = display_name(str(path)), weights_file(path).name
    alike = "every layer of a model holds the tensors of its first"
    for stack, layers in sorted(stacks.items()):
        gap = next((number for number in range(len(layers)) if number not in layers), None)
        if gap is not None:
            beyond = max(layers)
            where = _also_in(path, f"{stack}{beyond}.{min(layers[beyond])}")
            raise ModelLoadError(
                f"{shown}: the model cannot be loaded: {weights} holds {named(f'{stack}{beyond}.')}{where} but no "
                f"{named(f'{stack}{gap}.')}; {alike}"
            )
        first = layers[0]
        for number, layer in sorted(layers.items()):
            if differ := sorted(first.keys() ^ layer.keys()):
                held, lacking = (number, 0) if differ[0] in layer else (0, number)
                tensor = f"{stack}{held}.{differ[0]}"
                raise ModelLoadError(
                    f"{shown}: the model cannot be loaded: {weights} holds {named(tensor)}{_also_in(path, tensor)} "
                    f"but no {named(f'{stack}{lacking}.{differ[0]}')}; {alike}"
                )
            if reshaped := sorted(part for part in first if first[part] != layer[part]):
                part = reshaped[0]
                tensor, model = f"{stack}{number}.{part}", f"{stack}0.{part}"
                raise ModelLoadError(
                    f"{shown}: the model cannot be loaded: {named(tensor)} is {_shape(layer[part])} in "
                    f"{_held_in(path, tensor)} but {named(model)} is {_shape(first[part])}{_also_in(path, model)}; "
                    f"{alike}"
                )


def _check_floating(path: Path, dtypes: DTypes) -> None:
    """Raise ModelLoadError where a tensor of the weights is not of a floating type (:data:`FLOATING`):
    loaded into a model of floats, integers or booleans would be converted, not refused, and change
    what it answers."""
    other = sorted(name for name, dtype in dtypes.items() if dtype not in FLOATING)
    if other:
        first = other[0]
        raise ModelLoadError(
            f"{display_name(str(path))}: the model cannot be loaded: {named(first)} is {display_name(dtypes[first])} "
            f"in {_held_in(path, first)}"
            f"{_more(len(other))}, not a floating type ({', '.join(FLOATING)}), and config.json has no "
            f"quantization_config that says how it is quantized; {NOT_THESE_WEIGHTS}"
        )


def check_model_fits(path: Path, shapes: Shapes) -> None:
    """Build config.json's model without memory (torch's meta device) and raise ModelLoadError unless
    the weights (``shapes``) fit it: as many layers, each tensor the shape it needs, and no more
    parameters than the weights hold (so that building it for real takes no more memory than they)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shown = display_name(str(path))
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # a config.json transformers refuses (its validators)
        raise ModelLoadError(f"{shown}: the model cannot be loaded: {reason(err)}") from err
    # transformers takes these for the configuration of a composite model's text part; in a model that
    # has no such part they stay plain objects, on which building it fails unclearly.
    for name in TEXT_PARTS:
        if isinstance(getattr(config, name, None), dict):
            kind = named(str(getattr(config, "model_type", "")))
            raise ModelLoadError(f"{shown}: config.json's {name} is no part of a {kind} model; remove it")
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    except Exception as err:  # a size transformers cannot divide
        raise ModelLoadError(f"{shown}: the model cannot be loaded: {reason(err)}") from err
    weights = weights_file(path).name
    needed = {name: tuple(tensor.shape) for name, tensor in model.named_parameters(remove_duplicate=False)}
    built = {match.group(1) for name in needed if (match := LAYER.search(name))}
    if built:
        _check_layers(shown, len(built), shapes, weights)
    wrong = sorted(name for name, shape in needed.items() if name in shapes and shapes[name] != shape)
    if wrong:
        first = wrong[0]
        raise ModelLoadError(
            f"{shown}: {named(first)} is {_shape(shapes[first])} in {_held_in(path, first)} but config.json's model "
            f"needs {_shape(needed[first])}{_more(len(wrong))}; {NOT_THESE_WEIGHTS}"
        )
    parameters = dict(model.named_parameters())  # (a tied tensor once, by its first name)
    count = sum(tensor.numel() for tensor in parameters.values())
    stored = sum(_count(shape) for shape in shapes.values())
    if count > stored:
        lacking = sorted(name for name in parameters if name not in shapes)
        lacks = f" (it lacks {_listed(lacking)})" if lacking else ""
        raise ModelLoadError(
            f"{shown}: config.json describes a model of {count:,} parameters but {weights} holds "
            f"{stored:,}{lacks}; {NOT_THESE_WEIGHTS}"
        )


def check_loading_info(path: Path, info: Mapping[str, Iterable[Any]]) -> None:
    """Raise ModelLoadError when transformers' account of a load (``output_loading_info``) shows a
    tensor of the model that the weights lack (it would be random), one of the weights that the model
    has no place for, or one of the wrong shape. (A tied output layer is never missing: it is the
    input embedding.)"""
    weights = weights_file(path).name
    problems = (
        ("missing_keys", f"{weights} lacks", "of the model's tensors", "of the model's tensors"),
        (
            "unexpected_keys",
            f"{weights} holds",
            "tensor the model has no place for",
            "tensors the model has no place for",
        ),
        ("mismatched_keys", f"{weights} holds", "tensor of another shape than the model's", "tensors of other shapes"),
    )
    for key, verb, one, many in problems:
        names = sorted(str(item[0] if isinstance(item, tuple) else item) for item in info.get(key, ()))
        if names:
            what = f"{len(names)} {one if len(names) == 1 else many}"
            raise ModelLoadError(f"{display_name(str(path))}: {verb} {what} ({_listed(names)}); {NOT_THESE_WEIGHTS}")


def reason(err: BaseException) -> str:
    """What ``err`` says, as one escaped line: its lines joined (a validation error gives its reason on
    the second), at most :data:`MAX_REASON_CHARS` characters, with the error's type where its message is
    only a key (a KeyError) or nothing."""
    text = " ".join(str(err).split())
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS] + "..."
    if not text or isinstance(err, LookupError):
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return display_line(text)


def named(name: str) -> str:
    """``name`` (a tensor's, a shard's: the weights' to say) as :func:`display_name` escapes it, cut to
    its first :data:`MAX_NAME_CHARS` characters, and how long it is, where it is longer."""
    if len(name) <= MAX_NAME_CHARS:
        return display_name(name)
    return f"{display_name(name[:MAX_NAME_CHARS])}... ({len(name):,} characters)"


def quoted(name: str) -> str:
    """``name`` as :func:`named` shows it, in single quotes (a file's name)."""
    return f"'{named(name)}'"


def _listed(names: list[str]) -> str:
    """The first three of ``names``, as :func:`named` shows each."""
    return ", ".join(named(name) for name in names[:3]) + (", ..." if len(names) > 3 else "")


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def _more(count: int) -> str:
    return f" (and {count - 1} more)" if count > 1 else ""


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
