"""Where a training step's time goes: M JMVAE-kl models one after another against one vmapped step.

    python benchmarks/step_profile.py [--members 9] [--steps 10] [--threads 1]

``benchmarks/group_sweep.py`` finds the group no faster than the same models one after another
on a quiet 2-core AMD EPYC. This profiles both ways of ``benchmarks/stacked_step.py`` (the
library's own loss, one fused Adam, clipping at 5 per member) under ``torch.profiler`` and sums
each operator's own CPU time into what it is:

- ``matrix products``: mm, addmm, bmm, baddbmm (forward and backward);
- ``adam``: the fused Adam kernel over every parameter;
- ``casts and copies``: dtype conversions (autocast's bfloat16 copies of the weights, activations and
  gradients) and the copies vmap makes;
- ``other``: every other operator (elementwise, reductions, clipping, log-densities, sampling).

A stacked step can only save per-operation overhead; time that grows with the parameters or the
samples (Adam's pass over the weights, casts, elementwise work) is the same per member either way.
Prints one JSON line: milliseconds per member and step, per category, way and precision, and the
matrix products' GFLOP/s (18.3 MFLOP a sample, ``group_sweep.flops_per_sample``'s count).
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.profiler import ProfilerActivity, profile

from jmvae.experiments.hardware import hardware
from stacked_step import BATCH, PRECISIONS, batch_pool, loop_way, vmap_way

MFLOP_PER_SAMPLE = 18.3
CATEGORIES = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "adam": ("aten::_fused_adam_",),
    "casts and copies": ("aten::_to_copy", "aten::to", "aten::copy_"),
}


def category(name: str) -> str:
    return next((c for c, names in CATEGORIES.items() if name in names), "other")


def profiled(step, data, precision, members: int, steps: int) -> dict[str, float]:
    """Milliseconds of own CPU time per member and step, by category (and in all, by the wall clock)."""
    for i in range(3):
        step(data[i % len(data)], precision())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(data[i % len(data)], precision())
    totals: dict[str, float] = {c: 0.0 for c in (*CATEGORIES, "other")}
    for event in prof.key_averages():
        totals[category(event.key)] += event.self_cpu_time_total / 1e3
    per = {c: round(ms / (members * steps), 3) for c, ms in totals.items()}
    per["all"] = round(sum(totals.values()) / (members * steps), 3)
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = batch_pool(args.members)
    ms: dict[str, dict[str, float]] = {}
    for way, make in (("one after another", loop_way), ("together", vmap_way)):
        step = make(args.members)
        for p, precision in PRECISIONS.items():
            ms[f"{way}/{p}"] = profiled(step, data, precision, args.members, args.steps)
    products = {k: round(MFLOP_PER_SAMPLE * BATCH / v["matrix products"], 1) for k, v in ms.items()}  # MFLOP/ms = GFLOP/s
    print(json.dumps({"hardware": hardware(), "threads": args.threads, "members": args.members, "steps": args.steps,
                      "ms_per_member_step": ms, "matrix_products_gflops": products}))


if __name__ == "__main__":
    main()
