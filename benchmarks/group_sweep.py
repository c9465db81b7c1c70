"""Nine MNIST JMVAE-kl models (3 alphas x 3 seeds) trained together against the same nine one after another.

    python benchmarks/group_sweep.py [--steps 30] [--warmup 5] [--rounds 3] [--threads 2] [--device cpu]

Both ways are the library's own training: ``jmvae.training.train`` once per (alpha, seed) (what
nine ``jmvae train`` runs do, in this process), and ``jmvae.training.group.train_group`` of the
nine (what ``jmvae train --seeds 0,1,2 --alpha 0.01,0.1,1`` does: stacked parameters, one vmapped
loss, per-member clipping, one fused Adam). The paper's MNIST architecture (z = 64, hidden 512,
batch 100, clip 5), on MNIST when ``$JMVAE_DATA/mnist`` has it, else MNIST-shaped random data.
Each way trains ``--warmup + --steps`` steps; the ``--steps`` after the warm-up are timed (by
``on_step``), so building models and the last checkpoint are not. Rounds interleave the ways,
float32 and bf16 autocast (``--train-precision bf16``), so drift hits them alike.

The same run times the matrix products the steps are made of, for the fraction of the peak:
a (100 x 512) @ (512 x 512) product and the stacked one, a (9, 100, 512) @ (9, 512, 512) bmm, in
float32 and bf16. The model's FLOPs per sample are counted from its linear layers (forward and
backward: 3 x 2 x in x out). Prints one JSON line: the hardware (``jmvae.experiments.hardware``),
samples/s summed over the nine members (median of rounds), together / one after another, and the
products' GFLOP/s with the fraction of them each way reaches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from jmvae import presets
from jmvae.data import PairedData, image_label_modalities, load_dataset
from jmvae.errors import DataError
from jmvae.experiments.hardware import hardware
from jmvae.models import build_model
from jmvae.training import train
from jmvae.training.group import train_group

ALPHAS, SEEDS, BATCH = (0.01, 0.1, 1.0), (0, 1, 2), 100
MEMBERS = [(alpha, seed) for alpha in ALPHAS for seed in SEEDS]


def mnist() -> PairedData:
    try:
        return load_dataset("mnist")
    except DataError:  # no MNIST files: the same shapes, random
        generator = torch.Generator().manual_seed(0)
        train = {"image": torch.rand(60_000, 28, 28, generator=generator),
                 "label": torch.randint(0, 10, (60_000,), generator=generator)}
        return PairedData("mnist-shaped", image_label_modalities(28, 28, 10), tuple(map(str, range(10))), train, train,
                          binarized=("image",))


class Clock:
    """``on_step``: the time of the end of step ``warmup`` and of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def __call__(self, step: int) -> None:
        now = time.perf_counter()
        if step == self.warmup:
            self.start = now
        self.end = now


def together(data: PairedData, args: argparse.Namespace, precision: str) -> float:
    model_config, train_config = configs(data, args, precision, seed=0, alpha=0.1)
    clock = Clock(args.warmup)
    with tempfile.TemporaryDirectory() as out:
        train_group(model_config, train_config, data, Path(out), MEMBERS, progress=False, on_step=clock)
    return len(MEMBERS) * BATCH * args.steps / (clock.end - clock.start)


def one_after_another(data: PairedData, args: argparse.Namespace, precision: str) -> float:
    seconds = 0.0
    for alpha, seed in MEMBERS:
        model_config, train_config = configs(data, args, precision, seed, alpha)
        clock = Clock(args.warmup)
        train(model_config, train_config, data, None, progress=False, on_step=clock)
        seconds += clock.end - clock.start
    return len(MEMBERS) * BATCH * args.steps / seconds


def configs(data: PairedData, args: argparse.Namespace, precision: str, seed: int, alpha: float):
    model_config, _ = presets.model_config("mnist", "jmvae-kl", data.modalities, alpha)
    train_config = presets.train_config("mnist", max_steps=args.warmup + args.steps, batch_size=BATCH, seed=seed,
                                        device=args.device, threads=args.threads, precision=precision)
    return model_config, train_config


def flops_per_sample(data: PairedData) -> int:
    model = build_model(presets.model_config("mnist", "jmvae-kl", data.modalities, 0.1)[0])
    return sum(3 * 2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def product_gflops(device: str, dtype: torch.dtype, members: int | None, repeats: int = 30) -> float:
    """GFLOP/s of (100 x 512) @ (512 x 512), or of ``members`` of them as one bmm."""
    shape = (members,) if members else ()
    a = torch.randn(*shape, BATCH, 512, device=device, dtype=dtype)
    b = torch.randn(*shape, 512, 512, device=device, dtype=dtype)
    for _ in range(5):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * BATCH * 512 * 512 * (members or 1) * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per way and round (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them (default 5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = mnist()
    precisions = args.precisions.split(",")
    ways = {"together": together, "one_after_another": one_after_another}
    rates: dict[str, list[float]] = {f"{w}/{p}": [] for p in precisions for w in ways}
    products: dict[str, list[float]] = {f"{kind}/{p}": [] for p in precisions for kind in ("mm", "bmm9")}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    for _ in range(args.rounds):
        for p in precisions:
            for w, way in ways.items():
                rates[f"{w}/{p}"].append(way(data, args, p))
            products[f"mm/{p}"].append(product_gflops(args.device, dtypes[p], None))
            products[f"bmm9/{p}"].append(product_gflops(args.device, dtypes[p], len(MEMBERS)))
    medians = {k: round(statistics.median(v)) for k, v in rates.items()}
    peaks = {k: round(statistics.median(v), 1) for k, v in products.items()}
    flops = flops_per_sample(data)
    print(json.dumps({
        "hardware": hardware(), "data": data.name, "members": len(MEMBERS), "steps": args.steps,
        "rounds": args.rounds, "samples_per_s": medians,
        "together_over_one_after_another": {p: round(medians[f"together/{p}"] / medians[f"one_after_another/{p}"], 2)
                                            for p in precisions},
        "mflop_per_sample": round(flops / 1e6, 1), "product_gflops": peaks,
        "fraction_of_product_peak": {f"{w}/{p}": {kind: round(medians[f"{w}/{p}"] * flops / 1e9 / peaks[f"{kind}/{p}"], 2)
                                                  for kind in ("mm", "bmm9")}
                                     for p in precisions for w in ways},
    }))


if __name__ == "__main__":
    main()
