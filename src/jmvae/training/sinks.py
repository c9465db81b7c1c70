"""Where a run's metrics go: ``metrics.jsonl`` is one sink, TensorBoard (optional) another.

The loop hands each sink the record it logs (one per finished epoch: ``epoch``, ``step``,
``kl_weight``, ``seconds`` and every loss term of ``LossTerms.named()``), on the main rank only.
A sink only writes: it draws nothing and computes nothing, so a run logs to any sinks with the
same parameters, bit for bit, as with ``metrics.jsonl`` alone.

    start(step, history)   training starts at ``step`` (0: a new run), ``history`` already logged
    log(record)            one record, at ``record["step"]``
    close()                training has stopped (finished, interrupted or failed)

TensorBoard loads only where a ``TensorBoardSink`` is made (``jmvae train --tensorboard``):
``require_tensorboard`` turns its absence into one line naming the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from jmvae.errors import JMVAEError

TENSORBOARD_FIX = "pip install 'jmvae[tensorboard]'"


class Sink(Protocol):
    def start(self, step: int, history: list[dict[str, Any]]) -> None: ...

    def log(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class MetricsFile:
    """``RUN_DIR/metrics.jsonl``: one JSON object per record, appended (``RunFolder`` truncates it
    to the checkpoint on resume and removes it for a new run)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def start(self, step: int, history: list[dict[str, Any]]) -> None:
        pass

    def log(self, record: Mapping[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        pass


def require_tensorboard() -> type:
    """``torch.utils.tensorboard.SummaryWriter``, or a ``JMVAEError`` naming the fix."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise JMVAEError(f"--tensorboard needs the tensorboard package, which is not installed; {TENSORBOARD_FIX}") from None
    return SummaryWriter


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """A record's numbers as TensorBoard scalars, by the names ``metrics.jsonl`` gives them (its
    ``step`` is the scalars' step, not a scalar)."""
    return {name: float(value) for name, value in record.items()
            if name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


class TensorBoardSink:
    """Each record's scalars in ``folder``'s event files, at the record's step, under the names
    ``metrics.jsonl`` gives them, so the two agree.

    The folder holds one run's curves: when the writer opens, the event files already there are
    removed and a resumed run writes its history (``metrics.jsonl`` up to the checkpoint) before
    it continues. The curves are rewritten rather than purged by step (TensorBoard's
    ``purge_step``), because a purge only acts on event files that sort after the old ones, and
    two files made in the same second sort by a per-process counter ("10" before "9"): the
    rewrite does not depend on file names. So a resumed run loses nothing and repeats no step,
    ``--overwrite`` starts afresh, and a run whose first part trained without ``--tensorboard``
    gets its earlier epochs. The writer of a new run opens at its first record, so a run that
    stops before one leaves the folder as it was; a resumed run opens it at once."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.writer_class = require_tensorboard()
        self.writer: Any = None
        self.history: list[dict[str, Any]] = []

    def start(self, step: int, history: list[dict[str, Any]]) -> None:
        self.history = [record for record in history if int(record["step"]) <= step]
        if step:
            self.open()

    def open(self) -> None:
        if self.writer is not None:
            return
        if self.folder.is_dir():
            for old in self.folder.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = self.writer_class(str(self.folder))
        for record in self.history:
            self.write(record)
        self.writer.flush()

    def log(self, record: Mapping[str, Any]) -> None:
        self.open()
        self.write(record)
        self.writer.flush()

    def write(self, record: Mapping[str, Any]) -> None:
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, global_step=int(record["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_scalars(folder: str | Path, values: Mapping[str, float], step: int) -> None:
    """``values`` as scalars at ``step`` in a new event file in ``folder`` (``jmvae evaluate
    --tensorboard``: the evaluation's cells at the run's last step, beside its training curves)."""
    writer = require_tensorboard()(str(folder))
    try:
        for name, value in values.items():
            writer.add_scalar(name, float(value), global_step=step)
    finally:
        writer.close()
