"""A modality's values from where the spec says they are: a NumPy array, CSV columns or image files.

Each reader gives ``Values``: an array of N rows (float32 for Bernoulli and Gaussian modalities,
int64 class indices for categorical ones, uint8 pixels for images) and the bool (N,) mask of the
rows that have a value; a missing row holds zeros. Every value of an observed row is checked:
finite, in [0, 1] for a Bernoulli modality, a known class for a categorical one. A failure is a
``DataError`` naming the file, the row and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from jmvae.data.folder.spec import ModalitySource
from jmvae.data.folder.tables import Table, Tables
from jmvae.errors import DataError


@dataclass(frozen=True)
class Values:
    """One modality's N rows (zeros where missing) and which rows are observed (bool (N,))."""

    values: np.ndarray
    observed: np.ndarray


def read_values(source: ModalitySource, tables: Tables) -> Values:
    """``source``'s values, checked (module docstring)."""
    if source.kind == "npy":
        return read_npy(source)
    table = tables(source.file)
    if source.kind == "images":
        return read_images(source, table)
    return read_csv(source, table)


# -- NumPy arrays ---------------------------------------------------------------------------------
def load_array(path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a NumPy .npy file ({' '.join(str(exc).split())}); "
                        f"save the {what} with numpy.save") from None


def read_npy(source: ModalitySource) -> Values:
    """An (N, *shape) array (categorical: (N,) integer class indices); all-NaN rows of a Gaussian
    modality and the rows its ``mask`` marks False are missing."""
    m, path = source.modality, source.file
    array = load_array(path, f"values of {m.name!r}")
    expected = () if m.likelihood == "categorical" else m.shape
    if array.ndim < 1 or tuple(array.shape[1:]) != expected:
        wanted = ", ".join(["N", *map(str, expected)])
        raise DataError(f"{path}: array of shape {tuple(array.shape)}, but modality {m.name!r} of shape {list(m.shape)} "
                        f"({m.likelihood}) needs ({wanted}); reshape the array or fix \"shape\" in jmvae.json")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: values of dtype {array.dtype}; modality {m.name!r} needs numbers (bool, int or float)")
    n = len(array)
    observed = read_mask(source, n) if source.mask is not None else np.ones(n, dtype=bool)
    if m.likelihood == "categorical":
        if array.dtype.kind == "f":
            raise DataError(f"{path}: class indices of dtype {array.dtype}; modality {m.name!r} needs integers "
                            f"(mark missing labels with a \"mask\" file)")
        values = array.astype(np.int64)
        bad = observed & ((values < 0) | (values >= m.shape[0]))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path} row {row}: class index {values[row]} is outside 0..{m.shape[0] - 1} of modality "
                            f"{m.name!r}; fix it, or give the modality a larger \"shape\"")
        values[~observed] = 0
        return Values(values, observed)
    values = array.astype(np.float32).reshape(n, -1)
    nan = np.isnan(values)
    if m.likelihood == "gaussian":
        observed = observed & ~nan.all(1)  # an all-NaN row is a missing one
    bad = observed & nan.any(1)
    if bad.any():
        row = int(np.argmax(bad))
        if m.likelihood == "bernoulli":
            raise DataError(f"{path} row {row}: NaN in the bernoulli modality {m.name!r}, whose values lie in [0, 1]; "
                            f"mark missing rows False in a \"mask\" file instead")
        raise DataError(f"{path} row {row}: NaN in some of the values of {m.name!r}; a missing row is NaN throughout "
                        f"(or False in a \"mask\" file), an observed one has no NaN")
    values[~observed] = 0.0
    check_numbers(values, observed, source, lambda row: f"{path} row {row}")
    return Values(values.reshape(n, *m.shape), observed)


def read_mask(source: ModalitySource, n: int) -> np.ndarray:
    """The ``mask`` file: bool (N,), True where the row has the modality."""
    mask = load_array(source.mask, f"mask of {source.name!r}")
    if mask.dtype != np.bool_ or mask.shape != (n,):
        raise DataError(f"{source.mask}: the mask of {source.name!r} must be a bool array of shape ({n},) (one per row "
                        f"of {source.file.name}), got {mask.dtype} {tuple(mask.shape)}")
    return mask.copy()


def check_numbers(values: np.ndarray, observed: np.ndarray, source: ModalitySource, where) -> None:
    """Observed rows (N, D) finite, and in [0, 1] for a Bernoulli modality; ``where(row)`` names a row."""
    m = source.modality
    bad = observed & ~np.isfinite(values).all(1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{where(row)}: an infinite or NaN value in {m.name!r}; fix it, or mark the row missing")
    if m.likelihood == "bernoulli":
        bad = observed & ((values < 0) | (values > 1)).any(1)
        if bad.any():
            row = int(np.argmax(bad))
            low, high = float(values[row].min()), float(values[row].max())
            raise DataError(f"{where(row)}: values in [{low:.3g}, {high:.3g}] in the bernoulli modality {m.name!r}, "
                            f"whose values lie in [0, 1]; scale them to [0, 1] or use \"likelihood\": \"gaussian\"")


# -- CSV columns ----------------------------------------------------------------------------------
def read_csv(source: ModalitySource, table: Table) -> Values:
    """Columns of a table: numbers (Bernoulli, Gaussian), or one column of class names or indices
    (categorical). A row whose cells are all empty is missing; one with only some empty is an error."""
    m = source.modality
    columns = [table.column(c, m.name) for c in source.columns]
    cells = list(zip(*columns))
    empty = np.array([[cell == "" for cell in row] for row in cells], dtype=bool).reshape(len(table), len(columns))
    observed = ~empty.all(1)
    partial = observed & empty.any(1)
    if partial.any():
        row = int(np.argmax(partial))
        blank = [c for c, e in zip(source.columns, empty[row]) if e]
        raise DataError(f"{table.where(row)}: modality {m.name!r} has empty cells in {', '.join(map(repr, blank))} but not in "
                        f"its other columns; fill them, or empty all its cells to mark the row missing")
    if m.likelihood == "categorical":
        labels = np.zeros(len(table), dtype=np.int64)
        for row in np.flatnonzero(observed):
            labels[row] = class_index(cells[row][0], source, table, int(row))
        return Values(labels, observed)
    values = np.zeros((len(table), len(columns)), dtype=np.float32)
    for row in np.flatnonzero(observed):
        for j, cell in enumerate(cells[row]):
            try:
                values[row, j] = float(cell)
            except ValueError:
                raise DataError(f"{table.where(int(row))}: {cell!r} in column {source.columns[j]!r} is not a number "
                                f"(modality {m.name!r}); fix the cell, or empty it to mark the value missing") from None
    check_numbers(values, observed, source, table.where)
    return Values(values, observed)


def class_index(cell: str, source: ModalitySource, table: Table, row: int) -> int:
    """A label cell -> its class index: one of the ``classes``' names, or an index 0..n-1."""
    n = source.modality.shape[0]
    if source.classes is not None and cell in source.classes:
        return source.classes.index(cell)
    try:
        index = int(cell)
    except ValueError:
        index = -1
    if 0 <= index < n:
        return index
    known = f"one of the classes ({', '.join(source.classes)}) nor " if source.classes else ""
    raise DataError(f"{table.where(row)}: {cell!r} in column {source.columns[0]!r} is {'neither ' * bool(known)}{known}"
                    f"{'an' if known else 'not an'} index 0..{n - 1} of modality {source.name!r}; fix the cell or add "
                    f"the class to \"classes\" in jmvae.json")


# -- image files ----------------------------------------------------------------------------------
def read_images(source: ModalitySource, table: Table) -> Values:
    """The images a table column names, uint8 (N, H, W) gray or (N, 3, H, W) colour, each of
    exactly the modality's size (no resizing); an empty cell is a missing image."""
    m = source.modality
    colour = len(m.shape) == 3
    height, width = m.shape[-2:]
    names = table.column(source.columns[0], m.name)
    pixels = np.zeros((len(table), *m.shape), dtype=np.uint8)
    observed = np.array([name != "" for name in names], dtype=bool)
    for row, name in enumerate(names):
        if not name:
            continue
        path = source.folder / name
        if not path.is_file():
            raise DataError(f"{table.where(row)}: image {name!r} is not in {source.folder}; add it, fix the name, "
                            f"or empty the cell to mark the image missing")
        try:
            with Image.open(path) as image:
                image.load()
                converted = image.convert("RGB" if colour else "L")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{path} ({table.where(row)}): not an image Pillow can read ({' '.join(str(exc).split())}); "
                            f"replace the file, or empty its cell to mark the image missing") from None
        if converted.size != (width, height):
            raise DataError(f"{path} ({table.where(row)}): image of {converted.width}x{converted.height} (width x height), "
                            f"but modality {m.name!r} has shape {list(m.shape)}; resize the images to {width}x{height} "
                            f"or fix \"shape\" in jmvae.json")
        array = np.asarray(converted)
        pixels[row] = array.transpose(2, 0, 1) if colour else array
    return Values(pixels, observed)
