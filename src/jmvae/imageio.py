"""Images in and out of a model: an image file (or an upload) made the model's input, the model's
outputs made displayable, grids of them, PNG files.

In: a PNG or JPEG is checked before and while it is decoded (``open_upload``: the format, at most
``MAX_UPLOAD_BYTES`` and ``MAX_SIDE`` pixels a side, damage) because it comes from a user, then
prepared as the training images were, so the model reads it as it read them:

- a digit (``prepare_upload``): grayscale, inverted when its polarity is not the data's (mean
  > 0.5 for light-on-dark data), padded to the model's aspect ratio, resized (box filter) to the
  model's image shape and binarized at 0.5;
- a face (``face_tensor``): the run's crop (an aligned 178x218 CelebA face: the aligned crop;
  another image: its centre square; ``detect``: the face detector's box), resized with Lanczos
  to the model's side and standardised, x' = (x / 255 - mean) / std, as the CelebA cache was made.

Out: ``displayable`` maps model-space images to intensities in [0, 1] (a face's standardization
undone, x = x' * std + mean, clamped), the one form every picture (grid, PNG file, the
explorer's data URLs) is made from.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from torch import Tensor

from jmvae.config import Modality
from jmvae.data import DataInfo, Standardization
from jmvae.data.celeba import ALIGNED_CROP, ALIGNED_SIZE, detect_face
from jmvae.errors import DataError, JMVAEError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # an uploaded file's size limit
MAX_SIDE = 4096  # an uploaded image's width and height limit, in pixels
MIN_SIDE = 4  # smaller than this cannot show a digit
UPLOAD_FORMATS = ("PNG", "JPEG")


class UploadError(JMVAEError):
    """An upload that is not a usable image; the message is for the user (the explorer's page
    shows it with HTTP ``status``)."""

    status = 400


# -- in: a file -> the model's input --------------------------------------------------------------
def open_upload(data: bytes, source: str = "the upload") -> Image.Image:
    """The bytes of an uploaded PNG/JPEG -> a loaded Pillow image, checked (format, size, pixels,
    damage) before and while decoding; ``UploadError`` with a message for the user otherwise, which
    calls the bytes ``source`` (the command line reads files: "the file")."""
    if not data:
        raise UploadError(f"{source} is empty; choose a PNG or JPEG image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{source} is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError, OSError, ValueError):
        raise UploadError(f"{source} is not an image that can be read; choose a PNG or JPEG file") from None
    if image.format not in UPLOAD_FORMATS:
        raise UploadError(f"{image.format} images are not accepted; choose a PNG or JPEG file")
    w, h = image.size
    if max(w, h) > MAX_SIDE:
        raise UploadError(f"the image is {w}x{h} pixels; the limit is {MAX_SIDE} pixels a side")
    if min(w, h) < MIN_SIDE:
        raise UploadError(f"the image is {w}x{h} pixels; it needs at least {MIN_SIDE} pixels a side")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadError(f"the {image.format} file is damaged or truncated; choose another image") from None
    return image


def prepare_upload(data: bytes, shape: tuple[int, int], light_on_dark: bool = True,
                   source: str = "the upload") -> tuple[Tensor, list[str]]:
    """The bytes of an uploaded PNG/JPEG digit -> a binary (H, W) float tensor, and notes on what
    was done (see the module docstring). Raises ``UploadError`` when the upload is not usable."""
    height, width = shape
    image = open_upload(data, source)
    w, h = image.size
    notes = []
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
        notes.append("transparent pixels shown as white")
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if gray.mean() > 0.5 and light_on_dark:
        gray = 1.0 - gray
        notes.append(f"inverted: dark-on-light (mean {1 - gray.mean():.2f} > 0.5), the data are light-on-dark")
    elif gray.mean() <= 0.5 and not light_on_dark:
        gray = 1.0 - gray
        notes.append(f"inverted: light-on-dark (mean {1 - gray.mean():.2f} <= 0.5), the data are dark-on-light")

    # Pad (centred, with the background: 0 after the inversion) to the model's aspect ratio, then resize.
    rows, cols = gray.shape
    target_cols = max(cols, round(rows * width / height))
    target_rows = max(rows, round(cols * height / width))
    if (target_rows, target_cols) != (rows, cols):
        padded = np.zeros((target_rows, target_cols), dtype=np.float32)
        top, left = (target_rows - rows) // 2, (target_cols - cols) // 2
        padded[top : top + rows, left : left + cols] = gray
        gray = padded
        notes.append(f"padded to {target_cols}x{target_rows} to keep the aspect ratio")
    if gray.shape != (height, width):
        resized = Image.fromarray((gray * 255).round().astype(np.uint8), mode="L").resize((width, height), Image.BOX)
        gray = np.asarray(resized, dtype=np.float32) / 255.0
        notes.append(f"resized from {w}x{h} to {width}x{height}")
    binary = torch.from_numpy((gray > 0.5).astype(np.float32))
    notes.append("binarized at 0.5")
    if binary.sum() == 0:
        notes.append("the binarized image is blank: strokes too thin or too faint at this size")
    return binary, notes


def face_tensor(image: Image.Image, shape: tuple[int, ...], options: Mapping[str, Any],
                standardization: Standardization) -> tuple[Tensor, list[str]]:
    """A Pillow RGB face -> the standardised batch of one a face run reads, and notes: the run's
    crop, resized to the model's side with Lanczos (see the module docstring)."""
    crop, size, notes = options.get("crop", "aligned"), shape[-1], []
    width, height = image.size
    if crop == "detect":
        box = detect_face(np.asarray(image))
        if box is None:
            raise DataError("the face detector found no face; crop the face yourself and try again")
    elif crop == "aligned" and (width, height) == ALIGNED_SIZE:
        box = ALIGNED_CROP
    elif crop == "aligned" or box_outside(crop, width, height):
        side = min(width, height)
        box = ((width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2)
        notes.append(f"not an aligned {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} CelebA face: centre square {side}x{side} used")
    else:
        box = tuple(crop)
    pixels = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS, box=tuple(box)), dtype=np.uint8)
    tensor = torch.from_numpy(pixels.transpose(2, 0, 1).copy())
    return standardization.apply(tensor).unsqueeze(0), notes


def box_outside(crop: Any, width: int, height: int) -> bool:
    """Whether a (left, top, right, bottom) crop box does not fit an image of this size."""
    return isinstance(crop, (list, tuple)) and (crop[0] < 0 or crop[1] < 0 or crop[2] > width or crop[3] > height)


def read_face(data: bytes, shape: tuple[int, ...], options: Mapping[str, Any], standardization: Standardization,
              source: str = "the upload") -> tuple[Tensor, list[str]]:
    """The bytes of a face file, checked like every upload, converted to RGB when it is not (with
    a note), then ``face_tensor``: the batch of one the run reads, and the notes."""
    image = open_upload(data, source)
    notes = []
    if image.mode != "RGB":
        notes.append(f"converted from mode {image.mode} to RGB")
        image = image.convert("RGB")
    face, more = face_tensor(image, shape, options, standardization)
    return face, notes + more


def load_image(path: str | Path, modality: Modality, run_data: DataInfo) -> tuple[Tensor, list[str]]:
    """An image file -> the batch of one a run reads as ``modality``, and notes on what was done
    to it: a face for a run with a standardization (faces), else a digit."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    standardization = run_data.standardization.get(modality.name)
    try:
        if standardization is not None:
            return read_face(path.read_bytes(), modality.shape, run_data.options, standardization, "the file")
        side = digit_side(modality)
        pixels, notes = prepare_upload(path.read_bytes(), side, source="the file")
    except UploadError as exc:
        raise DataError(f"{path}: {exc}") from None
    return pixels.reshape(1, *modality.shape), notes


def digit_side(modality: Modality) -> tuple[int, int]:
    """(H, W) of a grayscale image modality: its shape, or a flat square's side twice."""
    shape = modality.shape
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) != 1:
        raise JMVAEError(f"{modality.name} of shape {shape}: reading it from a file is supported for faces and digits only")
    side = math.isqrt(shape[0])
    if side * side != shape[0]:
        raise JMVAEError(f"{modality.name} of {shape[0]} values is not a square image; it cannot be read from a file")
    return side, side


# -- out: model outputs -> pictures ---------------------------------------------------------------
def displayable(images: Tensor, standardization: Standardization | None = None) -> Tensor:
    """Model-space images -> float intensities in [0, 1] on the CPU, standardization undone."""
    images = images.detach().float().cpu()
    return standardization.undo(images) if standardization is not None else images.clamp(0, 1)


def png_data_url(pixels: np.ndarray | Tensor) -> str:
    """An (H, W) grayscale or colour (3, H, W) / (H, W, 3) array, uint8 or floats in [0, 1], as a
    ``data:image/png`` URL."""
    if isinstance(pixels, Tensor):
        pixels = pixels.detach().float().cpu().numpy()
    if pixels.ndim == 3 and pixels.shape[0] == 3 and pixels.shape[-1] != 3:
        pixels = pixels.transpose(1, 2, 0)
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode="RGB" if pixels.ndim == 3 else "L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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


def labelled_row(images: Tensor, titles: list[str], scale: int = 1, pad: int = 1) -> np.ndarray:
    """Images side by side, each magnified ``scale`` times under its title (uint8, white ground):
    the columns of ``jmvae edit`` (the image, its reconstruction, each edit). A column is as wide
    as its image or its title, whichever is wider."""
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


def check_png_path(path: str | Path) -> Path:
    """``path`` if it names a PNG file; else an error that says the name to give (Pillow's own
    "unknown file extension" does not say what to do)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        fixed = path.with_suffix(".png") if path.suffix else path.with_name(path.name + ".png")
        raise JMVAEError(f"{path}: the images are written as PNG; give a file name ending in .png, e.g. {fixed}", ("png_path",))
    return path


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
