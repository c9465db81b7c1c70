"""Image grids as PNG files (Pillow): generated or reconstructed images side by side."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from jmvae.errors import JMVAEError


def image_grid(images: Tensor, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, H, W) or (N, H*W) square images, or (N, 3, H, W) colour images, with values in [0, 1]
    -> one uint8 grid image ((rows, cols) grayscale or (rows, cols, 3) colour)."""
    images = images.detach().float().cpu().clamp(0, 1)
    if images.dim() == 4:  # colour: one grid per channel, stacked last
        return np.stack([image_grid(images[:, c], columns, pad) for c in range(images.shape[1])], axis=-1)
    if images.dim() == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise JMVAEError(f"cannot lay out images of {images.shape[1]} pixels as squares")
        images = images.reshape(-1, side, side)
    n, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, columns)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = images[i].numpy()
    return (grid * 255).round().astype(np.uint8)


def save_png(grid: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(grid, mode="RGB" if grid.ndim == 3 else "L")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)
    return path
