"""The training data on the device and every draw of a step, reproducible from saved states.

- the epoch's order is a permutation from a generator seeded with (seed, epoch);
- stochastic binarisation (the data set's transform, ``PairedData.binarized``) draws from a
  data generator on the device, seeded with seed + 1;
- the reparameterisation noise draws from a noise generator on the device, seeded with seed + 2,
  in global (B, L) draws of which a data-parallel rank takes its rows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jmvae.data import binarize
from jmvae.distributed import World
from jmvae.training.step import StepInput


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


class Batches:
    """The training split as device tensors; ``take`` makes one step's ``StepInput``."""

    def __init__(self, train: dict[str, Tensor], binarized: tuple[str, ...], batch_size: int, seed: int,
                 latent_dim: int, noise_draws: int, device: torch.device, world: World) -> None:
        self.data = {name: value.to(device) for name, value in train.items()}
        self.binarized, self.batch_size, self.seed = binarized, batch_size, seed
        self.latent_dim, self.noise_draws, self.device, self.world = latent_dim, noise_draws, device, world
        self.n = next(iter(self.data.values())).shape[0]
        self.steps_per_epoch = math.ceil(self.n / batch_size)
        self.data_generator = torch.Generator(device=device).manual_seed(seed + 1)
        self.noise_generator = torch.Generator(device=device).manual_seed(seed + 2)

    def order(self, epoch: int) -> Tensor:
        return epoch_permutation(self.n, self.seed, epoch, self.device)

    def take(self, order: Tensor, index: int, kl_weight: float, alpha_weight: float) -> tuple[StepInput, float]:
        """Batch ``index`` of an epoch's ``order`` and its draws; with its share of the global batch
        (1 on one process; a rank's gradient is scaled by it so the ranks' mean is the batch's)."""
        idx = order[index * self.batch_size : (index + 1) * self.batch_size]
        raw = {name: value[idx] for name, value in self.data.items()}
        batch = dict(raw)
        for name in self.binarized:
            batch[name] = binarize(raw[name], self.data_generator)
        noise = [torch.randn((len(idx), self.latent_dim), generator=self.noise_generator, device=self.device)
                 for _ in range(self.noise_draws)]
        share = 1.0
        if self.world.enabled:  # this rank's rows of the global draws; see jmvae.distributed
            rows = self.world.rows(len(idx))
            raw = {name: value[rows] for name, value in raw.items()}
            batch = {name: value[rows] for name, value in batch.items()}
            noise = [draw[rows] for draw in noise]
            share = (rows.stop - rows.start) * self.world.size / len(idx)
        return StepInput(batch, raw, noise, kl_weight, alpha_weight), share

    def rng_state(self) -> dict[str, Tensor]:
        return {"data": self.data_generator.get_state(), "noise": self.noise_generator.get_state()}

    def load_rng_state(self, saved: dict[str, Tensor]) -> None:
        self.data_generator.set_state(saved["rng/data"])
        if "rng/noise" in saved:  # absent from checkpoints of jmvae before data parallelism
            self.noise_generator.set_state(saved["rng/noise"])
