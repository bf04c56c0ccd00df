"""A trained router on disk: a directory with ``router.json`` (its kind, the candidate set, the data
it learned from and its metrics) beside the kind's weights.

The directory is a contract, like a checkpoint: :func:`load_model` reads any of them by its kind.
It is written into a temporary sibling and renamed into place, so a crash or a full disk leaves
either the old router or the new one, never half of one. Kinds that need torch (``knn``, ``mlp``)
are imported by name, when such a router is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

from engine.bitsandbytes_gate import quantized_by_bitsandbytes
from engine.errors import RouteshellError, UsageError
from engine.names import display_name
from engine.router.candidates import candidates
from engine.router.scored import CandidateModel
from engine.textfile import read_capped, replace_text

META_FILE = "router.json"
#: The most bytes ``router.json`` may hold (about 2 KiB: the candidate set, the data, the metrics);
#: a longer one, or one that is no regular file (a link to ``/dev/zero``), is refused in one line.
MAX_META_BYTES = 1 << 20
FORMAT_VERSION = 1
#: What a run being made in ``.OUT.partial`` was started with, for ``--resume`` (:func:`resume_point`).
RUN_FILE = "run.json"
#: The kinds a router directory may hold, and the module that loads each.
KINDS: dict[str, str] = {"tfidf": "engine.router.baselines", "knn": "engine.router.embedded",
                         "mlp": "engine.router.embedded", "lora": "engine.router.lora"}  # fmt: skip
#: The LoRA router's record beside its adapter (:mod:`engine.router.lora` writes it).
ADAPTER_META = "router_lora_meta.json"
#: The most bytes ``router_lora_meta.json`` may hold (about 2 KiB: the base, the prompt, the options);
#: a longer file, or one that is no regular file (a link to ``/dev/zero``), is refused in one line.
MAX_ADAPTER_META_BYTES = 1 << 20


class RouterMeta(TypedDict):
    """What ``router.json`` holds."""

    format: int
    kind: str
    candidates: list[str]
    data: list[dict[str, str]]
    label_sources: dict[str, int]
    train_tasks: int
    metrics: dict[str, Any]
    command: str


class RouterDirError(UsageError):
    """A router directory that cannot be read: missing, another format, damaged (exit code 2)."""


class RouterWriteError(RouteshellError):
    """A router directory that cannot be written (a full disk, a read-only place): exit code 1."""


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_record(paths: Sequence[Path]) -> list[dict[str, str]]:
    """Return each data file's absolute path and SHA-256, for ``router.json``."""
    return [{"path": str(path.absolute()), "sha256": file_digest(path)} for path in paths]


def check_base_dir(base: Path) -> None:
    """Raise :class:`UsageError` when ``base`` is not a model directory (before any library loads)."""
    if not (base / "config.json").is_file():
        shown = display_name(str(base))
        raise UsageError(f"--base {shown} is not a model directory (no config.json); train one with "
                         f"'routeshell train all --out {shown}' or give --base DIR")  # fmt: skip


def check_out(out: Path, meta_file: str = META_FILE, what: str = "a router") -> None:
    """Raise :class:`UsageError` when ``out`` holds something that is not ``what`` (no ``meta_file``),
    and :class:`RouterWriteError` when it is a directory made read-only: it is never replaced."""
    shown = display_name(str(out))
    if out.exists() and not (out.is_dir() and ((out / meta_file).exists() or not any(out.iterdir()))):
        raise UsageError(f"--out {shown} holds something that is not {what} (choose another)")
    # No write bit at all, for root too (whom os.access lets write anywhere): the owner said "keep it".
    if out.is_dir() and (not os.access(out, os.W_OK) or not out.stat().st_mode & 0o222):
        raise RouterWriteError(f"--out {shown} is read-only (make it writable with chmod u+w, or choose another)")


def replaced_out(out: Path, example: str = "router") -> Path:
    """``out`` as an absolute path, for a run that replaces it as a whole (``.OUT.partial`` renamed
    into place). Raise :class:`UsageError` when it names no directory of its own: ``.``, ``..``, ``/``
    or any directory that holds the current one, which the rename would swap out from under it
    (``example`` is the name the message suggests instead)."""
    whole = Path(os.path.abspath(out))
    here = Path(os.path.abspath(os.curdir))
    if not whole.name or whole == here or whole in here.parents:
        raise UsageError(
            f"--out {display_name(str(out))} is the current directory or holds it; OUT is replaced as a whole "
            f"when the run ends, so name a directory of its own (e.g. --out {example})"
        )
    return whole


def staging_dir(out: Path, *, keep: bool = False, meta_file: str = META_FILE, what: str = "a router") -> Path:
    """Return ``.OUT.partial`` beside ``out``, where a router is made before it is moved into place.

    Unless ``keep`` (a resumed run), what an earlier run left there is removed first. A directory
    that an earlier run was killed while replacing is put back first (:func:`restore_replaced`).
    """
    staging = out.with_name(f".{out.name}.partial")
    try:
        restore_replaced(out)
        check_out(out, meta_file, what)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not keep:
            shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(exist_ok=True)
    except OSError as err:
        raise RouterWriteError(f"cannot write {display_name(str(out))}: {err.strerror or err}") from None
    return staging


def resume_point(staging: Path, settings: dict[str, Any], *, resume: bool) -> Path | None:
    """Return the checkpoint a run continues from (None: from the start) and record its ``settings``.

    ``settings`` are what the checkpoints in ``staging`` depend on, by the option that sets each
    (``{"stage": "planner", "--count": 64, ...}``). With ``resume``, a run that ``staging`` holds
    from other settings is refused with one line (:class:`UsageError`) before anything is written,
    as is a damaged last checkpoint. The settings are then written to ``staging/run.json``.
    """
    from engine.tinyllm.run_dir import last_checkpoint

    record = staging / RUN_FILE
    checkpoint = None
    if resume:
        try:
            held = json.loads(read_capped(record, MAX_META_BYTES).decode("utf-8"))
        except FileNotFoundError:
            held = None
        except (OSError, ValueError) as err:
            shown = display_name(str(record))
            raise UsageError(f"cannot read {shown}: {err} (leave out --resume to start over)") from None
        if isinstance(held, dict):
            _check_same_run(staging, held, settings)
        checkpoint = last_checkpoint(staging)
    try:
        replace_text(record, json.dumps(settings, indent=2) + "\n")
    except OSError as err:
        raise RouterWriteError(f"cannot write {display_name(str(record))}: {err.strerror or err}") from None
    return checkpoint


def _check_same_run(staging: Path, held: dict[str, Any], settings: dict[str, Any]) -> None:
    shown = display_name(str(staging))
    was, now = held.get("stage") or "another", settings.get("stage")
    if was != now:
        raise UsageError(f"--resume: {shown} holds a {was} run, not a {now} one (leave out --resume to start over)")
    for option, value in settings.items():
        if option != "stage" and held.get(option, value) != value:
            if isinstance(value, list):  # the data: its files' hashes
                raise UsageError(f"--resume: the run in {shown} was started with other {option} (other files, "
                                 "or other contents; give the same, or leave out --resume to start over)")  # fmt: skip
            was, now = (display_name(str(v)) for v in (held[option], value))
            raise UsageError(f"--resume: the run in {shown} was started with {option} {was}, not {now} "
                             "(give the options it was started with, or leave out --resume to start over)")  # fmt: skip


def commit(staging: Path, out: Path, meta: RouterMeta) -> None:
    """Write ``router.json`` into ``staging``, flush every file, and move it into place as ``out``
    (replacing the router there). On a write error ``staging`` is removed and ``out`` left as it was."""
    try:
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise RouterWriteError(f"cannot write {display_name(str(out))}: {err.strerror or err}") from None
    replace_dir(staging, out)


def restore_replaced(out: Path) -> bool:
    """Put back ``.OUT.old`` as ``out`` when a process was killed between moving the old directory
    aside and moving the new one in (:func:`replace_dir`): the old one is whole, the new one is not
    known to be. Return whether it was put back."""
    old = out.with_name(f".{out.name}.old")
    if out.exists() or out.is_symlink() or not old.is_dir() or old.is_symlink():
        return False
    old.rename(out)
    return True


def replace_dir(staging: Path, out: Path) -> None:
    """Flush every file of ``staging`` and move it into place as ``out`` (replacing what is there).
    On a write error ``staging`` is removed and ``out`` left as it was. Killed between its two
    renames, it leaves ``.OUT.old`` whole, which the next :func:`staging_dir` for ``out`` puts back."""
    try:
        for path in staging.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise RouterWriteError(f"cannot write {display_name(str(out))}: {err.strerror or err}") from None


def save_model(out: Path, model: CandidateModel, meta: RouterMeta) -> None:
    """Write ``model`` and ``meta`` as the router directory ``out``, replacing any router there.

    Raise :class:`UsageError` when ``out`` holds something that is not a router, and
    :class:`RouterWriteError` when it cannot be written.
    """
    staging = staging_dir(out)
    try:
        model.save(staging)  # type: ignore[attr-defined]
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise RouterWriteError(f"cannot write {display_name(str(out))}: {err.strerror or err}") from None
    commit(staging, out, meta)


def read_meta(directory: Path) -> RouterMeta:
    """Return the ``router.json`` of a router directory; raise :class:`RouterDirError` when it is not one."""
    shown = display_name(str(directory))
    try:
        meta = json.loads(read_capped(directory / META_FILE, MAX_META_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise RouterDirError(f"{shown} is not a router directory (no {META_FILE}; make one with "
                             "'routeshell train router')") from None  # fmt: skip
    except OSError as err:
        raise RouterDirError(f"cannot read {shown}/{META_FILE}: {err.strerror or err}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise RouterDirError(f"cannot read {shown}/{META_FILE}: {err}") from None
    except RecursionError:  # (json's parser recurses once per level)
        raise RouterDirError(f"cannot read {shown}/{META_FILE}: JSON nested too deeply") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or meta.get("kind") not in KINDS:
        raise RouterDirError(f"{shown}/{META_FILE} is not a router of this version (train it again)")
    if meta.get("candidates") != [c.key for c in candidates()]:
        raise RouterDirError(f"{shown} was trained on another candidate set (train it again)")
    found: RouterMeta = meta  # type: ignore[assignment]
    return found


def read_adapter_meta(directory: Path) -> Any:
    """The parsed ``router_lora_meta.json`` of a LoRA adapter directory; raises OSError or ValueError."""
    return json.loads(read_capped(directory / ADAPTER_META, MAX_ADAPTER_META_BYTES).decode("utf-8"))


def adapter_base(meta: Any, *, base: Path | None = None, use_4bit: bool | None = None) -> tuple[Path, bool]:
    """The base an adapter loads onto (``base``, or the one ``meta`` records) and whether in 4-bit
    (``use_4bit``, or what ``meta`` records); raises KeyError, TypeError or AttributeError when
    ``meta`` is not the record it should be."""
    quantized = bool(meta.get("options", {}).get("use_4bit")) if use_4bit is None else use_4bit
    return Path(base or meta["base"]), quantized


def adapter_needs_bitsandbytes(directory: Path, *, base: Path | None = None, use_4bit: bool | None = None) -> bool:
    """Whether loading the LoRA adapter in ``directory`` as :func:`adapter_base` says needs
    bitsandbytes: it is loaded in 4-bit, or its base is quantized by bitsandbytes. False when its
    record cannot be read: loading it then says what is wrong."""
    try:
        base_dir, quantized = adapter_base(read_adapter_meta(directory), base=base, use_4bit=use_4bit)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return quantized or quantized_by_bitsandbytes(base_dir)


def needs_bitsandbytes(directory: Path) -> bool:
    """Whether :func:`load_model` of ``directory`` needs bitsandbytes (a LoRA router in 4-bit)."""
    try:
        kind = read_meta(directory)["kind"]
    except RouterDirError:
        return False
    return kind == "lora" and adapter_needs_bitsandbytes(directory)


def load_model(directory: Path) -> tuple[CandidateModel, RouterMeta]:
    """Load the router in ``directory``; raise :class:`RouterDirError` when it is missing or damaged."""
    meta = read_meta(directory)
    kind = meta["kind"]
    module = importlib.import_module(KINDS[kind])
    try:
        if kind == "tfidf":
            model: CandidateModel = module.TfidfModel.load(directory)
        elif kind == "lora":
            model = module.LoraModel.load(directory)
        else:
            model = module.load_embedded(kind, directory)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError, AttributeError, ArithmeticError) as err:
        why = str(err)
        if isinstance(err, OSError) and err.strerror and err.filename:
            # "knn.json: not a regular file", not "[Errno 22] not a regular file: '/the/whole/path/knn.json'"
            why = f"{display_name(Path(str(err.filename)).name)}: {err.strerror}"
        raise RouterDirError(f"cannot load the {kind} router in {display_name(str(directory))}: {why}") from None
    return model, meta
