"""Errors the command line reports as one line (exit code 2) instead of a traceback."""

from __future__ import annotations


class JMVAEError(ValueError):
    """A problem with the user's input: data, flags, a run folder or a checkpoint."""


class DataError(JMVAEError):
    """A data set is missing, corrupt or of the wrong shape."""


class CheckpointError(JMVAEError):
    """A run folder or checkpoint is missing, corrupt or does not match."""
