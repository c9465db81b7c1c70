"""CelebA's train/test split: the official partition, or a seeded random hold-out.

Official: train + validation (0, 1) for training, test (2) for testing, about 90/10; random: a
permutation seeded by ``seed`` holds out round(test_fraction * n) images, the paper's 90/10.
Both parts are kept in file order. Why: the paper reports on a 90/10 split of CelebA.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from jmvae.data.celeba.layout import IMAGE_FOLDER, PARTITION_FILE
from jmvae.errors import DataError, JMVAEError

TEST_FRACTION = 0.1  # the paper's 90/10 split when no partition file is given

Split = Literal["auto", "official", "random"]


def split_rows(n: int, files: Sequence[str], partition: dict[str, int] | None, split: Split,
               seed: int, test_fraction: float, where: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(train rows, test rows, split key) over ``n`` rows of ``files``."""
    if split == "auto":
        split = "official" if partition is not None else "random"
    if split == "official":
        if partition is None:
            raise DataError(f"{where}: split='official' needs {PARTITION_FILE} beside {IMAGE_FOLDER}/")
        labels = np.empty(n, dtype=np.int8)
        for i, name in enumerate(files):
            try:
                labels[i] = partition[name]
            except KeyError:
                raise DataError(f"{where / PARTITION_FILE}: no line for {name}, which has an image and attributes") from None
        train, test = np.flatnonzero(labels != 2), np.flatnonzero(labels == 2)
        if not len(train) or not len(test):
            raise DataError(f"{where / PARTITION_FILE}: the images here are all in one split ({len(train)} train, {len(test)} test)")
        return train, test, "official"
    if split != "random":
        raise JMVAEError(f"split must be 'auto', 'official' or 'random', got {split!r}")
    if not 0 < test_fraction < 1:
        raise JMVAEError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if n < 2:
        raise DataError(f"{where}: {n} usable image; a train/test split needs at least 2")
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test]), f"random-{test_fraction:g}-seed{seed}"
