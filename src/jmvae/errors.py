"""Errors the command line reports as one line (exit code 2) instead of a traceback, and warnings
it prints as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


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


def note_warning(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints a Python warning as one line, ``jmvae CMD: note: ...``."""
    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
        print(f"jmvae {command}: note: {' '.join(str(message).split())}", file=sys.stderr)

    return show
