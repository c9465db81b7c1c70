"""Paired data sets: an image modality and a label modality, as tensors ready for training.

``load_dataset(name)`` returns a ``PairedData``: the modalities (image: Bernoulli over pixels,
label: categorical), the training intensities (binarised stochastically at every draw) and the
test set binarised once with ``test_seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.data.binarize import binarize, binarize_once
from jmvae.data.digits import load_digits_arrays
from jmvae.data.mnist import FASHION_MNIST, MNIST, data_folder, load_idx_dataset
from jmvae.errors import DataError

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist")


@dataclass
class PairedData:
    """Train and test tensors keyed by modality name.

    ``train["image"]``: intensities in [0, 1], float32 (N, H, W); ``test["image"]``: {0, 1}.
    ``train["label"]``, ``test["label"]``: int64 (N,).
    """

    name: str
    modalities: tuple[Modality, ...]
    classes: tuple[str, ...]
    train: dict[str, Tensor]
    test: dict[str, Tensor]

    def to(self, device: str | torch.device) -> PairedData:
        return PairedData(
            self.name,
            self.modalities,
            self.classes,
            {k: v.to(device) for k, v in self.train.items()},
            {k: v.to(device) for k, v in self.test.items()},
        )


def image_label_modalities(height: int, width: int, n_classes: int) -> tuple[Modality, Modality]:
    return (
        Modality("image", (height, width), "bernoulli"),
        Modality("label", (n_classes,), "categorical"),
    )


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, test_seed: int = 0) -> PairedData:
    """One of ``DATASETS``; MNIST-like sets come from ``data_dir`` / ``$JMVAE_DATA`` (see ``data.mnist``)."""
    if name == "digits":
        arrays = load_digits_arrays()
        classes = tuple(str(i) for i in range(10))
        scale = 1.0
    elif name in ("mnist", "fashion-mnist"):
        spec = MNIST if name == "mnist" else FASHION_MNIST
        arrays = load_idx_dataset(spec, data_dir)
        classes = spec.classes
        scale = 255.0
    else:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return paired_from_arrays(name, arrays, classes, scale, test_seed)


def paired_from_arrays(
    name: str, arrays: dict[str, np.ndarray], classes: tuple[str, ...], scale: float, test_seed: int
) -> PairedData:
    _, height, width = arrays["train_images"].shape
    label_range = (int(arrays["train_labels"].max()), int(arrays["test_labels"].max()))
    if max(label_range) >= len(classes):
        raise DataError(f"{name}: labels go up to {max(label_range)}, but there are {len(classes)} classes")

    def images(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float32) / scale)

    return PairedData(
        name=name,
        modalities=image_label_modalities(height, width, len(classes)),
        classes=classes,
        train={"image": images(arrays["train_images"]), "label": torch.from_numpy(arrays["train_labels"].astype(np.int64))},
        test={
            "image": binarize_once(images(arrays["test_images"]), test_seed),
            "label": torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        },
    )


__all__ = ["DATASETS", "PairedData", "binarize", "binarize_once", "data_folder", "load_dataset"]
