"""What a likelihood models, made from raw pixels: binarisation and per-channel standardisation.

- Binarisation (Bernoulli images): pixel ~ Bernoulli(intensity). Training images are
  re-binarised every time they are drawn (stochastic binarisation, as in the paper); test images
  are binarised once with their own seeded generator, so every evaluation sees the same bits.
- Standardisation (Gaussian images): x = (pixel / 255 - mean_c) / std_c per channel c, with the
  training split's statistics, so a fixed-scale Gaussian sees inputs of unit spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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


@dataclass(frozen=True)
class Standardization:
    """Per-channel pixel standardisation: x = (pixel / 255 - mean) / std, with the training
    split's mean and std of pixel / 255 (one value per channel)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        shape = (len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=like.device).reshape(shape)
        std = torch.tensor(self.std, dtype=torch.float32, device=like.device).reshape(shape)
        return mean, std

    def apply(self, pixels: Tensor) -> Tensor:
        """uint8 images (..., C, H, W) -> standardised float32."""
        mean, std = self._stats(pixels)
        return (pixels.to(torch.float32) / 255.0 - mean) / std

    def undo(self, x: Tensor) -> Tensor:
        """Standardised images (..., C, H, W) -> intensities in [0, 1] (clamped), for display."""
        mean, std = self._stats(x)
        return (x.to(torch.float32) * std + mean).clamp(0.0, 1.0)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> Standardization:
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))


def channel_stats(pixels: np.ndarray, rows: np.ndarray, chunk: int = 2048) -> Standardization:
    """Exact per-channel mean and std of pixel/255 over ``rows`` of a uint8 (N, C, H, W) array:
    mean = sum_v n_v v / n, var = sum_v n_v v^2 / n - mean^2 from the per-channel histogram n_v
    of the 256 values (one pass over a memory map, no float copy of it)."""
    channels = pixels.shape[1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(rows), chunk):
        block = pixels[np.sort(rows[start : start + chunk])]
        for c in range(channels):
            counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = counts.sum(1)
    mean = (counts * values).sum(1) / total
    var = (counts * values**2).sum(1) / total - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    std = np.where(std > 1e-6, std, 1.0)  # a constant channel: leave its scale alone
    return Standardization(tuple(float(v) for v in mean), tuple(float(v) for v in std))


class StandardizedImages:
    """Images of one split, read from a uint8 (N, C, H, W) array (a memory map of the cache) and
    standardised only when indexed: ``images[idx]`` is a float32 tensor on ``device``, for an int,
    a slice, or an index tensor/array/list (long or bool, on any device).

    It stands in for a (n, C, H, W) float tensor in ``PairedData.train``/``test`` when the set is
    too big for memory: ``len``, ``shape``, ``dim()``, ``dtype``, ``to(device)`` and indexing are
    what the training loop and the evaluation use. ``materialize()`` gives the whole tensor.
    """

    def __init__(self, pixels: np.ndarray, rows: np.ndarray, standardization: Standardization,
                 device: str | torch.device = "cpu") -> None:
        if pixels.ndim != 4 or pixels.dtype != np.uint8:
            raise ValueError(f"pixels must be a uint8 (N, C, H, W) array, got {pixels.dtype} {pixels.shape}")
        self.pixels = pixels
        self.rows = np.asarray(rows, dtype=np.int64)
        self.standardization = standardization
        self.device = torch.device(device)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.pixels.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def ndim(self) -> int:
        return 4

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.rows)

    def numel(self) -> int:
        return math.prod(self.shape)

    def is_floating_point(self) -> bool:
        return True

    def to(self, device: str | torch.device) -> StandardizedImages:
        return StandardizedImages(self.pixels, self.rows, self.standardization, device)

    def cpu(self) -> StandardizedImages:
        return self.to("cpu")

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.detach().cpu().numpy()
        elif isinstance(index, list):
            index = np.asarray(index)
        rows = self.rows[index]
        if np.ndim(rows) == 0:
            return self._read(np.asarray([rows]))[0]
        return self._read(rows)

    def _read(self, rows: np.ndarray) -> Tensor:
        order = np.argsort(rows, kind="stable")  # read the memory map front to back
        block = np.empty((len(rows), *self.pixels.shape[1:]), dtype=np.uint8)
        block[order] = self.pixels[rows[order]]
        return self.standardization.apply(torch.from_numpy(block).to(self.device))

    def materialize(self) -> Tensor:
        """All images as one standardised float32 tensor on ``device``."""
        return self._read(self.rows)

    def __repr__(self) -> str:
        return f"StandardizedImages(shape={tuple(self.shape)}, device={self.device})"
