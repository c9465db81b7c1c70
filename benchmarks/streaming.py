"""Streaming a CelebA-size image set from the memory-mapped cache: images/s per access pattern.

    python benchmarks/streaming.py [--n 202599] [--batch 100] [--batches 300] [--dir DIR]

Writes a synthetic uint8 cache of N 3x64x64 images (default CelebA's 202,599: 2.32 GiB) as a
.npy file, opens it the way the CelebA loader does (``np.load(mmap_mode="r")`` inside
``StandardizedImages``) and times what the training loop does per step: index a batch of rows
and get standardised float32 tensors. Three cases: random batches (an epoch's shuffled order)
with the file's pages evicted from the page cache first (``posix_fadvise(DONTNEED)``: what a
first epoch, or a set larger than memory, sees), the same batches again with the pages in the
cache (later epochs when the set fits in memory), and sequential batches, cold. Prints one JSON
line per case.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from jmvae.data import Standardization, StandardizedImages
from jmvae.data.celeba import celeba_modalities
from jmvae.presets import paper_model_config


def evict(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def write_cache(path: Path, n: int, chunk: int = 8192) -> None:
    generator = np.random.default_rng(0)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 3, 64, 64))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        array[start:stop] = generator.integers(0, 256, size=(stop - start, 3, 64, 64), dtype=np.uint8)
    array.flush()
    del array


def time_batches(images: StandardizedImages, batches: list[np.ndarray]) -> float:
    started = time.perf_counter()
    for rows in batches:
        images[torch.from_numpy(rows)]
    return time.perf_counter() - started


def time_training(adversarial: bool, batch: int, steps: int = 4) -> dict[str, float]:
    """The paper's CelebA model: seconds per training step (best of ``steps`` after one warm-up)."""
    from jmvae import build_model
    from jmvae.adversarial import AdversarialStep
    from jmvae.config import AdversarialConfig, TrainConfig
    from jmvae.training import ELBOStep, StepInput
    from jmvae.training.optim import make_optimizer

    torch.manual_seed(0)
    config = paper_model_config("jmvae-kl", celeba_modalities(), 0.1)
    model = build_model(config)
    step = AdversarialStep(model, AdversarialConfig()) if adversarial else ELBOStep(model)
    optimizer = make_optimizer(step.parameter_groups(), TrainConfig(lr=1e-4, betas=(0.5, 0.999)))
    data = {"image": torch.randn(batch, 3, 64, 64), "attributes": torch.randint(0, 2, (batch, 40)).float()}
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        noise = [torch.randn(batch, config.latent_dim) for _ in range(step.noise_draws)]
        objective, _ = step.objective(StepInput(data, data, noise, 1.0, 1.0))
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    best = min(times[1:])
    name = AdversarialConfig().display_name(config) if adversarial else config.display_name
    return {"model": name, "parameters": sum(p.numel() for g in optimizer.param_groups for p in g["params"]),
            "seconds_per_step": round(best, 3), "images_per_s": round(batch / best, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=202_599)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--dir", default=None, help="where to write the synthetic cache (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="jmvae-stream-"))
    path = folder / "synthetic-cache.npy"
    started = time.perf_counter()
    write_cache(path, args.n)
    write_seconds = time.perf_counter() - started
    pixels = np.load(path, mmap_mode="r")
    images = StandardizedImages(pixels, np.arange(args.n), Standardization((0.5, 0.45, 0.4), (0.3, 0.3, 0.3)))
    order = np.random.default_rng(1).permutation(args.n)
    random_batches = [order[i * args.batch : (i + 1) * args.batch] for i in range(args.batches)]
    sequential = [np.arange(i * args.batch, (i + 1) * args.batch) for i in range(args.batches)]
    cases = []
    evict(path)
    cases.append(("random, cold page cache", time_batches(images, random_batches)))
    cases.append(("random, warm page cache", time_batches(images, random_batches)))
    evict(path)
    cases.append(("sequential, cold page cache", time_batches(images, sequential)))
    image_bytes = 3 * 64 * 64
    for name, seconds in cases:
        count = args.batch * args.batches
        print(json.dumps({"case": name, "images": count, "seconds": round(seconds, 3),
                          "images_per_s": round(count / seconds), "mb_per_s": round(count * image_bytes / seconds / 2**20, 1),
                          "ms_per_batch": round(1000 * seconds / args.batches, 2), "batch": args.batch, "n": args.n,
                          "cache_gib": round(args.n * image_bytes / 2**30, 2), "write_seconds": round(write_seconds, 1)}))
    path.unlink()
    for adversarial in (False, True):
        print(json.dumps({"case": "training step, paper CelebA model", "batch": args.batch, "threads": 1,
                          **time_training(adversarial, args.batch)}))


if __name__ == "__main__":
    main()
