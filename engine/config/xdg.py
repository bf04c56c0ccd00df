"""Where routeshell keeps user files, following the XDG base directory spec."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _base(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var, "")
    # The spec says relative values are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path(env.get("HOME") or os.path.expanduser("~")) / fallback


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return routeshell's config directory (``$XDG_CONFIG_HOME/routeshell``)."""
    return _base(os.environ if env is None else env, "XDG_CONFIG_HOME", ".config") / "routeshell"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return routeshell's state directory (``$XDG_STATE_HOME/routeshell``): histories and the like."""
    return _base(os.environ if env is None else env, "XDG_STATE_HOME", ".local/state") / "routeshell"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return routeshell's cache directory (``$XDG_CACHE_HOME/routeshell``): data that can be rebuilt."""
    return _base(os.environ if env is None else env, "XDG_CACHE_HOME", ".cache") / "routeshell"
