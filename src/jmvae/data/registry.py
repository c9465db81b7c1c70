"""The data sets by name: ``load_dataset(name)`` gives a ``PairedData``.

For digits, MNIST and Fashion-MNIST (and ``mnist-fashion``, ``data.mnist_fashion``: an MNIST
digit, its label and a Fashion-MNIST image of the same class): the modalities (image: Bernoulli over pixels, label:
categorical), the training intensities (binarised stochastically at every draw) and the test
set binarised once with ``test_seed``. For CelebA (``jmvae.data.celeba``): standardised colour
images (Gaussian) and 40 binary attributes (Bernoulli), with the attribute names and the pixel
standardisation alongside. A user's own data: a folder holding a ``jmvae.json`` (``jmvae.data.folder``,
docs/data-folder.md), given as the name (a path) or as the ``folder`` option a run folder remembers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.data.celeba import load_celeba
from jmvae.data.digits import load_digits_arrays
from jmvae.data.folder import load_folder
from jmvae.data.mnist import FASHION_MNIST, MNIST, load_idx_dataset
from jmvae.data.mnist_fashion import load_mnist_fashion
from jmvae.data.paired import FOLDER_OPTION, PairedData
from jmvae.data.semisupervised import keep_labels
from jmvae.data.transforms import binarize_once
from jmvae.errors import DataError

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "mnist-fashion", "celeba")


def image_label_modalities(height: int, width: int, n_classes: int) -> tuple[Modality, Modality]:
    """``image`` (height, width): Bernoulli over pixels; ``label`` (n_classes,): categorical."""
    return (
        Modality("image", (height, width), "bernoulli"),
        Modality("label", (n_classes,), "categorical"),
    )


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, test_seed: int = 0, **options: Any) -> PairedData:
    """One of ``DATASETS``; MNIST-like sets come from ``data_dir`` / ``$JMVAE_DATA`` (see ``data.mnist``),
    CelebA from its ``celeba/`` or ``celeba_partial/`` (see ``data.celeba.find_celeba``). A ``name``
    that is not one of them and names a folder is a data folder's path (``data.folder.load_folder``).

    ``options`` are keyword arguments of ``data.celeba.load_celeba`` (crop, split, cache_dir, ...), or
    ``folder``: the data folder (what a run folder's ``DataInfo`` keeps; ``name`` is then the spec's);
    the others take ``labelled`` (keep the labels of that many training images, balanced per class),
    ``labelled_seed``, ``labelled_only`` and ``labelled_repeat`` (see ``data.semisupervised.keep_labels``);
    ``mnist-fashion`` (three modalities: ``data.mnist_fashion``) takes ``pairing_seed`` only.
    """
    if FOLDER_OPTION in options or (name not in DATASETS and Path(name).expanduser().is_dir()):
        folder = options.pop(FOLDER_OPTION, name)
        if options:
            raise DataError(f"{folder}: a data folder takes no loader options ({', '.join(sorted(options))} given)")
        return load_folder(folder, test_seed)
    if name == "celeba":
        return load_celeba(data_dir, **options)
    if name == "mnist-fashion":
        unknown = sorted(set(options) - {"pairing_seed"})
        if unknown:
            raise DataError(f"{name}: no loader options {', '.join(unknown)}; it takes pairing_seed")
        return load_mnist_fashion(data_dir, test_seed, **options)
    labelled = options.pop("labelled", None)
    labelled_seed = int(options.pop("labelled_seed", 0))
    labelled_only = bool(options.pop("labelled_only", False))
    repeat = int(options.pop("labelled_repeat", 1))
    if options:
        raise DataError(f"{name}: unknown loader options {', '.join(sorted(options))}; it takes labelled, "
                        "labelled_seed, labelled_only and labelled_repeat")
    data = _load_image_label(name, data_dir, test_seed)
    return data if labelled is None else keep_labels(data, int(labelled), labelled_seed, labelled_only, repeat)


def _load_image_label(name: str, data_dir: str | os.PathLike | None, test_seed: int) -> PairedData:
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
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}, or give the path of a "
                        f"folder holding jmvae.json (docs/data-folder.md)")
    return paired_from_arrays(name, arrays, classes, scale, test_seed)


def paired_from_arrays(
    name: str, arrays: dict[str, np.ndarray], classes: tuple[str, ...], scale: float, test_seed: int
) -> PairedData:
    """Images / ``scale`` as training intensities, the test images binarised once with ``test_seed``."""
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
        binarized=("image",),
    )
