"""Keeping the model libraries offline and quiet: routeshell's own output says what happens.

One place for every command that loads them (training, the router, the model server): the
environment is set before the libraries load, and a library already loaded is told directly.
Nothing heavy is imported here unless asked.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

#: Libraries whose log lines are turned down to errors. torchao (which transformers and peft may
#: import) warns about every type it registers with torch's pytree and every GPU kernel it cannot
#: load on a CPU; bitsandbytes, which peft imports, warns on every adapter load about a kernel
#: package it lacks; kernels, which transformers may import for bitsandbytes, warns that it skips
#: a check offline.
CHATTY = ("transformers", "peft", "bitsandbytes", "accelerate", "datasets", "torchao", "torch.utils._pytree",
          "torch.distributed", "kernels")  # fmt: skip


def quiet_libraries(*, import_torch: bool = False, passive_threads: bool = False) -> None:
    """Keep the libraries offline and their chatter (warnings, progress bars, advice) off the terminal.

    ``import_torch``: import torch first, for a process about to load weights (torch sets up its
    loggers on import; they are quietened after it). ``passive_threads``: OpenMP threads sleep
    between pieces of work instead of spinning (a model server: spinning threads take the cores
    the event loop needs to send each token; measured here, a single stream decodes 25-40% faster
    through HTTP with sleeping threads). Training leaves them spinning.
    """
    for name, value in (
        ("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"),
        ("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"),
    ):  # fmt: skip
        os.environ.setdefault(name, value)
    if passive_threads:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    warnings.filterwarnings("ignore")
    if import_torch:
        import torch  # noqa: F401

    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers = sys.modules.get("transformers")
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        datasets.disable_progress_bars()
