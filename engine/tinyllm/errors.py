"""The errors of training, each one line for the user with the exit code of ``routeshell train``."""

from __future__ import annotations

from engine.errors import RouteshellError, UsageError


class TrainInputError(UsageError):
    """Bad input to training: a missing data file, an empty corpus, an unknown preset, a bad
    config, an output directory that holds something else, a corrupt checkpoint (exit code 2)."""


class TrainFailure(RouteshellError):
    """Training could not go on: the disk is full, a worker died (exit code 1)."""
