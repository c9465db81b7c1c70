"""The spec file of a data folder, ``jmvae.json``, read into typed dataclasses.

``FolderSpec``: the data set's name, its modalities in model order (each a ``ModalitySource``: the
``Modality`` and where its values are) and its ``SplitSpec``. Reading checks the spec itself (its
JSON, its fields, that the files it names exist); the values are read by ``sources``.
docs/data-folder.md documents every field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jmvae.config import LIKELIHOODS, Modality
from jmvae.errors import DataError

SPEC_FILE = "jmvae.json"
SOURCE_KINDS = ("npy", "csv", "images")
MODALITY_FIELDS = frozenset({"name", "likelihood", "shape", "npy", "mask", "csv", "column", "columns", "classes",
                             "images"})


@dataclass(frozen=True)
class ModalitySource:
    """One modality of a folder and where its values are.

    ``kind``: ``"npy"`` (``file``: an array (N, *shape); ``mask``: an optional bool (N,) array),
    ``"csv"`` (``file``: a table; ``columns``: the columns that make the modality, one for a label)
    or ``"images"`` (``folder``: the image files; ``file``: the table; ``columns``: the one column
    naming each row's image). ``classes``: a categorical modality's class names (None: indices only).
    """

    modality: Modality
    kind: str
    file: Path
    columns: tuple[str, ...] = ()
    mask: Path | None = None
    folder: Path | None = None
    classes: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self.modality.name

    @property
    def origin(self) -> str:
        """Where the values are, as messages name it (``table.csv`` columns, ``x.npy``, ``images/``)."""
        if self.kind == "images":
            return f"{self.folder} listed in {self.file} column {self.columns[0]!r}"
        if self.kind == "csv":
            return f"{self.file} column{'s' * (len(self.columns) > 1)} {', '.join(map(repr, self.columns))}"
        return str(self.file)


@dataclass(frozen=True)
class SplitSpec:
    """Which rows are test rows: a CSV column of ``train``/``test`` (``file`` and ``column``), or
    a seeded random ``test_fraction`` of the rows (the default: seed 0, 10%)."""

    file: Path | None = None
    column: str | None = None
    seed: int = 0
    test_fraction: float = 0.1


@dataclass(frozen=True)
class FolderSpec:
    """A data folder's ``jmvae.json``: ``name`` (the spec's ``"name"``, else the folder's name), the
    folder (absolute), the modalities in model order (the first is the one the baselines generate)
    and the split."""

    name: str
    folder: Path
    sources: tuple[ModalitySource, ...]
    split: SplitSpec

    @property
    def modalities(self) -> tuple[Modality, ...]:
        return tuple(s.modality for s in self.sources)

    @property
    def classes(self) -> tuple[str, ...]:
        """The first categorical modality's class names (``PairedData.classes``), or ()."""
        return next((s.classes or () for s in self.sources if s.modality.likelihood == "categorical"), ())


def is_data_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a ``jmvae.json``."""
    return (Path(path) / SPEC_FILE).is_file()


def read_spec(folder: str | Path) -> FolderSpec:
    """``folder``'s ``jmvae.json`` as a ``FolderSpec``; ``DataError`` naming the file and the field
    for a spec that is not valid JSON, lacks a field, or names a file that does not exist."""
    folder = Path(folder).expanduser().resolve()
    path = folder / SPEC_FILE
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; --data takes a data set's name or a folder holding {SPEC_FILE}")
    if not path.is_file():
        raise DataError(f"{folder}: no {SPEC_FILE} in this folder; write one naming each modality (docs/data-folder.md)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); fix the file (docs/data-folder.md has an example)") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("modalities"), list) or not raw["modalities"]:
        raise DataError(f'{path}: needs "modalities", a non-empty list of modalities (docs/data-folder.md)')
    unknown = sorted(set(raw) - {"name", "modalities", "split"})
    if unknown:
        raise DataError(f"{path}: unknown field {unknown[0]!r}; the fields are name, modalities, split")
    name = raw.get("name", folder.name)
    if not isinstance(name, str) or not name:
        raise DataError(f'{path}: "name" must be a non-empty string, got {name!r}')
    sources = tuple(read_source(path, folder, entry, i) for i, entry in enumerate(raw["modalities"]))
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: modality {repeated[0]!r} is declared twice; give each modality its own name")
    return FolderSpec(name, folder, sources, read_split(path, folder, raw.get("split", {})))


def read_source(path: Path, folder: Path, entry: Any, index: int) -> ModalitySource:
    """Modality ``index`` of the spec at ``path``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise DataError(f'{path}: modality {index} must be an object with a "name" (docs/data-folder.md)')
    where = f"{path}: modality {entry['name']!r}"
    unknown = sorted(set(entry) - MODALITY_FIELDS)
    if unknown:
        raise DataError(f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(sorted(MODALITY_FIELDS))}")
    kinds = [k for k in SOURCE_KINDS if k in entry and not (k == "csv" and "images" in entry)]
    if len(kinds) != 1:
        raise DataError(f'{where}: say where its values are with one of "npy", "csv" or "images" (got {kinds or "none"})')
    kind = kinds[0]
    likelihood = entry.get("likelihood")
    if likelihood not in LIKELIHOODS:
        raise DataError(f"{where}: likelihood {likelihood!r} is not one of {', '.join(LIKELIHOODS)}")
    classes = entry.get("classes")
    if classes is not None and (likelihood != "categorical" or not isinstance(classes, list) or not classes
                                or len(set(map(str, classes))) != len(classes)):
        raise DataError(f'{where}: "classes" is a categorical modality\'s list of distinct class names')
    classes = tuple(str(c) for c in classes) if classes is not None else None
    modality = make_modality(where, entry, likelihood, classes)
    columns = read_columns(where, entry, kind, modality)
    file = existing(path, folder, entry["csv" if kind != "npy" else "npy"], where)
    mask = existing(path, folder, entry["mask"], where) if "mask" in entry else None
    if mask is not None and kind != "npy":
        raise DataError(f'{where}: "mask" goes with "npy"; in a CSV, an empty cell marks a missing value')
    image_folder = existing(path, folder, entry["images"], where, directory=True) if kind == "images" else None
    if kind == "images" and not (len(modality.shape) == 2 or (len(modality.shape) == 3 and modality.shape[0] == 3)):
        raise DataError(f"{where}: images have shape [H, W] (gray) or [3, H, W] (colour), got {list(modality.shape)}")
    if kind == "images" and likelihood == "categorical":
        raise DataError(f"{where}: images are bernoulli (intensities in [0, 1]) or gaussian (standardised), not categorical")
    return ModalitySource(modality, kind, file, columns, mask, image_folder, classes)


def make_modality(where: str, entry: dict[str, Any], likelihood: str, classes: tuple[str, ...] | None) -> Modality:
    """The ``Modality`` of a spec entry: its shape given, or a categorical's from its classes."""
    shape = entry.get("shape")
    if shape is None and classes is not None:
        shape = [len(classes)]
    if not isinstance(shape, list) or not shape or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise DataError(f'{where}: "shape" must be a list of positive integers, e.g. [28, 28] or [3]; got {shape!r}')
    if classes is not None and shape != [len(classes)]:
        raise DataError(f"{where}: shape {shape} disagrees with its {len(classes)} classes; use [{len(classes)}] or drop it")
    try:
        return Modality(entry["name"], tuple(shape), likelihood)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


def read_columns(where: str, entry: dict[str, Any], kind: str, modality: Modality) -> tuple[str, ...]:
    """The CSV columns of a ``csv`` or ``images`` entry ("column": one, "columns": several)."""
    if kind == "npy":
        if "column" in entry or "columns" in entry:
            raise DataError(f'{where}: "column(s)" go with "csv" or "images", not "npy"')
        return ()
    if ("column" in entry) == ("columns" in entry):
        raise DataError(f'{where}: give "column" (one column) or "columns" (a list), not both or neither')
    columns = [entry["column"]] if "column" in entry else entry["columns"]
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise DataError(f'{where}: "columns" must be a non-empty list of column names, got {columns!r}')
    if kind == "images" and len(columns) != 1:
        raise DataError(f'{where}: images are listed in one "column" of file names')
    if kind == "csv":
        wanted = 1 if modality.likelihood == "categorical" else modality.features
        if modality.likelihood == "categorical" and len(columns) != 1:
            raise DataError(f'{where}: a categorical modality is one "column" of class names or indices')
        if len(columns) != wanted or (modality.likelihood != "categorical" and len(modality.shape) != 1):
            raise DataError(f"{where}: {len(columns)} column(s) cannot fill shape {list(modality.shape)}; "
                            f"a table modality has shape [{len(columns)}], one value per column")
    return tuple(columns)


def read_split(path: Path, folder: Path, raw: Any) -> SplitSpec:
    """The ``"split"`` entry: ``{"csv", "column"}`` or ``{"seed", "test_fraction"}`` (the default)."""
    if not isinstance(raw, dict) or not set(raw) <= {"csv", "column", "seed", "test_fraction"}:
        raise DataError(f'{path}: "split" is {{"csv": FILE, "column": NAME}} or {{"seed": 0, "test_fraction": 0.1}}, '
                        f"got {raw!r}")
    if "csv" in raw or "column" in raw:
        if set(raw) != {"csv", "column"} or not isinstance(raw["column"], str):
            raise DataError(f'{path}: a split column needs both "csv" and "column" (and nothing else)')
        return SplitSpec(existing(path, folder, raw["csv"], f"{path}: split"), raw["column"])
    seed, fraction = raw.get("seed", 0), raw.get("test_fraction", 0.1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f'{path}: split "seed" must be an integer, got {seed!r}')
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction < 1:
        raise DataError(f'{path}: split "test_fraction" must be a number between 0 and 1, got {fraction!r}')
    return SplitSpec(seed=seed, test_fraction=float(fraction))


def existing(path: Path, folder: Path, name: Any, where: str, directory: bool = False) -> Path:
    """The file (or folder) ``name`` of the spec, relative to the data folder; it must exist."""
    if not isinstance(name, str) or not name:
        raise DataError(f"{where}: a file name must be a non-empty string, got {name!r}")
    target = (folder / name).resolve()
    found = target.is_dir() if directory else target.is_file()
    if not found:
        what = "folder" if directory else "file"
        raise DataError(f"{where} names {name!r}, but {target} is not a {what}; create it or fix the name in {path.name}")
    return target
