"""``load_folder(path)``: a data folder (``jmvae.json`` and the files it names) as ``PairedData``.

Rows of every modality are paired by index (a table's row order, an array's first axis) and split
into train and test (``SplitSpec``). Missing values follow ``jmvae.masks``: zeros in the values,
and a bool (N,) mask under ``observed_key(name)`` in each split where the modality has a missing
row. Images are intensities in [0, 1] for a Bernoulli modality and standardised per channel with
the training split's statistics for a Gaussian one (like CelebA's). A Bernoulli modality whose
values are not all 0 or 1 is binarised stochastically in training (``PairedData.binarized``) and
once, with ``test_seed``, in the test split, like MNIST.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from jmvae.data.checks import check_paired
from jmvae.data.folder.sources import Values, read_values
from jmvae.data.folder.spec import FolderSpec, ModalitySource, read_spec
from jmvae.data.folder.tables import Tables
from jmvae.data.paired import FOLDER_OPTION, PairedData
from jmvae.data.transforms import Standardization, binarize_once, channel_stats
from jmvae.errors import DataError
from jmvae.masks import observed_key


def load_folder(path: str | os.PathLike, test_seed: int = 0) -> PairedData:
    """The data folder at ``path`` (docs/data-folder.md), checked; ``DataError`` names the file,
    the row and the problem of the first thing wrong."""
    spec = read_spec(path)
    tables = Tables()
    values = [read_values(source, tables) for source in spec.sources]
    n = row_count(spec, values)
    train_rows, test_rows = split_rows(spec, n, tables)
    data = PairedData(spec.name, spec.modalities, spec.classes, {}, {}, options={FOLDER_OPTION: str(spec.folder)})
    binarized = []
    for source, value in zip(spec.sources, values):
        name = source.name
        if not value.observed[train_rows].any():
            raise DataError(f"{source.origin}: modality {name!r} has no value in any of the {len(train_rows)} training "
                            f"rows; fill some, or leave the modality out of jmvae.json")
        full = as_tensor(source, value, train_rows, data)
        data.train[name], data.test[name] = full[train_rows], full[test_rows]
        for split, rows in ((data.train, train_rows), (data.test, test_rows)):
            if not value.observed[rows].all():
                split[observed_key(name)] = torch.from_numpy(value.observed[rows].copy())
        if source.modality.likelihood == "bernoulli" and not is_binary(full):
            data.test[name] = binarize_once(data.test[name], test_seed + len(binarized))
            binarized.append(name)
        if source.kind == "csv" and source.modality.likelihood == "bernoulli" and len(source.columns) > 1:
            data.feature_names[name] = source.columns
    data.binarized = tuple(binarized)
    check_paired(spec.modalities, data.train, f"{spec.folder} training split")
    check_paired(spec.modalities, data.test, f"{spec.folder} test split")
    return data


def row_count(spec: FolderSpec, values: list[Values]) -> int:
    """The number of rows every modality has; ``DataError`` when they differ."""
    counts = {source.name: len(value.observed) for source, value in zip(spec.sources, values)}
    if len(set(counts.values())) > 1:
        listed = "; ".join(f"{s.name}: {counts[s.name]} in {s.origin}" for s in spec.sources)
        raise DataError(f"{spec.folder}: the modalities have different numbers of rows ({listed}); rows are paired by "
                        f"their index, so every modality needs one row per example (an empty one where it is missing)")
    return next(iter(counts.values()))


def split_rows(spec: FolderSpec, n: int, tables: Tables) -> tuple[np.ndarray, np.ndarray]:
    """The training and the test rows, each in row order."""
    split = spec.split
    if split.file is not None:
        table = tables(split.file)
        cells = [cell.lower() for cell in table.column(split.column, "split")]
        if len(table) != n:
            raise DataError(f"{split.file}: {len(table)} rows in the split column {split.column!r}, but the modalities "
                            f"have {n}; give every row a split")
        wrong = [row for row, cell in enumerate(cells) if cell not in ("train", "test")]
        if wrong:
            raise DataError(f"{table.where(wrong[0])}: split {table.rows[wrong[0]][table.header.index(split.column)]!r} "
                            f"in column {split.column!r}; every row is train or test")
        test = np.array([cell == "test" for cell in cells], dtype=bool)
    else:
        if n < 2:
            raise DataError(f"{spec.folder}: {n} row(s); a train and a test split need at least 2")
        n_test = min(max(1, round(n * split.test_fraction)), n - 1)
        test = np.zeros(n, dtype=bool)
        test[np.random.default_rng(split.seed).permutation(n)[:n_test]] = True
    for name, rows in (("train", ~test), ("test", test)):
        if not rows.any():
            raise DataError(f"{split.file}: no row is {name} in column {split.column!r}; mark some rows {name}")
    return np.flatnonzero(~test), np.flatnonzero(test)


def as_tensor(source: ModalitySource, value: Values, train_rows: np.ndarray, data: PairedData) -> Tensor:
    """A modality's values as the tensor a model reads: images scaled to [0, 1] (Bernoulli) or
    standardised with the training rows' statistics (Gaussian, recorded in ``data.standardization``)."""
    if source.kind != "images":
        return torch.from_numpy(value.values)
    pixels = torch.from_numpy(value.values)
    if source.modality.likelihood == "bernoulli":
        return pixels.to(torch.float32) / 255.0
    channels = value.values if value.values.ndim == 4 else value.values[:, None]
    standardization: Standardization = channel_stats(channels, train_rows[value.observed[train_rows]])
    data.standardization[source.name] = standardization
    full = standardization.apply(pixels)
    full[torch.from_numpy(~value.observed)] = 0.0
    return full


def is_binary(values: Tensor) -> bool:
    """Whether every value is 0 or 1 (needs no binarisation)."""
    return bool(((values == 0) | (values == 1)).all())
