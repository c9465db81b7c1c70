"""How many torch threads a command uses when ``--threads`` is not given: the cores that other
processes leave free when it starts.

torch's own default is one thread per core, and its OpenMP threads spin while they wait for each
other. Beside busy processes on this project's 2-core CPU that default trained 2.7 to 25 times
slower than one thread (benchmarks/threads.py; docs/benchmarks.md, "Beside a busy process"): a
thread whose core is taken stalls every parallel region, and the other spins meanwhile. So the
command line measures what the other processes use, over ``SAMPLE_SECONDS`` before any work, and
takes one thread per core they leave free (at least one). ``OMP_NUM_THREADS``, if set (torchrun
sets it to 1), is left to torch. A process that starts later is not foreseen (``--threads 1``, or
``OMP_WAIT_POLICY=PASSIVE``, for a long run on a machine others may use meanwhile).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SAMPLE_SECONDS = 0.1
"""How long the other processes' CPU use is measured for (the command itself is idle meanwhile)."""

FREE_ENOUGH = 0.8
"""A core counts as free when the other processes leave at least this share of it idle."""


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _cpu_jiffies(cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) clock ticks since boot summed over ``cpus`` (None: all), from /proc/stat;
    None where there is no /proc/stat. Busy is everything but idle and iowait (steal included:
    time another virtual machine took)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return (busy, total) if total else None


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """How many of this process's cores other processes keep busy, measured over ``seconds``
    while this process sleeps; the one-minute load average where /proc/stat is missing."""
    cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    before = _cpu_jiffies(cpus)
    if before is None:
        return min(float(usable_cores()), os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0
    time.sleep(seconds)
    after = _cpu_jiffies(cpus)
    elapsed = after[1] - before[1] if after else 0
    if elapsed <= 0:
        return 0.0
    return usable_cores() * (after[0] - before[0]) / elapsed


def free_cores(busy: float | None = None) -> int:
    """The cores other processes leave free (at least ``FREE_ENOUGH`` of each idle), at least 1."""
    busy = busy_cores() if busy is None else busy
    return max(1, int(usable_cores() - busy + (1 - FREE_ENOUGH)))


def default_threads(jobs: int = 1) -> int | None:
    """Threads for each of ``jobs`` processes when the user chose none: the free cores shared
    out, at least 1; None (torch's choice) when ``OMP_NUM_THREADS`` is set."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, free_cores() // jobs)
