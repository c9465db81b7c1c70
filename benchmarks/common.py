"""Shared helpers for the peer benchmarks (MultiVae, Pixyz, a hand-written loop).

No dependency on the ``jmvae`` package: these scripts run in a separate virtual environment
(``/work/peers-venv``) that has the peers installed and not ``jmvae``.

- MNIST: read from the IDX files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``)
  with gzip + numpy; intensities / 255. The folder is ``--data-dir``, else ``$JMVAE_DATA/mnist``,
  else ``/work/shared/data/mnist``. Without the files, MNIST-shaped random data (60,000 x 784
  intensities, 10 classes) is used and the JSON line says ``"data": "synthetic"``.
- Batches: held in tensors, reshuffled each epoch, binarized stochastically per batch
  (``torch.bernoulli``), as the paper's training (no DataLoader).
- Timing: ``StepTimer`` stamps the end of step ``warmup`` and of step ``warmup + steps``;
  samples/s = steps * batch_size / seconds between the two.
- Output: one JSON line on stdout (everything else the peers print goes to stderr).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import numpy as np
import torch

# The paper's MNIST model (SETUP.md).
X_DIM = 784
W_DIM = 10
Z_DIM = 64
HIDDEN = 512
ALPHA = 0.1
LR = 1e-3
BATCH_SIZE = 100
CLIP = 5.0

DEFAULT_MNIST_DIRS = ("/work/shared/data/mnist",)


def parse_args(description: str, extra: Any = None, argv: list[str] | None = None) -> argparse.Namespace:
    """The flags every benchmark takes; ``extra(parser)`` adds a script's own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=int, default=300, help="timed optimisation steps (default 300)")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps before timing starts (default 30)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads(T) (default: torch's default)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training examples (smoke tests of epoch boundaries)")
    p.add_argument("--data-dir", default=None,
                   help="folder with MNIST's IDX .gz files (default $JMVAE_DATA/mnist or /work/shared/data/mnist)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.limit is not None and args.limit < args.batch_size:
        p.error("--limit must be >= --batch-size")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def setup_torch(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)


# ---------------------------------------------------------------- MNIST


def mnist_dir(data_dir: str | None = None) -> Path | None:
    """The first folder that has MNIST's training IDX files, or None."""
    candidates = []
    if data_dir:
        candidates.append(Path(data_dir))
    if os.environ.get("JMVAE_DATA"):
        candidates.append(Path(os.environ["JMVAE_DATA"]) / "mnist")
    candidates += [Path(d) for d in DEFAULT_MNIST_DIRS]
    for d in candidates:
        if (d / "train-images-idx3-ubyte.gz").is_file() and (d / "train-labels-idx1-ubyte.gz").is_file():
            return d
    if data_dir:
        raise FileNotFoundError(f"no train-images-idx3-ubyte.gz / train-labels-idx1-ubyte.gz in {data_dir}")
    return None


def read_idx_images(path: Path) -> np.ndarray:
    """uint8 (N, rows * cols) from an IDX3 file (16-byte header: magic 2051, N, rows, cols)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(n), int(rows) * int(cols))


def read_idx_labels(path: Path) -> np.ndarray:
    """uint8 (N,) from an IDX1 file (8-byte header: magic 2049, N)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = np.frombuffer(raw[:8], dtype=">i4")
    if magic != 2049:
        raise ValueError(f"{path}: not an IDX1 label file (magic {magic})")
    labels = np.frombuffer(raw[8:], dtype=np.uint8)
    if len(labels) != n:
        raise ValueError(f"{path}: {len(labels)} labels, header says {n}")
    return labels


def load_train(data_dir: str | None = None, seed: int = 0,
               limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(intensities float32 (N, 784) in [0, 1], labels int64 (N,), "mnist" | "synthetic");
    the first ``limit`` examples when given."""
    d = mnist_dir(data_dir)
    if d is not None:
        images = read_idx_images(d / "train-images-idx3-ubyte.gz")
        labels = read_idx_labels(d / "train-labels-idx1-ubyte.gz")
        x = torch.from_numpy(images.astype(np.float32) / 255.0)
        w = torch.from_numpy(labels.astype(np.int64))
        kind = "mnist"
    else:
        g = torch.Generator().manual_seed(seed)
        x, w, kind = torch.rand(60_000, X_DIM, generator=g), torch.randint(0, W_DIM, (60_000,), generator=g), "synthetic"
    if limit is not None:
        x, w = x[:limit], w[:limit]
    return x, w, kind


def torchvision_mnist_root(data_dir: str | None = None) -> str | None:
    """A root that ``torchvision.datasets.MNIST(root, download=False)`` accepts: it wants the four
    IDX files decompressed in ``ROOT/MNIST/raw/``. Decompresses once into a cache folder
    (``$JMVAE_BENCH_CACHE``, default ``/tmp/jmvae-bench-cache``); None when MNIST is not here."""
    d = mnist_dir(data_dir)
    if d is None:
        return None
    root = Path(os.environ.get("JMVAE_BENCH_CACHE", "/tmp/jmvae-bench-cache"))
    raw = root / "MNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if not all((d / f"{n}.gz").is_file() for n in names):
        return None
    raw.mkdir(parents=True, exist_ok=True)
    for n in names:
        target = raw / n
        if not target.is_file():
            tmp = raw / f"{n}.part"
            with gzip.open(d / f"{n}.gz", "rb") as src, open(tmp, "wb") as dst:
                dst.write(src.read())
            tmp.replace(target)
    return str(root)


class TensorBatches:
    """Endless shuffled mini-batches from in-memory tensors; images re-binarized per batch.

    Yields (x, w_onehot, w_index): x float32 (B, 784) of {0, 1}, w_onehot float32 (B, 10).
    The last partial batch of an epoch is dropped (60,000 / 100 divides exactly anyway).
    """

    def __init__(self, x: torch.Tensor, w: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        self.x = x
        self.w = w
        self.w_onehot = torch.nn.functional.one_hot(w, W_DIM).float()
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.steps_per_epoch = len(x) // batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        b = self.batch_size
        while True:
            perm = torch.randperm(len(self.x), generator=self.generator)
            for i in range(self.steps_per_epoch):
                idx = perm[i * b : (i + 1) * b]
                yield torch.bernoulli(self.x[idx]), self.w_onehot[idx], self.w[idx]


# ---------------------------------------------------------------- timing and output


class StepTimer:
    """Call ``step_done()`` after every optimisation step; it stamps the end of step ``warmup``
    (or the start, when warmup is 0) and of step ``warmup + steps``."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup = warmup
        self.steps = steps
        self.done = 0
        self.start: float | None = time.perf_counter() if warmup == 0 else None
        self.end: float | None = None

    def step_done(self) -> bool:
        """True once the last timed step has finished."""
        self.done += 1
        if self.done == self.warmup:
            self.start = time.perf_counter()
        if self.done == self.warmup + self.steps:
            self.end = time.perf_counter()
        return self.finished

    @property
    def finished(self) -> bool:
        return self.end is not None

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            raise RuntimeError(f"timing incomplete: {self.done} steps done, wanted {self.warmup} + {self.steps}")
        return self.end - self.start


def emit(name: str, args: argparse.Namespace, timer: StepTimer, **extra: Any) -> dict[str, Any]:
    """Print the one JSON line on stdout."""
    seconds = timer.seconds
    result: dict[str, Any] = {
        "name": name,
        "samples_per_s": timer.steps * args.batch_size / seconds,
        "steps": timer.steps,
        "seconds": seconds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    result.update({"warmup": timer.warmup, "batch_size": args.batch_size}, **extra)
    if getattr(args, "limit", None) is not None:
        result["limit"] = args.limit
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return result
