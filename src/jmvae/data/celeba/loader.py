"""``load_celeba``: CelebA as ``PairedData``, from the files through the cache to the split.

Attribute rows whose image is missing are dropped with a ``CelebAWarning`` that counts them (or
are a ``DataError`` with ``on_missing="error"``); the images are decoded once into the cache;
the split's training rows give the per-channel standardisation of every image.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.data.celeba.attributes import ATTRIBUTE_NAMES, Attributes, read_attributes, read_partition
from jmvae.data.celeba.cache import image_cache
from jmvae.data.celeba.decode import Crop, crop_spec
from jmvae.data.celeba.faces import FaceDetector
from jmvae.data.celeba.layout import ATTRIBUTE_FILE, IMAGE_FOLDER, PARTITION_FILE, find_celeba, find_list, image_sizes
from jmvae.data.celeba.split import TEST_FRACTION, Split, split_rows
from jmvae.data.paired import PairedData
from jmvae.data.transforms import StandardizedImages
from jmvae.errors import DataError, JMVAEError

logger = logging.getLogger(__name__)

IMAGE_SIZE = 64
IN_MEMORY_BYTES = 1 << 30  # standardised float32 images up to this size are held as tensors

AttributeLikelihood = Literal["bernoulli", "tanh-gaussian"]


class CelebAWarning(UserWarning):
    """Rows of the attribute file that have no image (or no detected face) were dropped."""


def load_celeba(
    data_dir: str | os.PathLike | None = None,
    *,
    crop: Crop = "aligned",
    size: int = IMAGE_SIZE,
    attributes: AttributeLikelihood = "bernoulli",
    split: Split = "auto",
    split_seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    cache_dir: str | os.PathLike | None = None,
    in_memory: bool | None = None,
    on_missing: Literal["warn", "error"] = "warn",
    workers: int | None = None,
    progress: bool = True,
) -> PairedData:
    """CelebA as ``PairedData``: ``image`` (3, size, size) standardised floats, Gaussian with fixed
    scale 1 (the authors' constant variance), and ``attributes`` (40,), Bernoulli over 0/1
    (``attributes="tanh-gaussian"``: the paper's -1/1 values, tanh mean, Gaussian of scale 1).

    - ``crop``: "aligned" (``ALIGNED_CROP``), "detect" (OpenCV's face detector, as the authors;
      images without a detected face are dropped) or a (left, top, right, bottom) box.
    - ``split``: "official" (``list_eval_partition.txt``: train + validation for training, test
      for testing, about 90/10), "random" (a ``split_seed``-ed ``test_fraction`` held out), or
      "auto" (official when the partition file is there).
    - ``in_memory``: True holds the standardised images as tensors, False streams them from the
      cache (``StandardizedImages``); None: tensors up to ``IN_MEMORY_BYTES`` (1 GiB, ~21,800 images).
    - ``on_missing``: what to do with attribute rows whose image file is absent: "warn" drops them
      with a ``CelebAWarning``, "error" raises ``DataError``. No image at all is always an error.
    """
    if attributes not in ("bernoulli", "tanh-gaussian"):
        raise JMVAEError(f"attributes must be 'bernoulli' or 'tanh-gaussian', got {attributes!r}")
    if size < 1:
        raise JMVAEError(f"size must be positive, got {size}")
    if split not in ("auto", "official", "random"):
        raise JMVAEError(f"split must be 'auto', 'official' or 'random', got {split!r}")
    if on_missing not in ("warn", "error"):
        raise JMVAEError(f"on_missing must be 'warn' or 'error', got {on_missing!r}")
    crop_json = crop_spec(crop)
    # made now, to fail before scanning the files if OpenCV is missing
    detector = FaceDetector() if crop_json == "detect" else None
    folder = find_celeba(data_dir)
    images_dir = folder / IMAGE_FOLDER
    if not images_dir.is_dir():
        raise DataError(f"{folder}: no {IMAGE_FOLDER}/ folder of images (unzip img_align_celeba.zip here)")
    table = read_attributes(find_list(folder, ATTRIBUTE_FILE, required=True))
    partition_path = find_list(folder, PARTITION_FILE, required=False) if split != "random" else None
    partition = read_partition(partition_path) if partition_path is not None else None

    on_disk = image_sizes(images_dir)
    keep = rows_with_images(table, on_disk, images_dir, on_missing)
    files = [name for name, k in zip(table.files, keep) if k]
    values = table.values[keep]

    cache = image_cache(folder, files, [on_disk[f] for f in files], crop_json, size, cache_dir, workers, progress, detector)
    usable = rows_with_faces(cache.found, images_dir)
    train_idx, test_idx, split_key = split_rows(
        len(usable), [files[i] for i in usable], partition, split, split_seed, test_fraction, folder)
    train_rows, test_rows = usable[train_idx], usable[test_idx]
    standardization = cache.stats(split_key, train_rows)

    n_bytes = 4 * (len(train_rows) + len(test_rows)) * 3 * size * size
    if in_memory is None:
        in_memory = n_bytes <= IN_MEMORY_BYTES

    def images(rows: np.ndarray) -> Tensor | StandardizedImages:
        lazy = StandardizedImages(cache.pixels, rows, standardization)
        return lazy.materialize() if in_memory else lazy

    def attribute_tensor(rows: np.ndarray) -> Tensor:
        v = torch.from_numpy(values[rows].astype(np.float32))
        return (v + 1) / 2 if attributes == "bernoulli" else v

    modalities = celeba_modalities(size, attributes)
    options = {"crop": crop_json, "size": size, "attributes": attributes, "split": split_key.split("-")[0],
               "split_seed": split_seed, "test_fraction": test_fraction}
    logger.info("celeba from %s: %d train, %d test images (%s split), cache %s",
                folder, len(train_rows), len(test_rows), split_key, cache.path)
    return PairedData(
        name="celeba",
        modalities=modalities,
        classes=(),
        train={"image": images(train_rows), "attributes": attribute_tensor(train_rows)},
        test={"image": images(test_rows), "attributes": attribute_tensor(test_rows)},
        feature_names={"attributes": table.names},
        standardization={"image": standardization},
        options=options,
        binarized=(),  # images standardised (Gaussian), attributes stored as 0/1 (or -1/1)
    )


def rows_with_images(table: Attributes, on_disk: Mapping[str, int], images_dir: Path,
                     on_missing: Literal["warn", "error"]) -> np.ndarray:
    """bool (N,): which attribute rows have their image file; the others are a ``CelebAWarning``
    (or a ``DataError`` with ``on_missing="error"``), and no image at all is a ``DataError``."""
    keep = np.fromiter((name in on_disk for name in table.files), dtype=bool, count=len(table.files))
    n_missing = int((~keep).sum())
    if not keep.any():
        raise DataError(
            f"{images_dir}: none of the {len(table.files)} images named in {table.path.name} is there "
            f"(first: {table.files[0]}); unzip img_align_celeba.zip into it"
        )
    if n_missing:
        first = table.files[int(np.flatnonzero(~keep)[0])]
        if on_missing == "error":
            raise DataError(f"{images_dir / first}: image file is missing ({n_missing} of the {len(table.files)} images named in {table.path.name} are)")
        warnings.warn(
            f"celeba: {n_missing:,} of {len(table.files):,} images named in {table.path.name} are not in {images_dir} "
            f"(first missing: {first}); using the {int(keep.sum()):,} rows that have an image",
            CelebAWarning, stacklevel=3,  # the caller of load_celeba
        )
    return keep


def rows_with_faces(found: np.ndarray, images_dir: Path) -> np.ndarray:
    """The cache rows with a face (all of them unless crop='detect' missed some: a ``CelebAWarning``;
    none at all is a ``DataError``)."""
    if not found.all():
        n_lost = int((~found).sum())
        if not found.any():
            raise DataError(f"{images_dir}: the face detector found no face in any of the {len(found)} images")
        warnings.warn(f"celeba: no face detected in {n_lost:,} of {len(found):,} images; they are left out",
                      CelebAWarning, stacklevel=3)
    return np.flatnonzero(found)


def celeba_modalities(size: int = IMAGE_SIZE, attributes: AttributeLikelihood = "bernoulli") -> tuple[Modality, Modality]:
    """``image`` (3, size, size): Gaussian, fixed scale 1 on standardised pixels (conv networks when
    size is a multiple of 16); ``attributes`` (40,): Bernoulli, or tanh-mean Gaussian of scale 1."""
    image = Modality("image", (3, size, size), "gaussian", scale=1.0)
    if attributes == "bernoulli":
        attrs = Modality("attributes", (len(ATTRIBUTE_NAMES),), "bernoulli")
    else:
        attrs = Modality("attributes", (len(ATTRIBUTE_NAMES),), "gaussian", scale=1.0, mean_activation="tanh")
    return image, attrs
