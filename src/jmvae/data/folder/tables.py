"""CSV tables of a data folder, read once with the ``csv`` module: a header and rows of stripped cells.

A row's place in messages is its line in the file (the header is line 1), which is what an editor
or a spreadsheet shows. An empty cell is a missing value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from jmvae.errors import DataError


@dataclass(frozen=True)
class Table:
    """A CSV file's header, its rows (cells stripped of surrounding spaces) and each row's line."""

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str, modality: str) -> list[str]:
        """The cells of column ``name`` (for ``modality``, which messages name)."""
        if name not in self.header:
            raise DataError(f"{self.path}: no column {name!r} (modality {modality!r}); its columns are "
                            f"{', '.join(self.header)}; fix the column name in jmvae.json or the header")
        index = self.header.index(name)
        return [row[index] for row in self.rows]

    def where(self, row: int) -> str:
        """Row ``row`` (0-based) as messages name it: ``table.csv line 5``."""
        return f"{self.path} line {self.lines[row]}"


class Tables:
    """The tables of one load, each file read once however many modalities name it."""

    def __init__(self) -> None:
        self.read: dict[Path, Table] = {}

    def __call__(self, path: Path) -> Table:
        if path not in self.read:
            self.read[path] = read_table(path)
        return self.read[path]


def read_table(path: Path) -> Table:
    """``path`` as a ``Table``; ``DataError`` for a file that is not UTF-8 text, has no header, a
    repeated column name, or a row with a different number of cells than the header."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = tuple(cell.strip() for cell in next(reader, ()))
            rows, lines = [], []
            for cells in reader:
                if not any(cell.strip() for cell in cells) and len(cells) <= 1:
                    continue  # a blank line
                if len(cells) != len(header):
                    raise DataError(f"{path} line {reader.line_num}: {len(cells)} cells, but the header has "
                                    f"{len(header)} columns; every row needs one cell per column (empty for missing)")
                rows.append(tuple(cell.strip() for cell in cells))
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the table as a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc}); save it as a comma-separated table") from None
    if not header or not all(header):
        raise DataError(f"{path}: needs a header row naming every column (line 1)")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column {repeated[0]!r} appears twice in the header; give each column its own name")
    return Table(path, header, tuple(rows), tuple(lines))
