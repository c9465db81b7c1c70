"""scikit-learn's 8x8 handwritten digits (UCI optdigits test set, 1,797 real images shipped
inside scikit-learn): the embedded default data set, so ``jmvae train`` runs on any machine.

Intensities 0..16 are scaled to [0, 1]; a seeded permutation holds out 297 images for testing.
"""

from __future__ import annotations

import numpy as np

N_TEST = 297


def load_digits_arrays(split_seed: int = 0) -> dict[str, np.ndarray]:
    """{train_images (1500, 8, 8) float32 in [0, 1], train_labels int64, test_images (297, 8, 8), test_labels}."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(split_seed).permutation(len(labels))
    test, train = order[:N_TEST], order[N_TEST:]
    return {
        "train_images": images[train],
        "train_labels": labels[train],
        "test_images": images[test],
        "test_labels": labels[test],
    }
