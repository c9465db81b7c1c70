"""Errors the command line reports as one line (exit code 2) instead of a traceback."""

from __future__ import annotations


class JMVAEError(ValueError):
    """A problem with the user's input: data, settings, a run folder or a checkpoint.

    ``settings``: the names of the settings (config fields, function arguments) that would fix it,
    e.g. ``("lr", "warmup_epochs")``: the message says what is wrong in the library's terms, and
    the command line adds the flags that set those (``jmvae.cli``'s ``SETTING_FLAGS``).
    """

    def __init__(self, message: str, settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings = tuple(settings)


class DataError(JMVAEError):
    """A data set is missing, corrupt or of the wrong shape."""


class CheckpointError(JMVAEError):
    """A run folder or checkpoint is missing, corrupt or does not match."""
