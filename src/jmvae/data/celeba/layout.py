"""Where CelebA's files are: the folder rule and the official file names.

The CelebA folder is the data folder itself if it holds CelebA's files, else its ``celeba/``,
else its ``celeba_partial/``: a partial copy and the full set can sit side by side, and the full
one wins. Inside it, ``img_align_celeba/`` holds the images and the two lists sit beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from jmvae.data.folders import data_folder
from jmvae.errors import DataError

IMAGE_FOLDER = "img_align_celeba"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
FOLDERS = ("celeba", "celeba_partial")  # looked for, in this order, inside the data folder


def looks_like_celeba(folder: Path) -> bool:
    return (folder / IMAGE_FOLDER).is_dir() or any(folder.glob("list_attr_celeba*"))


def find_celeba(data_dir: str | os.PathLike | None = None) -> Path:
    """The CelebA folder: the data folder itself if it holds CelebA's files, else its
    ``celeba/``, else its ``celeba_partial/`` (the data folder: ``data_dir``, else
    ``$JMVAE_DATA``, else ``~/.cache/jmvae``)."""
    root = data_folder(data_dir)
    candidates = [root, *(root / name for name in FOLDERS)]
    for folder in candidates:
        if folder.is_dir() and looks_like_celeba(folder):
            return folder
    raise DataError(
        f"celeba: no CelebA files in {root}, {root / 'celeba'} or {root / 'celeba_partial'}; download "
        f"img_align_celeba.zip, {ATTRIBUTE_FILE} and {PARTITION_FILE} from the CelebA site, unzip the images "
        f"into {root / 'celeba' / IMAGE_FOLDER}/ and put the two lists beside that folder (or pass data_dir "
        "or set JMVAE_DATA to a folder that has them)"
    )


def find_list(folder: Path, name: str, required: bool) -> Path | None:
    """``name``, ``name.gz``, or the one file ``<stem>*.txt[.gz]`` in ``folder``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    stem = name.removesuffix(".txt")
    found = sorted(p for p in folder.glob(f"{stem}*") if p.is_file() and p.name.endswith((".txt", ".txt.gz")))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataError(f"{folder}: several files could be the {name} ({', '.join(p.name for p in found)}); keep one")
    if required:
        raise DataError(f"{folder}: no {name} (CelebA's attribute list); put it beside {IMAGE_FOLDER}/")
    return None


def image_sizes(folder: Path) -> dict[str, int]:
    """File name -> size in bytes of every file in ``folder`` (one directory scan)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.stat().st_size for e in entries if e.is_file()}
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({exc.strerror})") from None
