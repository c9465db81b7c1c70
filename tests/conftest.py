"""Shared fixtures: small real data (scikit-learn's 8x8 digits), MNIST when present (helpers such
as tiny configs are in ``helpers.py``, imported by the tests that use them).

MNIST tests need the IDX files. With ``JMVAE_DATA`` set (as ``.ci/run`` sets it) they must be
there and the tests fail otherwise; with it unset the MNIST tests are skipped with a note.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from jmvae import load_dataset
from jmvae.data import PairedData


@pytest.fixture()
def one_thread():
    """Run a test on one torch thread (restored after it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> PairedData:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    root = os.environ.get("JMVAE_DATA")
    if not root:
        pytest.skip("MNIST tests need JMVAE_DATA (a folder with mnist/ and fashion_mnist/); .ci/run sets it")
    folder = Path(root)
    assert (folder / "mnist" / "train-images-idx3-ubyte.gz").is_file(), f"JMVAE_DATA={root} has no mnist/ IDX files"
    return folder
