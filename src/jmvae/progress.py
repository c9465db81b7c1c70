"""Progress of long work: a bar on a terminal, a line a minute anywhere else.

tqdm redraws its bar with carriage returns several times a second. On a terminal that is one line
that moves; in a log file (``nohup``, a batch scheduler's output, a CI log) it is one line
megabytes long that nobody can read, and 500 epochs of training write it 300,000 times.
``progress_bar`` gives tqdm's bar where the output is a terminal and a ``LineBar`` elsewhere:
every minute one ordinary line with the count, the rate over the last ten minutes and the time
left at that rate (``ProgressLines``). Worker processes, which share their parent's output, print
``ProgressLines`` always (``jmvae.experiments.table1``), each line with ``write_line``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm


def write_line(line: str, stream: TextIO | None = None) -> None:
    """``line`` and its newline to ``stream`` (standard error) in one write, flushed.

    ``print`` writes the text and the newline separately, and standard error passes each write
    straight to the file: two processes that share a log (``jmvae reproduce --jobs 2``'s workers and
    their parent) then interleave, one's line ending in the middle of the other's. One ``write`` of
    a line is one system call, which Linux never interleaves with another's on the same file."""
    stream = sys.stderr if stream is None else stream
    stream.write(line + "\n")
    stream.flush()


class ProgressLines:
    """Every ``every`` seconds a line with the count (``step`` by default), the rate over the last
    ``window`` seconds (since the start until then) and the time left at that rate, so that the
    estimate follows a change of load on the machine (another job starting or ending beside this
    one) within ``window``; a stalled run says so. Called with the count after each unit of work.
    ``postfix``: appended to each line (the epoch and loss, say)."""

    def __init__(self, tag: str, start: int, total: int, log: Callable[[str], None], every: float = 60.0,
                 window: float = 600.0, unit: str = "step") -> None:
        self.tag, self.start, self.total, self.log, self.every, self.window = tag, start, total, log, every, window
        self.unit, self.postfix = unit, ""
        self.units = unit + ("es" if unit.endswith(("s", "sh", "ch", "x")) else "s")  # steps, batches, images
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), start)])  # (time, count) at each line

    def __call__(self, step: int) -> None:
        now = time.monotonic()
        if now - self.samples[-1][0] < self.every or step <= self.start:
            return
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.window:  # the latest sample at or before the window
            self.samples.popleft()
        since, then = self.samples[0]
        self.samples.append((now, step))
        rate = (step - then) / (now - since)
        left = f"about {(self.total - step) / rate / 60:.0f} min left" if rate > 0 else f"no {self.unit} lately"
        tag = f"[{self.tag}] " if self.tag else ""
        postfix = f" ({self.postfix})" if self.postfix else ""
        shown = f"{rate:.1f}" if rate >= 1 or rate == 0 else f"{rate:.2g}"  # an evaluation's 0.052 batches/s
        self.log(f"{tag}{self.unit} {step}/{self.total}, {shown} {self.units}/s, {left}{postfix}")


class LineBar:
    """The part of tqdm's interface the training loops, evaluation and the CelebA cache use
    (``update``, ``set_postfix``, ``close``, iteration), printing ``ProgressLines`` to ``stream``."""

    def __init__(self, iterable: Iterable[Any] | None, total: int, initial: int, desc: str | None, unit: str,
                 stream: TextIO) -> None:
        self.iterable, self.n, self.stream = iterable, initial, stream
        self.lines = ProgressLines(desc or "", initial, total, self.write, unit=unit)

    def write(self, line: str) -> None:
        write_line(line, self.stream)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.lines(self.n)

    def set_postfix(self, **values: Any) -> None:
        self.lines.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)


IN_NOTEBOOK = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)
"""Whether tqdm.auto chose its notebook widget (a Jupyter kernel), which draws its bar in place."""


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (False for a file, a pipe, pytest's capture, a closed stream)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def draws_bar(stream: TextIO | None = None) -> bool:
    """Whether progress on ``stream`` (standard error) is tqdm's bar: a terminal or a notebook."""
    return is_terminal(sys.stderr if stream is None else stream) or IN_NOTEBOOK


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, initial: int = 0,
                 enabled: bool = True, desc: str | None = None, unit: str = "step",
                 stream: TextIO | None = None) -> Any:
    """tqdm's bar on ``stream`` (standard error) where it is a terminal, a ``LineBar`` where it is
    not (a Jupyter notebook keeps tqdm's widget), nothing (a disabled bar) where ``enabled`` is
    False. ``total`` defaults to ``len(iterable)``."""
    stream = sys.stderr if stream is None else stream
    if total is None and iterable is not None:
        total = len(iterable)  # type: ignore[arg-type]
    if enabled and not draws_bar(stream):
        return LineBar(iterable, total or 0, initial, desc, unit, stream)
    return tqdm(iterable, total=total, initial=initial, disable=not enabled, desc=desc, unit=unit, file=stream,
                dynamic_ncols=True)
