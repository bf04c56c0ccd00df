"""Keeping the model libraries offline and quiet: routeshell's own output says what happens."""

from __future__ import annotations

import logging
import os
import sys
import warnings

#: Libraries whose log lines and progress bars are turned down to errors.
CHATTY = ("transformers", "peft", "bitsandbytes", "accelerate", "datasets", "torchao", "torch.distributed")


def quiet_libraries() -> None:
    """Keep the libraries offline and their chatter (warnings, progress bars, advice) off the terminal.

    Nothing is imported for it: the environment and the loggers are set before the libraries
    load, and a library already loaded is told directly.
    """
    for name, value in (
        ("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"),
        ("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"),
    ):  # fmt: skip
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers = sys.modules.get("transformers")
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        datasets.disable_progress_bars()
