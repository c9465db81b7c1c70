"""The data folder every loader reads from: ``data_dir``, else ``$JMVAE_DATA``, else ``~/.cache/jmvae``.

One rule for all data sets, so one setting points MNIST, Fashion-MNIST and CelebA at the same
place (``<data folder>/mnist/``, ``fashion_mnist/``, ``celeba/`` or ``celeba_partial/``).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$JMVAE_DATA``, else ``~/.cache/jmvae``."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("JMVAE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "jmvae"
