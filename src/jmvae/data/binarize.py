"""Binarisation of [0, 1] intensities: pixel ~ Bernoulli(intensity).

Training images are re-binarised every time they are drawn (stochastic binarisation); test
images are binarised once with their own seeded generator, so every evaluation sees the same
binary test set.
"""

from __future__ import annotations

import torch
from torch import Tensor


def binarize(intensities: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A {0, 1} float tensor with P(1) = intensity, elementwise."""
    noise = torch.rand(intensities.shape, generator=generator, device=intensities.device, dtype=intensities.dtype)
    return (noise < intensities).to(intensities.dtype)


def binarize_once(intensities: Tensor, seed: int) -> Tensor:
    """Fixed binarisation of a test set: the same ``seed`` gives the same bits on every machine
    (the noise is drawn on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(intensities.shape, generator=generator)
    return (noise.to(intensities.device) < intensities).to(intensities.dtype)
