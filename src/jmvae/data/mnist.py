"""MNIST and Fashion-MNIST from their standard IDX files, verified, downloaded when absent.

Files live in ``<data folder>/mnist/`` and ``<data folder>/fashion_mnist/`` (the data folder:
``data_dir``, else ``$JMVAE_DATA``, else ``~/.cache/jmvae``; see ``data.folders``). Missing
files are downloaded from the usual public mirror (``$JMVAE_MIRROR`` overrides its base URL);
offline, the error says where to put them.

Split (the authors' code): train on all 60,000 training images, test on the 10,000 test images.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jmvae.data.folders import data_folder
from jmvae.data.idx import parse_idx, read_gzip, sha256
from jmvae.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdxDataset:
    name: str
    folder: str
    mirror: str
    classes: tuple[str, ...]
    sha256: dict[str, str]  # file name -> SHA-256 of its decompressed content


FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of each file's decompressed content: (MNIST, Fashion-MNIST)
DIGESTS = {
    "train-images-idx3-ubyte.gz": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                                   "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte.gz": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                                   "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte.gz": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                                  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte.gz": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                                  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

MNIST = IdxDataset(
    name="mnist",
    folder="mnist",
    mirror="https://ossci-datasets.s3.amazonaws.com/mnist/",
    classes=tuple(str(i) for i in range(10)),
    sha256={name: digests[0] for name, digests in DIGESTS.items()},
)

FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    folder="fashion_mnist",
    mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    sha256={name: digests[1] for name, digests in DIGESTS.items()},
)


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``dest`` through a temporary file renamed into place (no partial files)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".part-", delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    os.replace(tmp.name, dest)


def ensure_files(spec: IdxDataset, folder: Path) -> None:
    """Download whichever of the four files is missing from ``folder``; explain where to put them if offline."""
    missing = [f for f in spec.sha256 if not (folder / f).is_file()]
    if not missing:
        return
    mirror = os.environ.get("JMVAE_MIRROR", spec.mirror)
    for name in missing:
        url = mirror.rstrip("/") + "/" + name
        logger.info("downloading %s", url)
        try:
            download(url, folder / name)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataError(
                f"{spec.name}: {name} is not in {folder} and could not be downloaded from {url} ({exc}); "
                f"put the four IDX files ({', '.join(spec.sha256)}) in {folder}, or pass data_dir or set "
                f"JMVAE_DATA to a folder that has them in {spec.folder}/"
            ) from None


def load_idx_dataset(spec: IdxDataset, data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """{train_images (60000, 28, 28), train_labels, test_images (10000, 28, 28), test_labels}, uint8,
    each file checked for its format, its checksum and that images and labels agree in number."""
    folder = data_folder(data_dir) / spec.folder
    ensure_files(spec, folder)
    arrays = {}
    for key, name in FILES.items():
        path = folder / name
        content = read_gzip(path)
        digest = sha256(content)
        if digest != spec.sha256[name]:
            raise DataError(
                f"{path}: decompressed content has SHA-256 {digest[:12]}..., expected "
                f"{spec.sha256[name][:12]}... for {spec.name}; the file is corrupt or not the original, replace it"
            )
        arrays[key] = parse_idx(content, path, "images" if key.endswith("images") else "labels")
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise DataError(f"{spec.name} {split}: {n_images} images but {n_labels} labels")
    return arrays
