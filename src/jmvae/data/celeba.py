"""CelebA (Liu et al. 2015) in its official layout: 64x64 colour faces and 40 binary attributes.

The folder (see ``find_celeba``) holds what the CelebA site distributes:

- ``img_align_celeba/*.jpg``: the aligned and cropped images, 178x218 RGB JPEGs;
- ``list_attr_celeba.txt``: line 1 the number of images, line 2 the 40 attribute names, then
  one row per image, ``000001.jpg`` and 40 values in {-1, 1} (spaces, any line ending; a
  ``.gz`` of it, or one file named ``list_attr_celeba*.txt[.gz]``, is read too);
- ``list_eval_partition.txt`` (optional): ``000001.jpg 0`` per image, 0 train, 1 validation,
  2 test.

Rows of the attribute file whose image is missing are dropped with a ``CelebAWarning`` that
counts them (``shared/data/celeba_partial`` has 20,000 rows and 10 images); no image at all,
malformed files and images that are not RGB are ``DataError``\\s naming the file and the problem.

Images are cropped to a square around the face (``crop``: the fixed box ``ALIGNED_CROP`` by
default, or OpenCV's face detector as the authors did, or a box of your own), resized to 64x64,
and decoded once into a uint8 cache of shape (N, 3, 64, 64) memory-mapped from disk; epochs read
batches from it and standardise them per channel with the training split's mean and std. See
docs/celeba.md.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from jmvae.config import Modality, ModelConfig, TrainConfig
from jmvae.data.mnist import data_folder
from jmvae.errors import DataError, JMVAEError

if TYPE_CHECKING:
    from jmvae.data import PairedData

logger = logging.getLogger(__name__)

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
IMAGE_FOLDER = "img_align_celeba"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
FOLDERS = ("celeba", "celeba_partial")  # looked for, in this order, inside the data folder

ALIGNED_SIZE = (178, 218)  # (width, height) of every image in img_align_celeba
ALIGNED_CROP = (21, 55, 157, 191)
"""(left, top, right, bottom): a 136-pixel square centred on (89, 123), where the aligned set
puts the face; it is the mean box the authors' face detector (OpenCV's frontal-face Haar cascade,
box enlarged 1.3x) finds on the aligned images. See docs/celeba.md."""
DETECTOR_EXPANSION = 1.3  # the authors' enlargement of the detected face box
DETECTOR_MIN_FRACTION = 0.4  # and their smallest face: box side / image height
IMAGE_SIZE = 64
TEST_FRACTION = 0.1  # the paper's 90/10 split when no partition file is given
IN_MEMORY_BYTES = 1 << 30  # standardised float32 images up to this size are held as tensors
CACHE_VERSION = 1
RESAMPLING = "lanczos"

Crop = Literal["aligned", "detect"] | tuple[int, int, int, int]
AttributeLikelihood = Literal["bernoulli", "tanh-gaussian"]
Split = Literal["auto", "official", "random"]

ATTRIBUTE_VALUES = {"1": 1, "-1": -1}
IMAGE_MODES = {"L": "grayscale", "LA": "grayscale with alpha", "1": "black-and-white", "P": "palette",
               "CMYK": "CMYK", "RGBA": "RGBA", "I": "32-bit grayscale", "I;16": "16-bit grayscale",
               "F": "floating-point grayscale", "YCbCr": "YCbCr"}


class CelebAWarning(UserWarning):
    """Rows of the attribute file that have no image (or no detected face) were dropped."""


# -- standardisation and lazily decoded images -------------------------------------------------


@dataclass(frozen=True)
class Standardization:
    """Per-channel pixel standardisation: x = (pixel / 255 - mean) / std, with the training
    split's mean and std of pixel / 255 (one value per channel)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        shape = (len(self.mean), 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=like.device).reshape(shape)
        std = torch.tensor(self.std, dtype=torch.float32, device=like.device).reshape(shape)
        return mean, std

    def apply(self, pixels: Tensor) -> Tensor:
        """uint8 images (..., C, H, W) -> standardised float32."""
        mean, std = self._stats(pixels)
        return (pixels.to(torch.float32) / 255.0 - mean) / std

    def undo(self, x: Tensor) -> Tensor:
        """Standardised images (..., C, H, W) -> intensities in [0, 1] (clamped), for display."""
        mean, std = self._stats(x)
        return (x.to(torch.float32) * std + mean).clamp(0.0, 1.0)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> Standardization:
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))


class StandardizedImages:
    """Images of one split, read from a uint8 (N, C, H, W) array (a memory map of the cache) and
    standardised only when indexed: ``images[idx]`` is a float32 tensor on ``device``, for an int,
    a slice, or an index tensor/array/list (long or bool, on any device).

    It stands in for a (n, C, H, W) float tensor in ``PairedData.train``/``test`` when the set is
    too big for memory: ``len``, ``shape``, ``dim()``, ``dtype``, ``to(device)`` and indexing are
    what the training loop and the evaluation use. ``materialize()`` gives the whole tensor.
    """

    def __init__(self, pixels: np.ndarray, rows: np.ndarray, standardization: Standardization,
                 device: str | torch.device = "cpu") -> None:
        if pixels.ndim != 4 or pixels.dtype != np.uint8:
            raise ValueError(f"pixels must be a uint8 (N, C, H, W) array, got {pixels.dtype} {pixels.shape}")
        self.pixels = pixels
        self.rows = np.asarray(rows, dtype=np.int64)
        self.standardization = standardization
        self.device = torch.device(device)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.pixels.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def ndim(self) -> int:
        return 4

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.rows)

    def numel(self) -> int:
        return math.prod(self.shape)

    def is_floating_point(self) -> bool:
        return True

    def to(self, device: str | torch.device) -> StandardizedImages:
        return StandardizedImages(self.pixels, self.rows, self.standardization, device)

    def cpu(self) -> StandardizedImages:
        return self.to("cpu")

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.detach().cpu().numpy()
        elif isinstance(index, list):
            index = np.asarray(index)
        rows = self.rows[index]
        if np.ndim(rows) == 0:
            return self._read(np.asarray([rows]))[0]
        return self._read(rows)

    def _read(self, rows: np.ndarray) -> Tensor:
        order = np.argsort(rows, kind="stable")  # read the memory map front to back
        block = np.empty((len(rows), *self.pixels.shape[1:]), dtype=np.uint8)
        block[order] = self.pixels[rows[order]]
        return self.standardization.apply(torch.from_numpy(block).to(self.device))

    def materialize(self) -> Tensor:
        """All images as one standardised float32 tensor on ``device``."""
        return self._read(self.rows)

    def __repr__(self) -> str:
        return f"StandardizedImages(shape={tuple(self.shape)}, device={self.device})"


# -- finding and reading the files ---------------------------------------------------------------


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
        f"into {root / 'celeba' / IMAGE_FOLDER}/ and put the two lists beside that folder (or point --data-dir "
        "or JMVAE_DATA at a folder that has them)"
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


def read_lines(path: Path) -> list[str]:
    try:
        raw = gzip.open(path).read() if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file ({exc})") from None
    return text.splitlines()


@dataclass(frozen=True)
class Attributes:
    """The attribute file: image file names in file order, and their values in {-1, 1}."""

    path: Path
    files: tuple[str, ...]
    values: np.ndarray  # int8 (N, 40)
    names: tuple[str, ...]


def read_attributes(path: str | os.PathLike) -> Attributes:
    """Parse ``list_attr_celeba.txt`` (or a gzip of it), checking every line."""
    path = Path(path)
    lines = read_lines(path)
    if len(lines) < 2:
        raise DataError(f"{path}: {len(lines)} line(s); a CelebA attribute file starts with a count and the 40 attribute names")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}: line 1 is {lines[0].strip()[:40]!r}, expected the number of images") from None
    names = tuple(lines[1].split())
    if len(names) != len(ATTRIBUTE_NAMES):
        raise DataError(f"{path}: line 2 has {len(names)} attribute names, CelebA has {len(ATTRIBUTE_NAMES)}")
    for i, (got, want) in enumerate(zip(names, ATTRIBUTE_NAMES)):
        if got != want:
            raise DataError(f"{path}: line 2, attribute {i + 1} is {got!r}, CelebA's is {want!r}; not a CelebA attribute header")
    n_columns = len(names) + 1
    files: list[str] = []
    rows: list[list[int]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != n_columns:
            raise DataError(f"{path}: line {number} has {len(parts) - 1} values after the file name, expected {len(names)}")
        try:
            rows.append([ATTRIBUTE_VALUES[v] for v in parts[1:]])
        except KeyError:
            column = next(j for j, v in enumerate(parts[1:]) if v not in ATTRIBUTE_VALUES)
            raise DataError(
                f"{path}: line {number}, attribute {names[column]}: value {parts[1 + column]!r} is not -1 or 1"
            ) from None
        name = parts[0]
        if name in seen:
            raise DataError(f"{path}: line {number} repeats {name} (first on line {seen[name]})")
        seen[name] = number
        files.append(name)
    if not files:
        raise DataError(f"{path}: no image rows after the header")
    if len(files) > declared:
        raise DataError(f"{path}: line 1 declares {declared} images but {len(files)} rows follow")
    if len(files) < declared:
        logger.info("%s declares %d images and lists %d (a partial copy)", path, declared, len(files))
    return Attributes(path, tuple(files), np.asarray(rows, dtype=np.int8).reshape(-1, len(names)), names)


def read_partition(path: str | os.PathLike) -> dict[str, int]:
    """Parse ``list_eval_partition.txt``: image file name -> 0 (train), 1 (validation) or 2 (test)."""
    path = Path(path)
    out: dict[str, int] = {}
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path}: line {number} is {line.strip()[:60]!r}; expected 'FILE.jpg 0|1|2'")
        out[parts[0]] = int(parts[1])
    if not out:
        raise DataError(f"{path}: empty partition file")
    return out


def image_sizes(folder: Path) -> dict[str, int]:
    """File name -> size in bytes of every file in ``folder`` (one directory scan)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.stat().st_size for e in entries if e.is_file()}
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({exc.strerror})") from None


# -- decoding, cropping and resizing -------------------------------------------------------------


def crop_spec(crop: Crop) -> str | list[int]:
    """The JSON-able form of ``crop``, checked."""
    if isinstance(crop, str):
        if crop not in ("aligned", "detect"):
            raise JMVAEError(f"crop must be 'aligned', 'detect' or a (left, top, right, bottom) box, got {crop!r}")
        return crop
    box = [int(v) for v in crop]
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        raise JMVAEError(f"crop box {tuple(crop)} must be (left, top, right, bottom) with right > left and bottom > top")
    return box


_cascade: Any = None


def face_detector() -> Any:
    """OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_alt.xml``, the authors' choice)."""
    global _cascade
    if _cascade is None:
        try:
            import cv2
        except ImportError:
            raise JMVAEError(
                "crop='detect' needs OpenCV 4 with its Haar cascades: pip install 'opencv-python-headless<5' "
                "(or jmvae[face]); the default crop='aligned' needs nothing"
            ) from None
        if not hasattr(cv2, "CascadeClassifier"):
            raise JMVAEError(
                f"crop='detect' needs OpenCV's Haar cascades, which OpenCV {cv2.__version__} no longer has; "
                "pip install 'opencv-python-headless<5'"
            )
        cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt.xml"))
        if cascade.empty():
            raise JMVAEError("OpenCV's haarcascade_frontalface_alt.xml could not be loaded")
        _cascade = cascade
    return _cascade


def detect_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The authors' face box: the Haar cascade's box enlarged 1.3x, inside the image and at least
    0.4 of its height; the largest such box, or None."""
    cascade = face_detector()
    import cv2

    height, width = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.2, minNeighbors=2, minSize=(10, 10))
    best = None
    for x, y, w, h in np.asarray(found).reshape(-1, 4).tolist():
        grow = int(w * (DETECTOR_EXPANSION - 1) / 2)
        box = (x - grow, y - grow, x + w + grow, y + h + grow)
        inside = box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height
        if inside and (box[3] - box[1]) / height > DETECTOR_MIN_FRACTION and (best is None or box[2] - box[0] > best[2] - best[0]):
            best = box
    return best


def decode_image(path: str | os.PathLike, crop: str | list[int], size: int) -> np.ndarray | None:
    """One image file -> uint8 (3, size, size), cropped and resized; None when crop='detect'
    finds no face. Raises ``DataError`` for unreadable, non-RGB or wrongly sized images."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode != "RGB":
                kind = IMAGE_MODES.get(image.mode, f"mode {image.mode}")
                raise DataError(
                    f"{path}: a {kind} image (mode {image.mode}); CelebA images are RGB. Convert it to RGB or "
                    "remove its row from the attribute file"
                )
            image.load()
            if crop == "aligned":
                if image.size != ALIGNED_SIZE:
                    raise DataError(
                        f"{path}: {image.size[0]}x{image.size[1]} pixels; aligned CelebA images are "
                        f"{ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} and crop='aligned' relies on their fixed face position "
                        "(use crop='detect' or a crop box for other images)"
                    )
                box: Sequence[int] | None = ALIGNED_CROP
            elif crop == "detect":
                box = detect_face(np.asarray(image))
                if box is None:
                    return None
            else:
                box = crop
                if box[2] > image.size[0] or box[3] > image.size[1] or box[0] < 0 or box[1] < 0:
                    raise DataError(f"{path}: crop box {tuple(box)} does not fit in its {image.size[0]}x{image.size[1]} pixels")
            resized = image.resize((size, size), Image.Resampling.LANCZOS, box=tuple(box))
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot be decoded as an image ({exc})") from None
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1).copy()


def decode_chunk(paths: list[str], crop: str | list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``paths`` -> (uint8 (n, 3, size, size), bool (n,) found); run in worker processes."""
    out = np.zeros((len(paths), 3, size, size), dtype=np.uint8)
    found = np.ones(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        image = decode_image(path, crop, size)
        if image is None:
            found[i] = False
        else:
            out[i] = image
    return out, found


# -- the cache ----------------------------------------------------------------------------------


def default_cache_dir(folder: Path) -> Path:
    """``$JMVAE_CACHE/celeba``, else ``<CelebA folder>/cache`` if it can be written, else
    ``~/.cache/jmvae/celeba-cache``."""
    env = os.environ.get("JMVAE_CACHE")
    if env:
        return Path(env) / "celeba"
    own = folder / "cache"
    if writable(own):
        return own
    return Path.home() / ".cache" / "jmvae" / "celeba-cache"


def writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
        return True
    except OSError:
        return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "xb") as f:  # created with the umask's permissions, like the .npy
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class ImageCache:
    """The decoded images of the kept attribute rows: ``pixels`` uint8 (N, 3, S, S), read-only
    memory map; ``found[i]`` False where crop='detect' found no face (those rows are zeros)."""

    path: Path
    pixels: np.ndarray
    found: np.ndarray
    meta: dict[str, Any]

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    def stats(self, split_key: str, rows: np.ndarray) -> Standardization:
        """Per-channel mean and std of pixel/255 over ``rows``, stored in the cache's metadata."""
        saved = self.meta.get("stats", {}).get(split_key)
        if saved is not None and saved.get("n") == len(rows):
            return Standardization.from_dict(saved)
        standardization = channel_stats(self.pixels, rows)
        self.meta.setdefault("stats", {})[split_key] = {**standardization.to_dict(), "n": len(rows)}
        try:
            atomic_write_bytes(self.meta_path, json.dumps(self.meta, indent=1).encode())
        except OSError as exc:  # a read-only cache still works; the stats are recomputed next time
            logger.info("could not store the CelebA pixel statistics in %s (%s)", self.meta_path, exc)
        return standardization


def channel_stats(pixels: np.ndarray, rows: np.ndarray, chunk: int = 2048) -> Standardization:
    """Exact per-channel mean and std of pixel/255 over ``rows``, from per-channel histograms of
    the uint8 values (one pass over the memory map, no float copy of it)."""
    channels = pixels.shape[1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(rows), chunk):
        block = pixels[np.sort(rows[start : start + chunk])]
        for c in range(channels):
            counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = counts.sum(1)
    mean = (counts * values).sum(1) / total
    var = (counts * values**2).sum(1) / total - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    std = np.where(std > 1e-6, std, 1.0)  # a constant channel: leave its scale alone
    return Standardization(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def content_key(files: Sequence[str], sizes: Sequence[int], crop: str | list[int], size: int) -> str:
    """What the cache's bytes depend on: the image files (names, sizes, order) and the settings."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, "crop": crop, "size": size, "resampling": RESAMPLING}).encode())
    for name, n_bytes in zip(files, sizes):
        digest.update(f"\n{name}\t{n_bytes}".encode())
    return digest.hexdigest()


def open_cache(path: Path, key: str, n: int, size: int) -> ImageCache | None:
    """The cache at ``path`` if it is complete and made from ``key``; else None (stale or absent)."""
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or meta.get("version") != CACHE_VERSION:
        logger.info("CelebA cache %s is stale (the images or the crop changed); rebuilding it", path)
        return None
    try:
        pixels = np.load(path, mmap_mode="c")  # copy-on-write: torch.from_numpy takes it without warnings
        found = np.load(path.with_name(path.stem + "-found.npy")) if meta.get("detect") else np.ones(n, dtype=bool)
    except (OSError, ValueError) as exc:
        logger.info("CelebA cache %s is unreadable (%s); rebuilding it", path, exc)
        return None
    if pixels.shape != (n, 3, size, size) or pixels.dtype != np.uint8 or found.shape != (n,):
        logger.info("CelebA cache %s has shape %s, expected %s; rebuilding it", path, pixels.shape, (n, 3, size, size))
        return None
    return ImageCache(path, pixels, found, meta)


def build_cache(path: Path, key: str, paths: list[Path], crop: str | list[int], size: int,
                workers: int | None, progress: bool) -> ImageCache:
    """Decode every image into ``path`` (a .npy of uint8 (N, 3, size, size)), written through
    temporary files renamed into place; the metadata, written last, marks it complete."""
    from tqdm.auto import tqdm

    n = len(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = 1 if n < 2000 else max(1, min(8, os.cpu_count() or 1))
    logger.info("decoding %d CelebA images into %s (%d process(es)); this happens once", n, path, workers)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    found = np.ones(n, dtype=bool)
    try:
        try:
            pixels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
            with open(tmp, "rb+") as f:  # reserve the blocks now: a full disk is an error here, not a crash later
                os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))
        except OSError as exc:
            raise DataError(f"{tmp}: cannot create the CelebA image cache ({n * 3 * size * size:,} bytes): {exc}") from None
        chunk = 256
        starts = range(0, n, chunk)
        bar = tqdm(total=n, disable=not progress or n < 5000, unit="image", desc="CelebA cache")
        jobs = ([str(p) for p in paths[s : s + chunk]] for s in starts)
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                results = pool.map(decode_chunk, jobs, [crop] * len(starts), [size] * len(starts))
                for start, (block, ok) in zip(starts, results):
                    pixels[start : start + len(block)] = block
                    found[start : start + len(block)] = ok
                    bar.update(len(block))
        else:
            for start, job in zip(starts, jobs):
                block, ok = decode_chunk(job, crop, size)
                pixels[start : start + len(block)] = block
                found[start : start + len(block)] = ok
                bar.update(len(block))
        bar.close()
        pixels.flush()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        del pixels
        detect = crop == "detect"
        if detect:
            buffer = io.BytesIO()
            np.save(buffer, found)
            atomic_write_bytes(path.with_name(path.stem + "-found.npy"), buffer.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {"version": CACHE_VERSION, "key": key, "n": n, "size": size, "crop": crop, "resampling": RESAMPLING,
            "detect": crop == "detect", "faces_found": int(found.sum()), "stats": {}}
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    opened = open_cache(path, key, n, size)
    assert opened is not None
    return opened


def image_cache(folder: Path, files: Sequence[str], sizes: Sequence[int], crop: str | list[int], size: int,
                cache_dir: str | os.PathLike | None, workers: int | None, progress: bool) -> ImageCache:
    """The cache of ``files`` (in ``folder/img_align_celeba``), reused when it matches, else built.

    One cache slot per (CelebA folder, crop, size), named by a hash of those; its metadata holds a
    hash of the file list, file sizes and settings, so a changed image set is rebuilt in place."""
    where = Path(cache_dir) if cache_dir is not None else default_cache_dir(folder)
    slot = hashlib.sha256(json.dumps([str(folder.resolve()), crop, size, CACHE_VERSION]).encode()).hexdigest()[:16]
    path = where / f"celeba-{size}px-{slot}.npy"
    key = content_key(files, sizes, crop, size)
    cache = open_cache(path, key, len(files), size)
    if cache is None:
        if not writable(where):
            raise DataError(f"celeba: cannot write the image cache in {where}; pass cache_dir= or set JMVAE_CACHE to a writable folder")
        cache = build_cache(path, key, [folder / IMAGE_FOLDER / f for f in files], crop, size, workers, progress)
    return cache


# -- the data set -------------------------------------------------------------------------------


def split_rows(n: int, files: Sequence[str], partition: dict[str, int] | None, split: Split,
               seed: int, test_fraction: float, where: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(train rows, test rows, split key) over ``n`` rows of ``files``."""
    if split == "auto":
        split = "official" if partition is not None else "random"
    if split == "official":
        if partition is None:
            raise DataError(f"{where}: split='official' needs {PARTITION_FILE} beside {IMAGE_FOLDER}/")
        labels = np.empty(n, dtype=np.int8)
        for i, name in enumerate(files):
            try:
                labels[i] = partition[name]
            except KeyError:
                raise DataError(f"{where / PARTITION_FILE}: no line for {name}, which has an image and attributes") from None
        train, test = np.flatnonzero(labels != 2), np.flatnonzero(labels == 2)
        if not len(train) or not len(test):
            raise DataError(f"{where / PARTITION_FILE}: the images here are all in one split ({len(train)} train, {len(test)} test)")
        return train, test, "official"
    if split != "random":
        raise JMVAEError(f"split must be 'auto', 'official' or 'random', got {split!r}")
    if not 0 < test_fraction < 1:
        raise JMVAEError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if n < 2:
        raise DataError(f"{where}: {n} usable image; a train/test split needs at least 2")
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test]), f"random-{test_fraction:g}-seed{seed}"


def load_celeba(
    data_dir: str | os.PathLike | None = None,
    *,
    crop: Crop = "aligned",
    size: int = IMAGE_SIZE,
    attributes: AttributeLikelihood = "bernoulli",
    split: Split = "auto",
    split_seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    cache_dir: str | os.PathLike | None = None,
    in_memory: bool | None = None,
    on_missing: Literal["warn", "error"] = "warn",
    workers: int | None = None,
    progress: bool = True,
) -> PairedData:
    """CelebA as ``PairedData``: ``image`` (3, size, size) standardised floats, Gaussian with fixed
    scale 1 (the authors' constant variance), and ``attributes`` (40,), Bernoulli over 0/1
    (``attributes="tanh-gaussian"``: the paper's -1/1 values, tanh mean, Gaussian of scale 1).

    - ``crop``: "aligned" (``ALIGNED_CROP``), "detect" (OpenCV's face detector, as the authors;
      images without a detected face are dropped) or a (left, top, right, bottom) box.
    - ``split``: "official" (``list_eval_partition.txt``: train + validation for training, test
      for testing, about 90/10), "random" (a ``split_seed``-ed ``test_fraction`` held out), or
      "auto" (official when the partition file is there).
    - ``in_memory``: True holds the standardised images as tensors, False streams them from the
      cache (``StandardizedImages``); None: tensors up to ``IN_MEMORY_BYTES`` (1 GiB, ~21,800 images).
    - ``on_missing``: what to do with attribute rows whose image file is absent: "warn" drops them
      with a ``CelebAWarning``, "error" raises ``DataError``. No image at all is always an error.
    """
    from jmvae.data import PairedData

    if attributes not in ("bernoulli", "tanh-gaussian"):
        raise JMVAEError(f"attributes must be 'bernoulli' or 'tanh-gaussian', got {attributes!r}")
    if size < 1:
        raise JMVAEError(f"size must be positive, got {size}")
    if split not in ("auto", "official", "random"):
        raise JMVAEError(f"split must be 'auto', 'official' or 'random', got {split!r}")
    if on_missing not in ("warn", "error"):
        raise JMVAEError(f"on_missing must be 'warn' or 'error', got {on_missing!r}")
    crop_json = crop_spec(crop)
    if crop_json == "detect":
        face_detector()  # fail now, not after scanning the files, if OpenCV is missing
    folder = find_celeba(data_dir)
    images_dir = folder / IMAGE_FOLDER
    if not images_dir.is_dir():
        raise DataError(f"{folder}: no {IMAGE_FOLDER}/ folder of images (unzip img_align_celeba.zip here)")
    table = read_attributes(find_list(folder, ATTRIBUTE_FILE, required=True))
    partition_path = find_list(folder, PARTITION_FILE, required=False) if split != "random" else None
    partition = read_partition(partition_path) if partition_path is not None else None

    on_disk = image_sizes(images_dir)
    keep = np.fromiter((name in on_disk for name in table.files), dtype=bool, count=len(table.files))
    n_missing = int((~keep).sum())
    if not keep.any():
        raise DataError(
            f"{images_dir}: none of the {len(table.files)} images named in {table.path.name} is there "
            f"(first: {table.files[0]}); unzip img_align_celeba.zip into it"
        )
    if n_missing:
        first = table.files[int(np.flatnonzero(~keep)[0])]
        if on_missing == "error":
            raise DataError(f"{images_dir / first}: image file is missing ({n_missing} of the {len(table.files)} images named in {table.path.name} are)")
        warnings.warn(
            f"celeba: {n_missing:,} of {len(table.files):,} images named in {table.path.name} are not in {images_dir} "
            f"(first missing: {first}); using the {int(keep.sum()):,} rows that have an image",
            CelebAWarning, stacklevel=2,
        )
    files = [name for name, k in zip(table.files, keep) if k]
    values = table.values[keep]

    cache = image_cache(folder, files, [on_disk[f] for f in files], crop_json, size, cache_dir, workers, progress)
    if not cache.found.all():
        n_lost = int((~cache.found).sum())
        if not cache.found.any():
            raise DataError(f"{images_dir}: the face detector found no face in any of the {len(files)} images")
        warnings.warn(f"celeba: no face detected in {n_lost:,} of {len(files):,} images; they are left out",
                      CelebAWarning, stacklevel=2)
    usable = np.flatnonzero(cache.found)
    train_idx, test_idx, split_key = split_rows(
        len(usable), [files[i] for i in usable], partition, split, split_seed, test_fraction, folder)
    train_rows, test_rows = usable[train_idx], usable[test_idx]
    standardization = cache.stats(split_key, train_rows)

    n_bytes = 4 * (len(train_rows) + len(test_rows)) * 3 * size * size
    if in_memory is None:
        in_memory = n_bytes <= IN_MEMORY_BYTES

    def images(rows: np.ndarray) -> Tensor | StandardizedImages:
        lazy = StandardizedImages(cache.pixels, rows, standardization)
        return lazy.materialize() if in_memory else lazy

    def attribute_tensor(rows: np.ndarray) -> Tensor:
        v = torch.from_numpy(values[rows].astype(np.float32))
        return (v + 1) / 2 if attributes == "bernoulli" else v

    modalities = celeba_modalities(size, attributes)
    options = {"crop": crop_json, "size": size, "attributes": attributes, "split": split_key.split("-")[0],
               "split_seed": split_seed, "test_fraction": test_fraction}
    logger.info("celeba from %s: %d train, %d test images (%s split), cache %s",
                folder, len(train_rows), len(test_rows), split_key, cache.path)
    return PairedData(
        name="celeba",
        modalities=modalities,
        classes=(),
        train={"image": images(train_rows), "attributes": attribute_tensor(train_rows)},
        test={"image": images(test_rows), "attributes": attribute_tensor(test_rows)},
        feature_names={"attributes": table.names},
        standardization={"image": standardization},
        options=options,
    )


def celeba_modalities(size: int = IMAGE_SIZE, attributes: AttributeLikelihood = "bernoulli") -> tuple[Modality, Modality]:
    """``image`` (3, size, size): Gaussian, fixed scale 1 on standardised pixels (conv networks when
    size is a multiple of 16); ``attributes`` (40,): Bernoulli, or tanh-mean Gaussian of scale 1."""
    image = Modality("image", (3, size, size), "gaussian", scale=1.0)
    if attributes == "bernoulli":
        attrs = Modality("attributes", (len(ATTRIBUTE_NAMES),), "bernoulli")
    else:
        attrs = Modality("attributes", (len(ATTRIBUTE_NAMES),), "gaussian", scale=1.0, mean_activation="tanh")
    return image, attrs


def paper_model_config(kind: str, modalities: Sequence[Modality], alpha: float = 0.1) -> ModelConfig:
    """The paper's CelebA architecture (SETUP.md, the authors' code): z 128; image: convolutions
    64-128-256-256, 1024 dense units after them in q(z|x), mirrored transposed convolutions;
    attributes: 512 -> 512 branch in the joint encoder, 512-unit MLPs elsewhere; joint layer 1024."""
    mods = tuple(m if m.network == "conv" else dataclasses.replace(m, hidden_dim=512, branch_layers=2) for m in modalities)
    return ModelConfig(kind, mods, latent_dim=128, hidden_dim=1024, alpha=alpha if kind == "jmvae-kl" else 0.0)


def paper_train_config(**overrides: Any) -> TrainConfig:
    """The paper's CelebA optimisation: Adam lr 1e-4, beta1 0.5, 100 epochs, 20 epochs of KL warm-up."""
    settings: dict[str, Any] = {"epochs": 100, "lr": 1e-4, "betas": (0.5, 0.999), "warmup_epochs": 20.0}
    settings.update(overrides)
    return TrainConfig(**settings)


def attribute_vector(names: Sequence[str], on: Sequence[str], modality: Modality) -> Tensor:
    """A (1, 40) attribute batch with the attributes in ``on`` set and the others unset
    (1/0 for Bernoulli attributes, 1/-1 for tanh-Gaussian ones); for generation from attributes."""
    unknown = [a for a in on if a not in names]
    if unknown:
        raise JMVAEError(f"unknown attribute(s) {', '.join(unknown)}; CelebA's are {', '.join(names)}")
    off = 0.0 if modality.likelihood == "bernoulli" else -1.0
    return torch.tensor([[1.0 if name in on else off for name in names]])
