"""A/B measurements behind docs/benchmarks.md: one JMVAE-kl step or one bound, one change at a time.

    .venv/bin/python benchmarks/ablations.py optimizer   # default multi-tensor Adam vs fused Adam
    .venv/bin/python benchmarks/ablations.py clip        # gradient-norm clipping: default vs foreach
    .venv/bin/python benchmarks/ablations.py clip-adam   # clip_grad_norm_ vs the clip factor inside fused Adam
    .venv/bin/python benchmarks/ablations.py relu        # ReLU out of place vs in place
    .venv/bin/python benchmarks/ablations.py matmul      # one thread: a training and an evaluation product in float32, oneDNN bf16, bf16, bf16 with casts
    .venv/bin/python benchmarks/ablations.py profile     # where a float32 step's time goes (torch.profiler, 50 steps)
    .venv/bin/python benchmarks/ablations.py flops       # GFLOP of a training step, MFLOP of an importance sample
    .venv/bin/python benchmarks/ablations.py compile     # eager loss vs torch.compile'd loss, float32 and bf16
    .venv/bin/python benchmarks/ablations.py compile-fp32  # the same in float32 alone (a CPU without bf16 instructions), 3 rounds
    .venv/bin/python benchmarks/ablations.py bf16        # training step: float32, bf16 autocast, oneDNN bf16 products; bound: float32 vs autocast
    .venv/bin/python benchmarks/ablations.py chunk       # estimator rows per chunk: 20,000 ... 1,000
    .venv/bin/python benchmarks/ablations.py bernoulli   # binary cross-entropy vs log sigmoid((2x-1) l)
    .venv/bin/python benchmarks/ablations.py sparse-input  # first layer on binary images: dense product vs sums of the rows of the ones
    .venv/bin/python benchmarks/ablations.py page-faults   # page faults and kernel CPU time per step of jmvae.train (bench config)
    .venv/bin/python benchmarks/ablations.py shared-input  # two 784 -> 512 layers on the same images: two products vs one of 1024 columns
    .venv/bin/python benchmarks/ablations.py autotune      # torch.compile'd loss with inductor's max-autotune (ATen vs C++ GEMM templates)

Paper architecture (z = 64, hidden 512, alpha = 0.1), batch 100, MNIST-shaped random data (the
speed of these dense products does not depend on the values). Run on a quiet machine.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import sys
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from jmvae import ModelConfig, build_model
from jmvae.data import binarize, image_label_modalities
from jmvae.estimators import iw_log_likelihoods
from jmvae.experiments.hardware import hardware
from jmvae.training.optim import clip_gradients


@contextlib.contextmanager
def bf16_cpu_matmuls(enabled: bool) -> Iterator[None]:
    """While open (``enabled``), float32 matrix products on the CPU take bfloat16 inputs and
    accumulate in float32 inside oneDNN (``torch.set_float32_matmul_precision("medium")``),
    forward and backward; tensors stay float32. (``--train-precision bf16`` used this path on
    CPUs with AMX until 2026-11-30; it now uses autocast everywhere, see training.py.)"""
    if not enabled:
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def model_and_data():
    torch.manual_seed(0)
    model = build_model(ModelConfig("jmvae-kl", image_label_modalities(28, 28, 10), 64, 512, alpha=0.1))
    model.check_label_range = False  # as in the training loop: the labels are in range, checked once
    return model, torch.rand(6000, 28, 28), torch.randint(0, 10, (6000,))


def train_rate(fused: bool = True, foreach_clip: bool | None = None, compiled: bool | str = False, bf16: bool = False,
               clip_in_adam: bool = False, inplace_relu: bool = True, bf16_matmuls: bool = False,
               steps: int = 200, profiled: bool = False) -> float:
    model, x, w = model_and_data()
    for module in model.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = inplace_relu
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4, fused=fused)
    parameters = list(model.parameters())
    generator = torch.Generator().manual_seed(0)
    loss_fn = lambda b, noise: model.loss(b, 1.0, 1.0, noise).total  # noqa: E731
    if compiled == "max-autotune":  # inductor benchmarks each product's candidate kernels, C++ templates included
        import torch._inductor.config as inductor_config

        inductor_config.max_autotune, inductor_config.max_autotune_gemm_backends = True, "CPP,ATEN"
    loss_fn = torch.compile(loss_fn) if compiled else loss_fn
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step(i: int) -> None:
        idx = torch.arange(i * 100 % 6000, i * 100 % 6000 + 100)
        batch = {"image": binarize(x[idx], generator), "label": w[idx]}
        with precision():
            loss = loss_fn(batch, torch.randn(100, 64))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_in_adam:
            clip_gradients(optimizer, parameters, 5.0)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, 5.0, foreach=foreach_clip)
        optimizer.step()

    with bf16_cpu_matmuls(bf16_matmuls):
        for i in range(20):
            step(i)
        started = time.perf_counter()
        for i in range(steps):
            step(i)
        rate = steps * 100 / (time.perf_counter() - started)
        if profiled:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
                for i in range(50):
                    step(i)
            print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        return rate


def flop_counts() -> dict[str, str]:
    """Floating-point operations (torch.utils.flop_counter: the matrix products) of one training
    step of 100 (forward and backward) and of one importance sample of the log p(x) bound."""
    from torch.utils.flop_counter import FlopCounterMode

    model, x, w = model_and_data()
    batch = {"image": binarize(x[:100], torch.Generator().manual_seed(0)), "label": w[:100]}
    with FlopCounterMode(display=False) as step:
        model.loss(batch, 1.0, 1.0, torch.randn(100, 64)).total.backward()
    model.eval()
    ten = {key: v[:10] for key, v in batch.items()}
    with torch.inference_mode(), FlopCounterMode(display=False) as bound:
        iw_log_likelihoods(model, ten, [("image",)], model.posterior(ten, ("image", "label")), 1000)
    return {"training step of 100": f"{step.get_total_flops() / 1e9:.3f} GFLOP",
            "one importance sample of the log p(x) bound": f"{bound.get_total_flops() / 1e4 / 1e6:.3f} MFLOP"}


def bound_rate(batch_size: int, chunk: int | None, bf16: bool = False, images: int = 200) -> float:
    model, _, _ = model_and_data()
    model.eval()
    x, w = (torch.rand(images, 28, 28) < 0.3).float(), torch.randint(0, 10, (images,))
    precision = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    started = time.perf_counter()
    for s in range(0, images, batch_size):
        batch = {"image": x[s : s + batch_size], "label": w[s : s + batch_size]}
        with torch.inference_mode(), precision:
            q = model.posterior(batch, ("image", "label"))
            iw_log_likelihoods(model, batch, [("image",)], q, 1000, chunk)
    return images * 1000 / (time.perf_counter() - started)


def bernoulli_ms() -> dict[str, float]:
    logits, x = torch.randn(100, 25, 784), (torch.rand(25, 784) < 0.3).float()
    sign = 2 * x - 1
    variants = {
        "binary_cross_entropy_with_logits": lambda: -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1),
        "logsigmoid((2x-1) l)": lambda: F.logsigmoid(logits * sign).sum(-1),
    }
    out = {}
    for name, f in variants.items():
        f()
        started = time.perf_counter()
        for _ in range(20):
            f()
        out[name] = (time.perf_counter() - started) / 20 * 1e3
    return out


def matmul_us() -> dict[str, str]:
    """One thread: a training product ([100, 784] x [784, 512], the first layer at batch 100) and an
    evaluation product ([2500, 512] x [512, 784], the image decoder's last layer on one chunk) in
    float32, in float32 with oneDNN's bfloat16 internals (``bf16_cpu_matmuls``), in
    bfloat16, and in bfloat16 with both operands cast from float32 each time (what autocast does).
    GFLOP/s against the core's float32 peak says how much a float32 step can still gain."""
    torch.set_num_threads(1)
    out = {}
    for m, k, n in ((100, 784, 512), (2500, 512, 784)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        a16, b16 = a.bfloat16(), b.bfloat16()
        variants = {"float32": (lambda: a @ b, False), "float32, oneDNN bf16 internals": (lambda: a @ b, True),
                    "bfloat16": (lambda: a16 @ b16, False), "cast + bfloat16": (lambda: a.bfloat16() @ b.bfloat16(), False)}
        for name, (f, medium) in variants.items():
            with bf16_cpu_matmuls(medium):
                for _ in range(10):
                    f()
                repeats = max(20, int(2e10 // (2 * m * k * n)))
                started = time.perf_counter()
                for _ in range(repeats):
                    f()
                seconds = (time.perf_counter() - started) / repeats
            out[f"[{m}, {k}] x [{k}, {n}] {name}"] = f"{seconds * 1e6:.0f} us, {2 * m * k * n / seconds / 1e9:.0f} GFLOP/s"
    return out


def sparse_input_ms(steps: int = 200) -> dict[str, str]:
    """The first layer (784 -> 512) on a batch of 100 binarized images, forward and weight
    gradient, as the dense product the model computes and as two ways of adding up only the
    weight rows of the pixels that are 1 (about 13% of MNIST's after binarization): an
    embedding bag (exact sums of rows) and a sparse COO product. Torch's threads as set."""
    x = (torch.rand(100, 784, generator=torch.Generator().manual_seed(0)) < 0.13).float()
    weight = torch.randn(784, 512, requires_grad=True)
    grad_out = torch.randn(100, 512)

    def dense() -> None:
        (x @ weight).backward(grad_out)

    def embedding_bag() -> None:
        rows, cols = x.nonzero(as_tuple=True)
        F.embedding_bag(cols, weight, torch.searchsorted(rows, torch.arange(100)), mode="sum").backward(grad_out)

    def sparse_coo() -> None:
        torch.sparse.mm(x.to_sparse(), weight).backward(grad_out)

    out = {}
    for f in (dense, embedding_bag, sparse_coo):
        for _ in range(20):
            f()
        started = time.perf_counter()
        for _ in range(steps):
            f()
        out[f.__name__] = f"{(time.perf_counter() - started) / steps * 1e3:.3f} ms"
    return out


def shared_input_us(repeats: int = 500) -> dict[str, str]:
    """The joint encoder's image branch and q(z|x)'s first layer both multiply the same binarized
    images by a 784 x 512 weight. Forward and weight gradient (batch 100, torch's threads as set)
    as the two products the model computes, as one product with a 784 x 1024 weight (what storing
    the two layers as one would give), and as one product of the two weights concatenated each
    step (what fusing them without changing the model's parameters would cost)."""
    torch.manual_seed(0)
    x = (torch.rand(100, 784) < 0.13).float()
    w1, w2 = torch.randn(512, 784, requires_grad=True), torch.randn(512, 784, requires_grad=True)
    w = torch.randn(1024, 784, requires_grad=True)
    g, g2 = torch.randn(100, 512), torch.randn(100, 1024)
    variants = {
        "two products": lambda: torch.autograd.backward([x @ w1.t(), x @ w2.t()], [g, g]),
        "one product, 1024 columns": lambda: (x @ w.t()).backward(g2),
        "one product of concatenated weights": lambda: (x @ torch.cat([w1, w2]).t()).backward(g2),
    }
    out = {}
    for name, f in [*variants.items(), *variants.items()]:  # twice, interleaved: the second pass is reported
        for _ in range(20):
            f()
        started = time.perf_counter()
        for _ in range(repeats):
            f()
        out[name] = f"{(time.perf_counter() - started) / repeats * 1e6:.0f} us"
    return out


def page_faults_per_step(steps: int = 300, warmup: int = 30) -> dict[str, float]:
    """Minor page faults and kernel (system) CPU time per step of ``jmvae.train`` on the bench's
    MNIST-shaped data, counted with getrusage between two of its ``on_step`` callbacks."""
    from jmvae.experiments.bench import BenchConfig, bench_data, model_config
    from jmvae.config import TrainConfig
    from jmvae.training import train

    config = BenchConfig()
    data = bench_data(config)
    marks: dict[int, tuple[float, resource.struct_rusage]] = {}

    def on_step(step: int) -> None:
        if step in (warmup, warmup + steps):
            marks[step] = (time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF))

    train(model_config(config, data), TrainConfig(epochs=100, max_steps=warmup + steps, batch_size=100), data,
          progress=False, on_step=on_step)
    (t0, a), (t1, b) = marks[warmup], marks[warmup + steps]
    cpu = (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)
    return {"samples/s": steps * 100 / (t1 - t0), "page faults per step": (b.ru_minflt - a.ru_minflt) / steps,
            "kernel share of CPU time": (b.ru_stime - a.ru_stime) / cpu}


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "optimizer"
    if what == "optimizer":
        print({"adam (multi-tensor)": train_rate(fused=False), "adam fused": train_rate(fused=True)})
    elif what == "clip":
        print({"clip default": train_rate(foreach_clip=None), "clip foreach": train_rate(foreach_clip=True)})
    elif what == "clip-adam":
        print({"clip_grad_norm_": train_rate(), "clip inside fused Adam": train_rate(clip_in_adam=True)})
    elif what == "relu":
        print({"relu": train_rate(clip_in_adam=True, inplace_relu=False), "relu in place": train_rate(clip_in_adam=True)})
    elif what == "matmul":
        print(matmul_us())
    elif what == "profile":
        print({"samples/s": train_rate(clip_in_adam=True, profiled=True)})
    elif what == "flops":
        print(flop_counts())
    elif what == "compile":  # as --compile runs it: label ranges checked before the loop, one graph
        print({"fp32 eager": train_rate(clip_in_adam=True), "fp32 torch.compile": train_rate(clip_in_adam=True, compiled=True),
               "bf16 eager": train_rate(clip_in_adam=True, bf16=True),
               "bf16 torch.compile": train_rate(clip_in_adam=True, bf16=True, compiled=True)})
    elif what == "compile-fp32":  # rounds interleave the two, so drift (a neighbour's load) hits both alike
        rounds = [(train_rate(clip_in_adam=True), train_rate(clip_in_adam=True, compiled=True)) for _ in range(3)]
        print({"hardware": hardware(), "fp32 eager": [round(e) for e, _ in rounds], "fp32 torch.compile": [round(c) for _, c in rounds],
               "compiled / eager (median)": round(statistics.median(c / e for e, c in rounds), 3)})
    elif what == "bf16":
        print({"train fp32": train_rate(clip_in_adam=True), "train bf16 autocast": train_rate(clip_in_adam=True, bf16=True),
               "train bf16 matmuls (oneDNN)": train_rate(clip_in_adam=True, bf16_matmuls=True),
               "bound fp32": bound_rate(100, 25), "bound bf16": bound_rate(100, 25, bf16=True)})
    elif what == "chunk":
        print({f"{rows} rows": bound_rate(100, rows // 100) for rows in (20_000, 10_000, 5_000, 2_500, 1_000)})
    elif what == "page-faults":
        print(page_faults_per_step())
    elif what == "sparse-input":
        print(sparse_input_ms())
    elif what == "shared-input":
        print(shared_input_us())
    elif what == "autotune":
        print({"fp32 torch.compile": train_rate(clip_in_adam=True, compiled=True),
               "fp32 torch.compile max-autotune": train_rate(clip_in_adam=True, compiled="max-autotune")})
    elif what == "bernoulli":
        print({k: f"{v:.2f} ms" for k, v in bernoulli_ms().items()})
    else:
        raise SystemExit(f"unknown ablation {what!r}; see the docstring")


if __name__ == "__main__":
    main()
