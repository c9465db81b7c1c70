"""One CelebA image file -> uint8 (3, S, S): decoded, cropped to a square around the face, resized.

The crop is ``ALIGNED_CROP`` (the fixed box where the aligned set puts the face), the face
detector's box (``crop="detect"``), or a box of the caller's; the square is resized to S x S with
Pillow's Lanczos filter. Why: the networks see the face at one scale and place in every image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from jmvae.data.celeba.faces import FaceDetector
from jmvae.errors import DataError, JMVAEError

ALIGNED_SIZE = (178, 218)  # (width, height) of every image in img_align_celeba
ALIGNED_CROP = (21, 55, 157, 191)
"""(left, top, right, bottom): a 136-pixel square centred on (89, 123), where the aligned set
puts the face; it is the mean box the authors' face detector (OpenCV's frontal-face Haar cascade,
box enlarged 1.3x) finds on the aligned images. See docs/celeba.md."""
RESAMPLING = "lanczos"

Crop = Literal["aligned", "detect"] | tuple[int, int, int, int]

IMAGE_MODES = {"L": "grayscale", "LA": "grayscale with alpha", "1": "black-and-white", "P": "palette",
               "CMYK": "CMYK", "RGBA": "RGBA", "I": "32-bit grayscale", "I;16": "16-bit grayscale",
               "F": "floating-point grayscale", "YCbCr": "YCbCr"}


def crop_spec(crop: Crop) -> str | list[int]:
    """The JSON-able form of ``crop``, checked."""
    if isinstance(crop, str):
        if crop not in ("aligned", "detect"):
            raise JMVAEError(f"crop must be 'aligned', 'detect' or a (left, top, right, bottom) box, got {crop!r}")
        return crop
    box = [int(v) for v in crop]
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        raise JMVAEError(f"crop box {tuple(crop)} must be (left, top, right, bottom) with right > left and bottom > top")
    return box


def decode_image(path: str | os.PathLike, crop: str | list[int], size: int,
                 detector: FaceDetector | None = None) -> np.ndarray | None:
    """One image file -> uint8 (3, size, size), cropped and resized; None when crop='detect'
    finds no face (with ``detector``, or a new ``FaceDetector``). Raises ``DataError`` for
    unreadable, non-RGB or wrongly sized images."""
    from PIL import Image, UnidentifiedImageError

    if crop == "detect" and detector is None:
        detector = FaceDetector()
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode != "RGB":
                kind = IMAGE_MODES.get(image.mode, f"mode {image.mode}")
                raise DataError(
                    f"{path}: a {kind} image (mode {image.mode}); CelebA images are RGB. Convert it to RGB or "
                    "remove its row from the attribute file"
                )
            image.load()
            if crop == "aligned":
                if image.size != ALIGNED_SIZE:
                    raise DataError(
                        f"{path}: {image.size[0]}x{image.size[1]} pixels; aligned CelebA images are "
                        f"{ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} and crop='aligned' relies on their fixed face position "
                        "(use crop='detect' or a crop box for other images)"
                    )
                box: Sequence[int] | None = ALIGNED_CROP
            elif crop == "detect":
                assert detector is not None
                box = detector.box(np.asarray(image))
                if box is None:
                    return None
            else:
                box = crop
                if box[2] > image.size[0] or box[3] > image.size[1] or box[0] < 0 or box[1] < 0:
                    raise DataError(f"{path}: crop box {tuple(box)} does not fit in its {image.size[0]}x{image.size[1]} pixels")
            resized = image.resize((size, size), Image.Resampling.LANCZOS, box=tuple(box))
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot be decoded as an image ({exc})") from None
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_chunk(paths: list[str], crop: str | list[int], size: int,
                 detector: FaceDetector | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``paths`` -> (uint8 (n, 3, size, size), bool (n,) found); run in worker processes,
    which make their own ``FaceDetector`` for crop='detect' (an OpenCV cascade does not pickle)."""
    if crop == "detect" and detector is None:
        detector = FaceDetector()
    out = np.zeros((len(paths), 3, size, size), dtype=np.uint8)
    found = np.ones(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        image = decode_image(path, crop, size, detector)
        if image is None:
            found[i] = False
        else:
            out[i] = image
    return out, found
