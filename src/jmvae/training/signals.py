"""Ctrl-C and SIGTERM stop training between steps, after a checkpoint, instead of mid-step."""

from __future__ import annotations

import signal
from typing import Any


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop can checkpoint and stop between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread
                pass
        return self

    def handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
