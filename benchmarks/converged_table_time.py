"""How long the converged Table 1 takes here: every row x 3 seeds x 500 epochs, trained in groups.

    python benchmarks/converged_table_time.py [--steps 40] [--warmup 5] [--threads 1] [--precision bf16] [--jobs 2]
                                              [--device cpu|cuda]

The converged table (issue 15) trains VAE, CVAE, CMMA, JMVAE-zero and JMVAE-kl (alpha 0.01, 0.1,
1) with seeds 0, 1, 2 for 500 epochs of 600 steps on MNIST. ``jmvae reproduce --seeds`` trains the
rows that share an architecture together (``jmvae.training.group``): one group of nine JMVAE-kl
members, and one of three seeds for each other row. This times ``--steps`` steps of each group
(after ``--warmup`` untimed ones; ``on_step``), under the given precision and threads, and one
model's evaluation at the full protocol (k = 1000, N_w = 5000) on ``--eval-images`` test images,
scaled to the 10,000; then projects the wall time: each group's 300,000 steps plus its members'
evaluations, scheduled longest first on ``--jobs`` workers (what ``--jobs`` does with groups).
Prints one JSON line with the hardware, the measured seconds per group step and per test image,
and the projection.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from jmvae import presets
from jmvae.config import EvalConfig
from jmvae.data import load_dataset
from jmvae.evaluation import evaluate
from jmvae.experiments.hardware import hardware
from jmvae.runs import load_run
from jmvae.training.group import train_group

from group_sweep import Clock  # beside this script

SEEDS = (0, 1, 2)
GROUPS = {  # name: (kind, alphas)
    "jmvae-kl x9": ("jmvae-kl", (0.01, 0.1, 1.0)),
    "jmvae-zero x3": ("jmvae-zero", (0.0,)),
    "vae x3": ("vae", (0.0,)),
    "cvae x3": ("cvae", (0.0,)),
    "cmma x3": ("cmma", (0.0,)),
}
STEPS_PER_RUN = 500 * 600
TEST_IMAGES = 10_000


def time_group(data, kind: str, alphas: tuple[float, ...], args: argparse.Namespace, out: Path) -> tuple[float, Path]:
    """Seconds per group step, and one member's run folder."""
    model_config, _ = presets.model_config("mnist", kind, data.modalities, alphas[0] if kind == "jmvae-kl" else None)
    train_config = presets.train_config("mnist", max_steps=args.warmup + args.steps, seed=0, threads=args.threads,
                                        precision=args.precision, device=args.device)
    members = [(alpha, seed) for alpha in alphas for seed in SEEDS]
    clock = Clock(args.warmup)
    result = train_group(model_config, train_config, data, out, members, progress=False, on_step=clock)
    return (clock.end - clock.start) / args.steps, out / result.members[0].name


def eval_seconds_per_image(run_dir: Path, data, images: int, device: str) -> float:
    model = load_run(run_dir, device).model
    started = time.perf_counter()
    evaluate(model, data.test, EvalConfig(k=1000, n_prior=5000, limit=images))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / images


def schedule(durations: dict[str, float], jobs: int) -> float:
    """Wall time of ``durations`` run longest first, each on the first free of ``jobs`` workers."""
    workers = [0.0] * jobs
    for seconds in sorted(durations.values(), reverse=True):
        workers[workers.index(min(workers))] += seconds
    return max(workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--eval-images", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    per_step, per_image, groups = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, alphas) in GROUPS.items():
            per_step[name], member = time_group(data, kind, alphas, args, Path(tmp) / kind)
            per_image[name] = eval_seconds_per_image(member, data, args.eval_images, args.device)
            members = len(alphas) * len(SEEDS)
            groups[name] = STEPS_PER_RUN * per_step[name] + members * TEST_IMAGES * per_image[name]
    print(json.dumps({
        "hardware": hardware(), "threads": args.threads, "device": args.device, "precision": args.precision, "steps_timed": args.steps,
        "seconds_per_group_step": {k: round(v, 5) for k, v in per_step.items()},
        "eval_seconds_per_test_image": {k: round(v, 4) for k, v in per_image.items()},
        "projected_hours_per_group": {k: round(v / 3600, 2) for k, v in groups.items()},
        "projected_hours_one_worker": round(sum(groups.values()) / 3600, 2),
        f"projected_hours_{args.jobs}_workers": round(schedule(groups, args.jobs) / 3600, 2),
    }))


if __name__ == "__main__":
    main()
