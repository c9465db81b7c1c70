"""The decoded CelebA images, kept once on disk as a uint8 (N, 3, S, S) ``.npy`` and memory-mapped.

Why: decoding 200,000 JPEGs takes minutes; epochs then read only the rows of each batch. One
slot per (CelebA folder, crop, size); its metadata holds a SHA-256 of the image names, byte sizes
and settings, so a changed image set is rebuilt in place. Files are written through temporary
files renamed into place, the metadata last, so an interrupted build never looks finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jmvae.data.celeba.decode import RESAMPLING, decode_chunk
from jmvae.data.celeba.faces import FaceDetector
from jmvae.data.celeba.layout import IMAGE_FOLDER
from jmvae.data.transforms import Standardization, channel_stats
from jmvae.errors import DataError
from jmvae.files import write_atomic

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


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
            write_atomic(self.meta_path, json.dumps(self.meta, indent=1).encode())
        except OSError as exc:  # a read-only cache still works; the stats are recomputed next time
            logger.info("could not store the CelebA pixel statistics in %s (%s)", self.meta_path, exc)
        return standardization


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
                workers: int | None, progress: bool, detector: FaceDetector | None = None) -> ImageCache:
    """Decode every image into ``path`` (a .npy of uint8 (N, 3, size, size)), written through
    temporary files renamed into place; the metadata, written last, marks it complete. One
    process uses ``detector`` for crop='detect'; worker processes make their own."""
    from jmvae.progress import progress_bar

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
        bar = progress_bar(total=n, enabled=progress and n >= 5000, unit="image", desc="CelebA cache")
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
                block, ok = decode_chunk(job, crop, size, detector)
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
            write_atomic(path.with_name(path.stem + "-found.npy"), buffer.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {"version": CACHE_VERSION, "key": key, "n": n, "size": size, "crop": crop, "resampling": RESAMPLING,
            "detect": crop == "detect", "faces_found": int(found.sum()), "stats": {}}
    write_atomic(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    opened = open_cache(path, key, n, size)
    assert opened is not None
    return opened


def image_cache(folder: Path, files: Sequence[str], sizes: Sequence[int], crop: str | list[int], size: int,
                cache_dir: str | os.PathLike | None, workers: int | None, progress: bool,
                detector: FaceDetector | None = None) -> ImageCache:
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
        cache = build_cache(path, key, [folder / IMAGE_FOLDER / f for f in files], crop, size, workers, progress, detector)
    return cache
