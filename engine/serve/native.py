"""routeshell's native kernels for CPU decoding: C compiled on first use and cached.

``csrc/kernels.c`` holds two, both for the int8 model:

- Decode attention. The int8 model keeps its key/value cache in bf16 and computes in fp32, and
  PyTorch has no kernel that reads the one and computes in the other: each decode step copied the
  whole cache to fp32 and then multiplied (:func:`engine.serve.attention.decode_attention`), and
  with eight rows that copy and the products took about a quarter of the step. The kernel reads
  the bf16 cache once: measured on the ``small`` preset, eight rows decoded 17-25% faster.
- Rows scaled to a unit range, with two more columns holding -1 and 1, before FBGEMM's dynamic
  int8 product, which quantizes its whole input with one scale
  (:class:`engine.serve.quantize.DynamicInt8Linear`): each row is then quantized by its own
  range, so that a sequence's tokens no longer depend on which others share its batch, and a row
  of small values keeps its precision.

They are compiled with the system's C compiler (``$CC``, else ``cc``) for this CPU into
``$XDG_CACHE_HOME/routeshell/kernels``, under a name that hashes the source, the flags, the
compiler and the CPU, so that a cache shared between machines never loads a library built for
another CPU. A cache that cannot be written gets a library built in a temporary directory. Without
a compiler, or with ``ROUTESHELL_NATIVE=0``, the int8 model runs on PyTorch alone: a little slower
with eight rows, and its tokens can depend on the batch. :func:`kernel_status` says which is in
use and why.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config.xdg import cache_dir

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "kernels.c"
#: The version ``routeshell_kernel_version`` must return: raised with every change of the C signature.
ABI_VERSION = 4
#: Environment variable: ``0`` keeps PyTorch's path (for comparisons, or a compiler that misbehaves).
ENV_SWITCH = "ROUTESHELL_NATIVE"
COMPILE_TIMEOUT_S = 120
#: Loops vectorize with reassociated sums; nothing here changes the process's floating-point mode
#: (``-ffast-math`` would, from a shared library's startup code).
FLAGS = ("-O3", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros")
#: Tried first: code for this CPU. Without it (a compiler that does not know it) the generic target.
TUNE = ("-march=native",)


@dataclass(frozen=True)
class Kernels:
    """The loaded library's kernels, their ctypes argument types set."""

    attention_function: Any  # ctypes functions
    #: ``(rows, width, x, row stride, out, scales)``: each row of ``x`` (fp32, each row contiguous)
    #: over its largest magnitude, then -1 and 1, into ``out`` (rows x (width + 2), contiguous); the
    #: magnitudes into ``scales`` (rows floats). 0, or -1 for a bad shape.
    #: :class:`engine.serve.quantize.DynamicInt8Linear` calls it directly.
    unit_rows_function: Any
    path: Path

    def attention(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        allowed: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        """Attention of ``query`` (fp32, rows x heads x size, contiguous) over ``keys`` and ``values``
        (bf16, rows x kv heads x positions x size, the last dimension contiguous), with ``allowed``
        (bool, rows x positions, the last dimension contiguous; or None): fp32 rows x heads x size.

        The caller checks the shapes, dtypes and strides (:func:`engine.serve.attention.native_fits`):
        the C code trusts them."""
        import torch

        rows, heads, size = query.shape
        kv_heads, length = keys.shape[1], keys.shape[2]
        out = torch.empty((rows, heads, size), dtype=torch.float32)
        scores = torch.empty(length, dtype=torch.float32)
        mask_ptr, mask_row = (allowed.data_ptr(), allowed.stride(0)) if allowed is not None else (None, 0)
        status = self.attention_function(
            rows,
            heads,
            kv_heads,
            length,
            size,
            query.data_ptr(),
            keys.data_ptr(),
            keys.stride(0),
            keys.stride(1),
            keys.stride(2),
            values.data_ptr(),
            values.stride(0),
            values.stride(1),
            values.stride(2),
            mask_ptr,
            mask_row,
            scale,
            out.data_ptr(),
            scores.data_ptr(),
        )
        if status != 0:
            raise ValueError(f"the native decode attention refused its shapes (status {status})")
        return out


_lock = threading.Lock()
_loaded: Kernels | None = None
_status: str | None = None


def native_kernels() -> Kernels | None:
    """The native kernels, compiled on the first call of the process; None when they cannot be had
    here (why: :func:`kernel_status`)."""
    global _loaded, _status
    with _lock:
        if _status is None:
            try:
                _loaded = _load()
                _status = f"native ({_loaded.path.name})"
            except (KernelUnavailable, OSError) as why:  # OSError: the source or the cache unreadable
                _loaded, _status = None, f"PyTorch's (the native kernels are unavailable: {why})"
                switched_off = str(why) == f"{ENV_SWITCH}=0"
                level = logging.INFO if switched_off else logging.WARNING
                log.log(level, "the int8 model runs on PyTorch alone: %s", why)
        return _loaded


def kernel_status() -> str:
    """What :func:`native_kernels` gave, in a few words: "native (FILE)" or "PyTorch's (the native
    kernels are unavailable: WHY)"."""
    native_kernels()
    assert _status is not None
    return _status


class KernelUnavailable(Exception):
    """The kernel cannot be built or loaded here; the message says why, in one line."""


def _load() -> Kernels:
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        raise KernelUnavailable(f"{ENV_SWITCH}=0")
    compiler = _compiler()
    version = _compiler_version(compiler)
    key = _key(compiler, version)
    kernels = cache_dir() / "kernels"
    path = kernels / f"kernels-{key}.so"
    if _trusted(path):
        try:
            return _open(path)
        except KernelUnavailable:
            pass  # stale or damaged: built again below
    try:
        kernels.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _open(_build(compiler, kernels, path))
    except (OSError, KernelUnavailable) as err:  # read-only, full, or a compiler that failed there
        log.info("building in the kernel cache %s failed (%s); building in a temporary directory", kernels, err)
    with tempfile.TemporaryDirectory(prefix="routeshell-kernel-") as tmp:
        # The library stays mapped once loaded; its file can go.
        return _open(_build(compiler, Path(tmp), Path(tmp) / path.name))


def _compiler() -> str:
    name = os.environ.get("CC", "").strip() or "cc"
    found = shutil.which(name)
    if found is None:
        raise KernelUnavailable(f"no C compiler {name!r} on PATH")
    return found


def _compiler_version(compiler: str) -> str:
    try:
        result = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, errors="replace", timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KernelUnavailable(f"{compiler} --version failed: {err}") from err
    if result.returncode != 0:
        raise KernelUnavailable(f"{compiler} --version exited {result.returncode}")
    return result.stdout.strip().split("\n")[0]


def _cpu() -> str:
    """What the CPU can run: its model and feature flags (Linux), else what Python knows of it."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        info = ""
    lines = [line for line in info.splitlines() if line.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(dict.fromkeys(lines)) or f"{platform.machine()} {platform.processor()}"


def _key(compiler: str, version: str) -> str:
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS + TUNE).encode(), compiler.encode(), version.encode()):
        digest.update(part + b"\0")
    digest.update(_cpu().encode())
    return digest.hexdigest()[:20]


def _build(compiler: str, directory: Path, path: Path) -> Path:
    """Compile into a temporary name in ``directory``, then rename to ``path`` (atomic: a process
    loading the library never sees half of it, and two building at once each rename a whole one)."""
    _remove_stale_builds(directory)
    handle, tmp_name = tempfile.mkstemp(prefix=BUILD_PREFIX, suffix=".so", dir=directory)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        errors = ""
        for tune in (TUNE, ()):
            argv = [compiler, *FLAGS, *tune, "-o", str(tmp), str(SOURCE)]
            try:
                result = subprocess.run(
                    argv, capture_output=True, text=True, errors="replace", timeout=COMPILE_TIMEOUT_S, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                raise KernelUnavailable(f"{compiler} failed: {err}") from err
            if result.returncode == 0:
                os.chmod(tmp, 0o700)
                os.replace(tmp, path)
                return path
            # The first error says why ("No space left on device"); the last line often does not.
            said = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            errors = next((line for line in said if "error" in line.lower()), said[-1] if said else "")
            errors = errors[:300] or f"exit {result.returncode}"
        raise KernelUnavailable(f"{compiler} could not compile {SOURCE.name}: {errors}")
    finally:
        tmp.unlink(missing_ok=True)


BUILD_PREFIX = ".build-"
#: A build file older than this was left by a process killed while it compiled.
STALE_BUILD_S = 3600


def _remove_stale_builds(directory: Path) -> None:
    now = time.time()
    try:
        for entry in os.scandir(directory):
            if (
                entry.name.startswith(BUILD_PREFIX)
                and entry.is_file(follow_symlinks=False)
                and now - entry.stat(follow_symlinks=False).st_mtime > STALE_BUILD_S
            ):
                Path(entry.path).unlink(missing_ok=True)
    except OSError:  # an unreadable directory: the build below says what is wrong
        pass


def _trusted(path: Path) -> bool:
    """Whether ``path`` is a regular file of this user that no one else may write (a library found
    in the cache is loaded into the process: it must be one this user built)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _open(path: Path) -> Kernels:
    try:
        library = ctypes.CDLL(str(path))
        version = library.routeshell_kernel_version
        attention = library.routeshell_decode_attention
        unit_rows = library.routeshell_unit_rows
    except (OSError, AttributeError) as err:
        raise KernelUnavailable(f"cannot load {path.name}: {err}") from err
    version.restype, version.argtypes = ctypes.c_int64, []
    if version() != ABI_VERSION:
        raise KernelUnavailable(f"{path.name} is version {version()}, not {ABI_VERSION}")
    i64, pointer = ctypes.c_int64, ctypes.c_void_p
    attention.restype = unit_rows.restype = i64
    attention.argtypes = [
        *(i64,) * 5,
        pointer,
        pointer,
        *(i64,) * 3,
        pointer,
        *(i64,) * 3,
        pointer,
        i64,
        ctypes.c_float,
        pointer,
        pointer,
    ]
    unit_rows.argtypes = [i64, i64, pointer, i64, pointer, pointer]
    return Kernels(attention, unit_rows, path)
