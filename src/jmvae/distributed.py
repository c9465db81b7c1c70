"""Data-parallel training and sharded evaluation with ``torch.distributed``.

Launched by ``torchrun`` (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` in the
environment) or by any launcher that sets them: NCCL on GPUs (one per process, by local rank),
gloo on CPUs.

Equivalence with one process. Every rank draws the *global* batch's randomness (shuffle,
binarisation noise, reparameterisation noise) from generators with the same seed and keeps its
own rows, and scales its mean loss by its share of the global batch; the gradients are then
averaged across ranks with one all-reduce. The averaged gradient is the single-process
gradient of the global batch, so N processes follow the same parameters as one process with the
same global batch and seed, up to the order of floating-point sums.

Evaluation shards whole test batches across ranks (batch i on rank i mod N); each batch draws
its importance samples from a generator seeded by (seed, batch index), so a test point gets the
same samples whichever rank evaluates it, and gathering the per-point values reproduces the
single-process result exactly.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from jmvae.errors import JMVAEError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This rank's contiguous share of n global rows (sizes differ by at most one)."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def setup(device: str) -> tuple[World, str]:
    """Join the process group of a torchrun launch; return the world and this rank's device."""
    if not launched_by_torchrun():
        return World(), device
    if not dist.is_available():
        raise JMVAEError("this torch build has no torch.distributed; run on one process", ("distributed",))
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise JMVAEError(f"data parallelism: {', '.join(missing)} not set; launch with torchrun --nproc-per-node N",
                         ("distributed",))
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=timedelta(minutes=30))
        atexit.register(shutdown)
    return current(), device


def average_gradients(parameters: list[torch.nn.Parameter], world: World) -> None:
    """Replace every gradient by its mean over ranks (one all-reduce of a flat buffer)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not world.enabled or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_rank(flags: list[bool], world: World, device: torch.device | str) -> list[bool]:
    """Each flag made true on every rank if it is true on any rank (so all ranks stop together)."""
    if not world.enabled:
        return flags
    value = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return [bool(v) for v in value.tolist()]


def sum_across(values: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """Elementwise sums over ranks of a dict of equally shaped tensors (epoch metrics)."""
    if not world.enabled or not values:
        return values
    keys = sorted(values)
    flat = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    dist.all_reduce(flat)
    return dict(zip(keys, flat))


def gather_objects(obj: object, world: World) -> list[object]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.enabled:
        return [obj]
    out: list[object] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.enabled:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group, if this process joined one.

    A gloo group left to the interpreter's exit can abort the process ("terminate called without
    an active exception": its threads are destroyed while still joinable), which turned about one
    sharded evaluation in three into a failed launch. ``setup`` registers it to run at exit, so
    the CLI and scripts that call ``train``/``evaluate`` under torchrun both leave cleanly. The
    ranks meet at a barrier first: without it a rank can still tear the group down while another
    is in a collective (docs/reliability.md).
    """
    if dist.is_available() and dist.is_initialized():
        try:  # every rank done with its collectives before any tears the group down (bounded: a dead rank costs 30 s)
            dist.monitored_barrier(timeout=timedelta(seconds=30)) if dist.get_backend() == "gloo" else dist.barrier()
        except Exception:  # noqa: BLE001 - leaving anyway; the group is destroyed below
            pass
        dist.destroy_process_group()
