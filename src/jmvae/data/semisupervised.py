"""Semi-supervised splits: keep the labels of a few training images, balanced per class.

``keep_labels(data, n, seed)`` keeps the label of n training images, n / C of each of the C
classes, chosen by a seeded permutation (``torch.randperm`` with a generator seeded by ``seed``:
the first n / C images of each class in that order), and marks the others' labels missing
(``jmvae.masks``: the label is stored as 0 and ``train["label:observed"]`` is False). The test
split keeps every label. ``labelled_only=True`` drops the unlabelled images instead: the fully
paired subset, which is all a library without partially paired training can learn from;
``repeat`` r > 1 lists it r times (an epoch of n * r images), so that a run on it takes as many
steps per epoch, and checkpoints as often, as a run on the whole training set.
"""

from __future__ import annotations

import dataclasses

import torch

from jmvae.data.paired import PairedData
from jmvae.errors import DataError
from jmvae.masks import observed_key


def labelled_rows(labels: torch.Tensor, n_classes: int, kept: int, seed: int) -> torch.Tensor:
    """Bool (N,): the ``kept`` training images whose labels stay, ``kept / n_classes`` per class."""
    if kept <= 0 or kept % n_classes:
        raise DataError(f"labelled={kept}: keep a positive multiple of the {n_classes} classes (balanced per class)")
    per_class = kept // n_classes
    order = torch.randperm(labels.shape[0], generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(labels.shape[0], dtype=torch.bool)
    for c in range(n_classes):
        rows = order[labels[order] == c][:per_class]
        if len(rows) < per_class:
            raise DataError(f"labelled={kept}: class {c} has only {len(rows)} training images, fewer than {per_class}")
        mask[rows] = True
    return mask


def keep_labels(data: PairedData, kept: int, seed: int = 0, labelled_only: bool = False,
                repeat: int = 1, modality: str = "label") -> PairedData:
    """``data`` with the labels of ``kept`` training images (module docstring); the options that
    load it again are added to ``data.options``."""
    if modality not in data.train or not data.classes:
        raise DataError(f"{data.name}: no class labels {modality!r} to keep a few of")
    labels = data.train[modality]
    mask = labelled_rows(labels, len(data.classes), kept, seed)
    options = {**data.options, "labelled": kept, "labelled_seed": seed}
    if repeat != 1 and not labelled_only:
        raise DataError(f"labelled_repeat={repeat} applies with labelled_only only")
    if repeat < 1:
        raise DataError(f"labelled_repeat={repeat}: must be >= 1")
    if labelled_only:
        rows = mask.nonzero()[:, 0].repeat(repeat)
        train = {name: value[rows] for name, value in data.train.items()}
        options["labelled_only"] = True
        if repeat != 1:
            options["labelled_repeat"] = repeat
    else:
        train = dict(data.train)
        train[modality] = torch.where(mask, labels, torch.zeros_like(labels))
        train[observed_key(modality)] = mask
    return dataclasses.replace(data, train=train, options=options)
