"""CelebA's two lists, parsed with a check of every line: the 40 attributes and the partition.

``list_attr_celeba.txt``: line 1 the number of images, line 2 the 40 attribute names, then one
row per image, ``000001.jpg`` and 40 values in {-1, 1} (spaces, any line ending, or a ``.gz``).
``list_eval_partition.txt``: ``000001.jpg 0`` per image, 0 train, 1 validation, 2 test.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.errors import DataError, JMVAEError

logger = logging.getLogger(__name__)

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
ATTRIBUTE_VALUES = {"1": 1, "-1": -1}


def read_lines(path: Path) -> list[str]:
    try:
        raw = gzip.open(path).read() if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file ({exc})") from None
    return text.splitlines()


@dataclass(frozen=True)
class Attributes:
    """The attribute file: image file names in file order, and their values in {-1, 1}."""

    path: Path
    files: tuple[str, ...]
    values: np.ndarray  # int8 (N, 40)
    names: tuple[str, ...]


def read_attributes(path: str | os.PathLike) -> Attributes:
    """Parse ``list_attr_celeba.txt`` (or a gzip of it), checking every line."""
    path = Path(path)
    lines = read_lines(path)
    if len(lines) < 2:
        raise DataError(f"{path}: {len(lines)} line(s); a CelebA attribute file starts with a count and the 40 attribute names")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}: line 1 is {lines[0].strip()[:40]!r}, expected the number of images") from None
    names = tuple(lines[1].split())
    if len(names) != len(ATTRIBUTE_NAMES):
        raise DataError(f"{path}: line 2 has {len(names)} attribute names, CelebA has {len(ATTRIBUTE_NAMES)}")
    for i, (got, want) in enumerate(zip(names, ATTRIBUTE_NAMES)):
        if got != want:
            raise DataError(f"{path}: line 2, attribute {i + 1} is {got!r}, CelebA's is {want!r}; not a CelebA attribute header")
    n_columns = len(names) + 1
    files: list[str] = []
    rows: list[list[int]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != n_columns:
            raise DataError(f"{path}: line {number} has {len(parts) - 1} values after the file name, expected {len(names)}")
        try:
            rows.append([ATTRIBUTE_VALUES[v] for v in parts[1:]])
        except KeyError:
            column = next(j for j, v in enumerate(parts[1:]) if v not in ATTRIBUTE_VALUES)
            raise DataError(
                f"{path}: line {number}, attribute {names[column]}: value {parts[1 + column]!r} is not -1 or 1"
            ) from None
        name = parts[0]
        if name in seen:
            raise DataError(f"{path}: line {number} repeats {name} (first on line {seen[name]})")
        seen[name] = number
        files.append(name)
    if not files:
        raise DataError(f"{path}: no image rows after the header")
    if len(files) > declared:
        raise DataError(f"{path}: line 1 declares {declared} images but {len(files)} rows follow")
    if len(files) < declared:
        logger.info("%s declares %d images and lists %d (a partial copy)", path, declared, len(files))
    return Attributes(path, tuple(files), np.asarray(rows, dtype=np.int8).reshape(-1, len(names)), names)


def read_partition(path: str | os.PathLike) -> dict[str, int]:
    """Parse ``list_eval_partition.txt``: image file name -> 0 (train), 1 (validation) or 2 (test)."""
    path = Path(path)
    out: dict[str, int] = {}
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path}: line {number} is {line.strip()[:60]!r}; expected 'FILE.jpg 0|1|2'")
        out[parts[0]] = int(parts[1])
    if not out:
        raise DataError(f"{path}: empty partition file")
    return out


def attribute_vector(names: Sequence[str], on: Sequence[str], modality: Modality) -> Tensor:
    """A (1, 40) attribute batch with the attributes in ``on`` set and the others unset
    (1/0 for Bernoulli attributes, 1/-1 for tanh-Gaussian ones); for generation from attributes."""
    unknown = [a for a in on if a not in names]
    if unknown:
        raise JMVAEError(f"unknown attribute(s) {', '.join(unknown)}; CelebA's are {', '.join(names)}")
    off = 0.0 if modality.likelihood == "bernoulli" else -1.0
    return torch.tensor([[1.0 if name in on else off for name in names]])
