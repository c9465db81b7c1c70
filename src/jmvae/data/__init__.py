"""Paired data sets: an image modality and a second modality, as tensors ready for training.

``load_dataset(name)`` returns a ``PairedData``. For digits, MNIST and Fashion-MNIST: the
modalities (image: Bernoulli over pixels, label: categorical), the training intensities
(binarised stochastically at every draw) and the test set binarised once with ``test_seed``.
For CelebA (``jmvae.data.celeba``): standardised colour images (Gaussian) and 40 binary
attributes (Bernoulli), with the attribute names and the pixel standardisation alongside.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.data.binarize import binarize, binarize_once
from jmvae.data.celeba import Standardization, StandardizedImages, load_celeba
from jmvae.data.digits import load_digits_arrays
from jmvae.data.mnist import FASHION_MNIST, MNIST, data_folder, load_idx_dataset
from jmvae.errors import DataError

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "celeba")


@dataclass
class PairedData:
    """Train and test tensors keyed by modality name.

    MNIST-like sets: ``train["image"]``: intensities in [0, 1], float32 (N, H, W);
    ``test["image"]``: {0, 1}; ``train["label"]``, ``test["label"]``: int64 (N,); ``classes``:
    the label names.

    CelebA: ``image`` float32 (N, 3, 64, 64), standardised; ``attributes`` float32 (N, 40) in
    {0, 1} (or {-1, 1}); ``classes`` is empty. A large image set is a ``StandardizedImages``
    (indexable like a tensor, decoded per batch from a memory-mapped cache) instead of a tensor.

    ``feature_names[m]``: names of the elements of a flat modality m (CelebA: the 40 attribute
    names for ``attributes``). ``standardization[m]``: how an image modality's pixels were
    standardised (``.undo(x)`` gives displayable [0, 1] intensities). ``options``: the loader's
    keyword arguments that load the same data again (``load_dataset(name, dir, **options)``).
    ``run_info()`` bundles what a run folder should remember of the data, as JSON.
    """

    name: str
    modalities: tuple[Modality, ...]
    classes: tuple[str, ...]
    train: dict[str, Tensor]
    test: dict[str, Tensor]
    feature_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    standardization: dict[str, Standardization] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def to(self, device: str | torch.device) -> PairedData:
        return dataclasses.replace(
            self,
            train={k: v.to(device) for k, v in self.train.items()},
            test={k: v.to(device) for k, v in self.test.items()},
        )

    def run_info(self) -> dict[str, Any]:
        """JSON-able facts for a run's config: ``{"name": ...}`` for MNIST-like sets (as before),
        plus ``options``, ``feature_names`` and ``standardization`` where the data set has them."""
        info: dict[str, Any] = {"name": self.name}
        if self.options:
            info["options"] = dict(self.options)
        if self.feature_names:
            info["feature_names"] = {k: list(v) for k, v in self.feature_names.items()}
        if self.standardization:
            info["standardization"] = {k: v.to_dict() for k, v in self.standardization.items()}
        return info


def image_label_modalities(height: int, width: int, n_classes: int) -> tuple[Modality, Modality]:
    return (
        Modality("image", (height, width), "bernoulli"),
        Modality("label", (n_classes,), "categorical"),
    )


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, test_seed: int = 0, **options: Any) -> PairedData:
    """One of ``DATASETS``; MNIST-like sets come from ``data_dir`` / ``$JMVAE_DATA`` (see ``data.mnist``),
    CelebA from its ``celeba/`` or ``celeba_partial/`` (see ``data.celeba.find_celeba``).

    ``options`` are keyword arguments of ``data.celeba.load_celeba`` (crop, split, cache_dir, ...);
    the other data sets take none.
    """
    if name == "celeba":
        return load_celeba(data_dir, **options)
    if options:
        raise DataError(f"{name}: no loader options ({', '.join(sorted(options))} given); only celeba takes them")
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


__all__ = [
    "DATASETS", "PairedData", "Standardization", "StandardizedImages", "binarize", "binarize_once", "data_folder",
    "load_celeba", "load_dataset",
]
