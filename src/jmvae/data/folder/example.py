"""``write_example(path)``: the README's example data folder, a small table, images and labels.

Each row is a shape (a square, a disc or a bar) drawn as a 16x16 gray PNG in ``images/``, its size
and brightness (two table columns, Gaussian) and its class (a label column, categorical). With
``missing``, some rows lack a value: every 7th has no label, every 11th no image, every 13th
neither size nor brightness (empty cells), which ``jmvae.masks`` records as the rows' masks.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from jmvae.data.folder.spec import SPEC_FILE

SIDE = 16
CLASSES = ("square", "disc", "bar")
SPEC = {
    "name": "shapes",
    "modalities": [
        {"name": "image", "likelihood": "bernoulli", "shape": [SIDE, SIDE], "images": "images", "csv": "table.csv",
         "column": "file"},
        {"name": "measures", "likelihood": "gaussian", "shape": [2], "csv": "table.csv", "columns": ["size", "brightness"]},
        {"name": "label", "likelihood": "categorical", "csv": "table.csv", "column": "shape", "classes": list(CLASSES)},
    ],
    "split": {"seed": 0, "test_fraction": 0.1},
}


def draw(kind: int, size: float, brightness: float) -> np.ndarray:
    """A uint8 (SIDE, SIDE) picture of shape ``kind`` of ``size`` (fraction of the side) and ``brightness``."""
    ys, xs = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    half = size * SIDE / 2
    if kind == 0:
        inside = (abs(xs) <= half) & (abs(ys) <= half)
    elif kind == 1:
        inside = xs**2 + ys**2 <= half**2
    else:
        inside = (abs(xs) <= half) & (abs(ys) <= half / 3)
    return np.round(255 * brightness * inside).astype(np.uint8)


def write_example(path: str | os.PathLike, n: int = 200, missing: bool = True, seed: int = 0) -> Path:
    """Write the example folder (``jmvae.json``, ``table.csv``, ``images/``) of ``n`` rows at
    ``path`` and return it; ``missing=False``: every row has every modality."""
    folder = Path(path)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with (folder / "table.csv").open("w", newline="") as handle:
        table = csv.writer(handle, lineterminator="\n")
        table.writerow(["file", "size", "brightness", "shape"])
        for i in range(n):
            kind, size, brightness = int(rng.integers(3)), float(rng.uniform(0.35, 0.9)), float(rng.uniform(0.5, 1.0))
            file = f"{i:04d}.png"
            Image.fromarray(draw(kind, size, brightness), mode="L").save(folder / "images" / file)
            gone = (missing and i % 11 == 5, missing and i % 13 == 6, missing and i % 7 == 3)
            table.writerow(["" if gone[0] else file, "" if gone[1] else f"{size:.4f}",
                            "" if gone[1] else f"{brightness:.4f}", "" if gone[2] else CLASSES[kind]])
    (folder / SPEC_FILE).write_text(json.dumps(SPEC, indent=2) + "\n")
    return folder
