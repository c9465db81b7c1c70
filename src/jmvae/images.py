"""Image grids as PNG files (Pillow): generated or reconstructed images side by side, and a
row of images under column titles (``jmvae edit``)."""

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


def check_png_path(path: str | Path) -> Path:
    """``path`` if it names a PNG file; else an error that says the name to give (Pillow's own
    "unknown file extension" does not say what to do)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        fixed = path.with_suffix(".png") if path.suffix else path.with_name(path.name + ".png")
        raise JMVAEError(f"--out {path}: the images are written as PNG; give a file name ending in .png, e.g. --out {fixed}")
    return path


def labelled_row(images: Tensor, titles: list[str], scale: int = 1, pad: int = 1) -> np.ndarray:
    """Images side by side, each magnified ``scale`` times under its title (uint8, white ground):
    the columns of ``jmvae edit`` (the image, its reconstruction, each edit). A column is as wide
    as its image or its title, whichever is wider."""
    from PIL import ImageDraw, ImageFont

    if len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    cells = [Image.fromarray(image_grid(image.unsqueeze(0), columns=1, pad=0)) for image in images]
    cells = [cell.resize((cell.width * scale, cell.height * scale), Image.NEAREST) for cell in cells]
    font = ImageFont.load_default()
    boxes = [font.getbbox(title) for title in titles]
    widths = [max(cell.width, box[2] - box[0] + 4) for cell, box in zip(cells, boxes)]
    header = max(box[3] for box in boxes) + 4
    mode = cells[0].mode
    white = (255,) * 3 if mode == "RGB" else 255
    canvas = Image.new(mode, (sum(widths) + pad * (len(cells) + 1), header + cells[0].height + pad), white)
    draw = ImageDraw.Draw(canvas)
    left = pad
    for cell, width, title, box in zip(cells, widths, titles, boxes):
        draw.text((left + (width - (box[2] - box[0])) // 2, 2), title, fill=(0,) * 3 if mode == "RGB" else 0, font=font)
        canvas.paste(cell, (left + (width - cell.width) // 2, header))
        left += width + pad
    return np.asarray(canvas)


def save_png(grid: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write a uint8 image (``image_grid``, ``labelled_row``) as a PNG, magnified ``scale`` times."""
    path = check_png_path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(grid, mode="RGB" if grid.ndim == 3 else "L")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)
    return path
