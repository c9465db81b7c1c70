"""The data layer: paired data sets as tensors ready for training.

- ``registry``: ``DATASETS`` and ``load_dataset(name, data_dir, ...)`` -> ``PairedData``;
- ``folder``: a user's own data, a folder with a ``jmvae.json`` (docs/data-folder.md);
- ``folders``: the data folder (``data_dir``, else ``$JMVAE_DATA``, else ``~/.cache/jmvae``);
- ``paired``: ``PairedData``, the train and test tensors of each modality;
- ``transforms``: binarisation (Bernoulli images) and standardisation (Gaussian images);
- ``mnist``, ``idx``: MNIST and Fashion-MNIST from verified IDX files; ``digits``: scikit-learn's
  8x8 digits; ``celeba``: CelebA in its official layout;
- ``checks``: data against its modalities, before training and evaluation.
"""

from __future__ import annotations

from jmvae.data.celeba import load_celeba
from jmvae.data.folders import data_folder
from jmvae.data.mnist import FASHION_MNIST, MNIST
from jmvae.data.paired import DataInfo, PairedData
from jmvae.data.registry import DATASETS, image_label_modalities, load_dataset, paired_from_arrays
from jmvae.data.transforms import Standardization, StandardizedImages, binarize, binarize_once

__all__ = [
    "DataInfo",
    "DATASETS", "FASHION_MNIST", "MNIST", "PairedData", "Standardization", "StandardizedImages", "binarize",
    "binarize_once", "data_folder", "image_label_modalities", "load_celeba", "load_dataset", "paired_from_arrays",
]
