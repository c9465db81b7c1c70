"""``mnist-fashion``: three modalities per datum, an MNIST digit, its label and a Fashion-MNIST
image of the same class index.

Datum i of a split is MNIST's datum i of that split (``image``, ``label``) with a Fashion-MNIST
image (``fashion``) from the *same* split (train from Fashion train, test from Fashion test)
whose class index equals the label (digit 3 goes with a "Dress", class 3). The pairing is drawn
once, reproducibly, by ``pair_by_class``:

- a numpy ``default_rng((pairing_seed, split))`` per split, split 0 = train, 1 = test
  (``PAIRING_SEED = 0`` unless the loader is given another ``pairing_seed``);
- for each class c = 0..9 in order: the n_c MNIST data of class c (in index order) take the
  first n_c entries of r_c = ceil(n_c / f_c) independent permutations of the f_c Fashion indices
  of class c, concatenated. Where n_c <= f_c (MNIST test: classes 0, 4, 5, 6, 8) that is without
  replacement; where n_c > f_c (Fashion has 6,000 per class in train and 1,000 in test, so MNIST
  train classes 1, 3, 7 and test classes 1, 2, 3, 7, 9) every Fashion image of the class is used
  once before any is used twice.

Both images are Bernoulli over pixels and transformed like MNIST's: training intensities in
[0, 1], re-binarised at every step; the test images binarised once, MNIST with ``test_seed`` and
Fashion with ``test_seed + 1`` (the same seed would compare both images' pixels with the same
uniform draws).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from jmvae.config import Modality
from jmvae.data.mnist import FASHION_MNIST, MNIST, load_idx_dataset
from jmvae.data.paired import PairedData
from jmvae.data.transforms import binarize_once

NAME = "mnist-fashion"
PAIRING_SEED = 0
SPLITS = ("train", "test")


def mnist_fashion_modalities() -> tuple[Modality, Modality, Modality]:
    """``image`` (28, 28) Bernoulli, ``label`` (10,) categorical, ``fashion`` (28, 28) Bernoulli."""
    return (Modality("image", (28, 28), "bernoulli"), Modality("label", (10,), "categorical"),
            Modality("fashion", (28, 28), "bernoulli"))


def pair_by_class(labels: np.ndarray, fashion_labels: np.ndarray, seed: int, split: int) -> np.ndarray:
    """For each of ``labels`` the index of a Fashion image of the same class (module docstring)."""
    rng = np.random.default_rng((seed, split))
    out = np.empty(len(labels), dtype=np.int64)
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        pool = np.flatnonzero(fashion_labels == c)
        if len(rows) and not len(pool):
            raise ValueError(f"class {c} has {len(rows)} data but no Fashion-MNIST image")
        rounds = math.ceil(len(rows) / len(pool)) if len(rows) else 0
        out[rows] = np.concatenate([rng.permutation(pool) for _ in range(rounds)] or [pool[:0]])[: len(rows)]
    return out


def load_mnist_fashion(data_dir: str | os.PathLike | None = None, test_seed: int = 0,
                       pairing_seed: int = PAIRING_SEED) -> PairedData:
    """The three-modality set of the module docstring from MNIST and Fashion-MNIST's IDX files."""
    digits, clothes = load_idx_dataset(MNIST, data_dir), load_idx_dataset(FASHION_MNIST, data_dir)
    train, test = {}, {}
    for split, (name, out) in enumerate(zip(SPLITS, (train, test))):
        labels = digits[f"{name}_labels"].astype(np.int64)
        pick = pair_by_class(labels, clothes[f"{name}_labels"], pairing_seed, split)
        out["image"] = torch.from_numpy(digits[f"{name}_images"].astype(np.float32) / 255.0)
        out["label"] = torch.from_numpy(labels)
        out["fashion"] = torch.from_numpy(clothes[f"{name}_images"][pick].astype(np.float32) / 255.0)
    test["image"] = binarize_once(test["image"], test_seed)
    test["fashion"] = binarize_once(test["fashion"], test_seed + 1)
    return PairedData(
        name=NAME,
        modalities=mnist_fashion_modalities(),
        classes=MNIST.classes,
        train=train,
        test=test,
        options={"pairing_seed": pairing_seed} if pairing_seed != PAIRING_SEED else {},
        binarized=("image", "fashion"),
    )
