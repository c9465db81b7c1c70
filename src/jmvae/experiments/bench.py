"""``jmvae bench``: training and evaluation throughput, and peak memory, on the paper's MNIST model.

- Training: ``jmvae.training.train`` itself (the loop every run uses: on-device batching and
  binarisation, the model's loss, backward, clipping at 5, Adam) on MNIST-shaped data (60,000
  examples of 28x28 intensities and 10 classes; real MNIST with ``data_dir``), batch 100.
  Steps are timed after ``warmup`` steps, through ``train``'s ``on_step`` callback (with
  ``compile``, the compilation falls in the warm-up).
- Evaluation: the importance-weighted estimator (``jmvae.estimators.iw_log_likelihoods``) with
  the joint proposal q(z | x, w), k samples per test point (1000 by default), the bounds of
  log p(x) and log p(x, w) from one decoder pass, as ``evaluate`` computes them. Throughput is
  importance samples per second: test points x k / seconds.
- Memory: each phase runs in a fresh process, so its peak resident set size (and the peak CUDA
  memory on a GPU) is its own.

The architecture is the paper's for MNIST (Table 1): z = 64, hidden 512, JMVAE-kl by default.
Measurements made with it, and the commands that made them: docs/benchmarks.md.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch

from jmvae.config import ModelConfig, TrainConfig
from jmvae.experiments.hardware import hardware


@dataclass(frozen=True)
class BenchConfig:
    device: str = "cpu"
    model: str = "jmvae-kl"
    alpha: float = 0.1
    batch_size: int = 100
    train_steps: int = 300
    warmup_steps: int = 30
    eval_points: int = 100
    eval_batch_size: int = 10
    k: int = 1000
    chunk: int | None = None
    threads: int | None = None
    data_dir: str | None = None
    precision: str = "fp32"
    compile: bool = False


def bench_data(config: BenchConfig):
    """Real MNIST if ``data_dir`` is given, else MNIST-shaped random intensities and labels."""
    from jmvae.data import PairedData, image_label_modalities, load_dataset

    if config.data_dir:
        return load_dataset("mnist", config.data_dir)
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> dict[str, torch.Tensor]:
        return {"image": torch.rand(n, 28, 28, generator=generator),
                "label": torch.randint(0, 10, (n,), generator=generator)}

    test = split(max(config.eval_points, 1))
    test["image"] = (test["image"] > 0.5).float()
    return PairedData("mnist-shaped", image_label_modalities(28, 28, 10), tuple(map(str, range(10))), split(60_000), test)


def model_config(config: BenchConfig, data) -> ModelConfig:
    alpha = config.alpha if config.model == "jmvae-kl" else 0.0
    return ModelConfig(config.model, data.modalities, latent_dim=64, hidden_dim=512, alpha=alpha)


def peak_memory(device: str) -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_phase(config: BenchConfig) -> dict[str, Any]:
    from jmvae.training import train

    if config.threads:
        torch.set_num_threads(config.threads)
    data = bench_data(config)
    marks: dict[int, float] = {}
    first, last = config.warmup_steps, config.warmup_steps + config.train_steps

    def on_step(step: int) -> None:
        if step in (first, last):
            synchronize(config.device)
            marks[step] = time.perf_counter()

    train_config = TrainConfig(epochs=10_000, max_steps=last, batch_size=config.batch_size, device=config.device,
                               precision=config.precision, compile=config.compile)
    train(model_config(config, data), train_config, data, progress=False, on_step=on_step)
    seconds = marks[last] - marks[first]
    return {"train_samples_per_s": config.train_steps * config.batch_size / seconds,
            "train_seconds": seconds, **{f"train_{k}": v for k, v in peak_memory(config.device).items()}}


def eval_phase(config: BenchConfig) -> dict[str, Any]:
    from jmvae.estimators import iw_log_likelihoods
    from jmvae.models import build_model

    if config.threads:
        torch.set_num_threads(config.threads)
    data = bench_data(config)
    torch.manual_seed(0)
    model = build_model(model_config(config, data)).to(config.device).eval()
    names = model.config.names
    x = names[0]
    test = {k: v[: config.eval_points].to(config.device) for k, v in data.test.items()}

    precision = torch.autocast(torch.device(config.device).type, dtype=torch.bfloat16) if config.precision == "bf16" else nullcontext()

    def run(points: int) -> float:
        started = time.perf_counter()
        for start in range(0, points, config.eval_batch_size):
            batch = {k: v[start : min(points, start + config.eval_batch_size)] for k, v in test.items()}
            with torch.inference_mode(), precision:
                proposal = model.posterior(batch, names)
                iw_log_likelihoods(model, batch, [(x,), names], proposal, config.k, config.chunk)
        synchronize(config.device)
        return time.perf_counter() - started

    run(min(config.eval_points, config.eval_batch_size))  # warm-up
    seconds = run(config.eval_points)
    return {"eval_samples_per_s": config.eval_points * config.k / seconds, "eval_seconds": seconds,
            **{f"eval_{k}": v for k, v in peak_memory(config.device).items()}}


def _child(phase: str, config: BenchConfig, queue: Any) -> None:
    try:
        queue.put(("ok", (train_phase if phase == "train" else eval_phase)(config)))
    except BaseException as exc:  # reported by the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_phase(phase: str, config: BenchConfig) -> dict[str, Any]:
    """One phase in a fresh process (so its peak memory is its own)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(phase, config, queue))
    process.start()
    status, payload = queue.get()
    process.join()
    if status != "ok":
        raise RuntimeError(f"bench {phase} phase failed: {payload}")
    return payload


def bench(config: BenchConfig, log: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Both phases, each announced through ``log`` as it starts; the JSON ``jmvae bench --json`` prints."""
    result: dict[str, Any] = {"config": asdict(config)}
    log(f"timing training: {config.warmup_steps} warm-up steps, then {config.train_steps} timed steps of batch {config.batch_size}")
    result.update(run_phase("train", config))
    log(f"{result['train_samples_per_s']:.0f} samples/s; timing evaluation: {config.eval_points} test points, k = {config.k}")
    result.update(run_phase("eval", config))
    result["peak_rss_mb"] = max(result["train_peak_rss_mb"], result["eval_peak_rss_mb"])
    if "train_peak_gpu_mb" in result:
        result["peak_gpu_mb"] = max(result["train_peak_gpu_mb"], result["eval_peak_gpu_mb"])
    own = torch.get_num_threads()
    threads = config.threads or own
    result["hardware"] = hardware().replace(f"{own} torch thread{'s' * (own != 1)}", f"{threads} torch thread{'s' * (threads != 1)}")
    result["python"] = sys.version.split()[0]
    return result

