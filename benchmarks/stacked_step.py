"""Training steps of M JMVAE-kl models one after another against all M in one vmapped step.

    python benchmarks/stacked_step.py [--members 9] [--steps 20] [--rounds 3] [--threads 2]

Issue 15's design question, measured before building on it: at batch 100 one MNIST JMVAE-kl step
leaves most of a CPU's matrix units idle (per-operation overhead), so M models of one
architecture (seeds, alpha values) might train faster as one stacked model. Both ways run the
library's own loss (``model.loss``) on the paper's architecture (z = 64, hidden 512), one fused
Adam step and gradient clipping at 5 per member:

- ``loop``: M models, M optimisers, one step each in turn (what M separate runs do);
- ``vmap``: the M members' parameters stacked (``torch.func.stack_module_state``), the loss of
  every member in one ``torch.func.vmap`` of ``functional_call`` (batched matrix products), one
  backward, per-member gradient norms clipped at 5, one fused Adam over the stacked tensors.

Each member gets its own batch (MNIST-shaped random binary images and labels). Rounds alternate
the two ways, in float32 and under bf16 autocast, so drift hits both alike; it also times a
(100 x 512) @ (512 x 512) matrix product to give the arithmetic peak the steps are measured
against. Prints one JSON line: the hardware, samples/s (M x 100 x steps / s, median of rounds)
for each way and precision, the ratio vmap / loop, and the product's GFLOP/s.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from contextlib import nullcontext

import torch
from torch.func import functional_call, stack_module_state, vmap

from jmvae import ModelConfig, build_model
from jmvae.data import image_label_modalities
from jmvae.experiments.hardware import hardware

BATCH = 100


PRECISIONS = {"fp32": nullcontext, "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}
"""Each precision's context, made anew for every step."""


def batch_pool(members: int) -> list[dict[str, torch.Tensor]]:
    """Four seeded batches of every member, cycled through by the timed steps."""
    generator = torch.Generator().manual_seed(0)
    return [batches(members, generator) for _ in range(4)]


def batches(members: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"image": (torch.rand(members, BATCH, 28, 28, generator=generator) < 0.2).float(),
            "label": torch.randint(0, 10, (members, BATCH), generator=generator)}


def models(members: int) -> list[torch.nn.Module]:
    config = ModelConfig("jmvae-kl", image_label_modalities(28, 28, 10), alpha=0.1)
    out = []
    for seed in range(members):
        torch.manual_seed(seed)
        out.append(build_model(config))
        out[-1].check_label_range = False  # as in the training loop: labels checked once, not per batch
    return out


def loop_way(members: int):
    nets = models(members)
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-4, fused=True) for m in nets]

    def step(batch, precision):
        for i, (model, optimizer) in enumerate(zip(nets, optimizers)):
            with precision:
                loss = model.loss({k: v[i] for k, v in batch.items()}, noise=torch.randn(BATCH, 64)).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0, foreach=True)
            optimizer.step()
    return step


class Loss(torch.nn.Module):
    """The model's negative bound as ``forward``, which is what ``functional_call`` calls."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], noise: torch.Tensor) -> torch.Tensor:
        return self.model.loss(batch, noise=noise).total


def vmap_way(members: int):
    nets = [Loss(m) for m in models(members)]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    optimizer = torch.optim.Adam(list(params.values()), lr=1e-3, eps=1e-4, fused=True)

    def member_loss(p, b, image, label, noise):
        return functional_call(base, (p, b), ({"image": image, "label": label}, noise))

    def step(batch, precision):
        noise = torch.randn(members, BATCH, 64)
        with precision:
            losses = vmap(member_loss, in_dims=(0, 0, 0, 0, 0))(params, buffers, batch["image"], batch["label"], noise)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        grads = [p.grad for p in params.values()]
        norms = torch.stack([g.reshape(members, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()  # (M,)
        scale = (5.0 / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.reshape(members, *([1] * (g.dim() - 1))))
        optimizer.step()
    return step


def matmul_gflops(rounds: int = 50, rows: int = BATCH) -> float:
    """GFLOP/s of a (rows x 512) @ (512 x 512) float32 product (the hidden layers' shape)."""
    a, b = torch.randn(rows, 512), torch.randn(512, 512)
    for _ in range(5):
        a @ b
    start = time.perf_counter()
    for _ in range(rounds):
        a @ b
    return 2 * rows * 512 * 512 * rounds / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = batch_pool(args.members)
    ways = {"loop": loop_way(args.members), "vmap": vmap_way(args.members)}
    precisions = PRECISIONS
    rates: dict[str, list[float]] = {f"{w}/{p}": [] for w in ways for p in precisions}
    measure(args, ways, precisions, data, rates)
    medians = {k: round(statistics.median(v)) for k, v in rates.items()}
    print(json.dumps({"hardware": hardware(), "members": args.members, "samples_per_s": medians,
                      "vmap_over_loop": {p: round(medians[f"vmap/{p}"] / medians[f"loop/{p}"], 2) for p in precisions},
                      "matmul_gflops_fp32": round(matmul_gflops(), 1)}))


def measure(args, ways, precisions, data, rates) -> None:
    """Warm every way up, then time ``args.rounds`` interleaved rounds of ``args.steps`` steps."""
    for step in ways.values():  # warm-up
        for make in precisions.values():
            step(data[0], make())
    for _ in range(args.rounds):
        for p, make in precisions.items():
            for w, step in ways.items():
                start = time.perf_counter()
                for i in range(args.steps):
                    step(data[i % len(data)], make())
                rates[f"{w}/{p}"].append(args.members * BATCH * args.steps / (time.perf_counter() - start))


if __name__ == "__main__":
    main()
