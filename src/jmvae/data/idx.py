"""The IDX file format of MNIST and Fashion-MNIST (LeCun et al.), read with checks.

Layout: big-endian magic (2051 images, 2049 labels), then the dimensions as uint32, then uint8
data. Files are gzip-compressed; their *decompressed* content is verified against known SHA-256
digests, since mirrors re-compress the same bytes differently.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from jmvae.errors import DataError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


def read_gzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}); delete it and download it again") from None


def parse_idx(content: bytes, path: Path, kind: str) -> np.ndarray:
    """Images (n, rows, cols) or labels (n,) as uint8 from the decompressed bytes of an IDX file."""
    magic = IMAGE_MAGIC if kind == "images" else LABEL_MAGIC
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{path}: too short for an IDX {kind} file ({len(content)} bytes)")
    found = struct.unpack(">I", content[:4])[0]
    if found != magic:
        raise DataError(f"{path}: IDX magic number {found}, expected {magic} for {kind}")
    dims = struct.unpack(f">{ndim}I", content[4:header])
    expected = header + int(np.prod(dims))
    if len(content) != expected:
        raise DataError(f"{path}: {len(content)} bytes, but its header {dims} promises {expected}")
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
