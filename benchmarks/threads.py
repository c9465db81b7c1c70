"""Training throughput beside busy processes: how many torch threads, which OpenMP wait policy.

A shared machine (a CI runner beside a background job, a colleague's run) is the normal case.
This script measures ``jmvae.experiments.bench.train_phase`` (the real training loop on the paper's MNIST
JMVAE-kl, batch 100, MNIST-shaped random data) with 0, 1, ... ``--competitors`` busy-loop
processes (``python -c "while True: pass"``) running beside it, for each torch thread count of
``--threads`` and each OpenMP wait policy of ``--policies`` (``default``: the variable unset, torch's
own behaviour; ``PASSIVE``, ``ACTIVE``: ``OMP_WAIT_POLICY``). Every measurement runs in a fresh
process, because the OpenMP runtime reads its environment once, when torch is imported.

Each busy process ends by itself after ``--busy-limit`` seconds (even if this script is killed)
and is killed by its pid when its block of measurements ends.
Rounds alternate the order of the configurations. One JSON line per measurement on stdout:

    {"competitors", "threads", "policy", "round", "nice", "samples_per_s", "seconds", "loadavg_before"}

    python benchmarks/threads.py > benchmarks/results/$(date +%F)-threads.jsonl
    python benchmarks/threads.py --summary benchmarks/results/*-threads.jsonl   # the medians as a table
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

CHILD = """
import json, sys, torch
from jmvae.experiments.bench import BenchConfig, train_phase
threads, steps, warmup = (int(a) for a in sys.argv[1:4])
result = train_phase(BenchConfig(threads=threads, train_steps=steps, warmup_steps=warmup))
print(json.dumps({"samples_per_s": result["train_samples_per_s"], "seconds": result["train_seconds"],
                  "torch_threads": torch.get_num_threads()}))
"""


BUSY = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end: pass"
"""A busy loop (``while True: pass`` that ends by itself after ``limit`` seconds)."""


def start_busy(count: int, limit_s: int) -> list[subprocess.Popen]:
    """``count`` busy-loop processes, each ending by itself after ``limit_s`` seconds at the latest
    (even if this script is killed), killed by their pid when their block of measurements ends."""
    return [subprocess.Popen([sys.executable, "-c", BUSY.format(limit=limit_s)]) for _ in range(count)]


def stop_busy(processes: list[subprocess.Popen]) -> None:
    """Kill the busy processes this script started (by pid) and reap them."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()


def measure(threads: int, policy: str, steps: int, warmup: int, timeout_s: int, nice: int = 0) -> dict:
    """One training-throughput measurement in a fresh process with the given wait policy and
    niceness (``nice -n``; -20 stands in for a quiet machine: the other processes then get about
    1% of a core that this one wants)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    command = [sys.executable, "-c", CHILD, str(threads), str(steps), str(warmup)]
    done = subprocess.run(["nice", "-n", str(nice), *command] if nice else command, env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> None:
    configs = [(t, p) for t in args.threads for p in args.policies]
    for competitors in range(args.competitors + 1):
        busy = start_busy(competitors, args.busy_limit)
        try:
            time.sleep(1.0)  # let the busy processes start spinning
            for round_ in range(1, args.rounds + 1):
                order = configs if round_ % 2 else list(reversed(configs))
                for threads, policy in order:
                    load = os.getloadavg()[0]
                    result = measure(threads, policy, args.steps, args.warmup, args.busy_limit, args.nice)
                    print(json.dumps({"competitors": competitors, "threads": threads, "policy": policy, "round": round_,
                                      "nice": args.nice, "loadavg_before": round(load, 2), **result}), flush=True)
        finally:
            stop_busy(busy)


def summary(paths: list[Path]) -> None:
    """A markdown table of the median samples/s per (competitors, threads, policy)."""
    cells: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for path in paths:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            nice = f" (nice {row['nice']})" if row.get("nice") else ""
            cells[(f"{row['competitors']}{nice}", row["threads"], row["policy"])].append(row["samples_per_s"])
    columns = sorted({(t, p) for _, t, p in cells})
    print("| busy processes | " + " | ".join(f"{t} thread{'s' * (t > 1)}, {p}" for t, p in columns) + " |")
    print("|---:|" + "---:|" * len(columns))
    for competitors in sorted({c for c, _, _ in cells}):
        values = [cells.get((competitors, t, p)) for t, p in columns]
        print(f"| {competitors} | " + " | ".join(f"{statistics.median(v):.0f} (n={len(v)})" if v else "—" for v in values) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--competitors", type=int, default=2, help="measure with 0 .. this many busy processes (default 2)")
    p.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2],
                   help="torch thread counts, comma-separated (default 1,2)")
    p.add_argument("--policies", type=lambda s: s.split(","), default=["default", "PASSIVE", "ACTIVE"],
                   help="OpenMP wait policies (default: default,PASSIVE,ACTIVE)")
    p.add_argument("--steps", type=int, default=60, help="timed training steps per measurement (default 60)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    p.add_argument("--rounds", type=int, default=2, help="measurements of each configuration (default 2)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the measured process at this niceness (-20 with no competitors: a stand-in for a quiet machine)")
    p.add_argument("--busy-limit", type=int, default=900, help="seconds after which a busy process ends by itself")
    p.add_argument("--summary", nargs="+", type=Path, help="print the medians of these JSONL files instead")
    args = p.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        run(args)


if __name__ == "__main__":
    main()
