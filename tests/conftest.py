"""Shared fixtures: small real data (scikit-learn's 8x8 digits), MNIST when present (helpers such
as tiny configs are in ``helpers.py``, imported by the tests that use them).

MNIST tests need the IDX files. With ``JMVAE_DATA`` set (as ``.ci/run`` sets it) they must be
there and the tests fail otherwise; with it unset the MNIST tests are skipped with a note.

The tests run in one process per core (pytest-xdist, ``-n auto`` in pyproject.toml; ``-n 0`` runs
them in this process), each process a test file at a time and on its share of the cores' torch
threads: torch's default of one thread per core in every process would put two spinning threads on
each core. The command lines the tests start pick their threads from the cores left free, as a
user's do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from jmvae import load_dataset
from jmvae.cores import usable_cores
from jmvae.data import PairedData


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one test process per core this process may use (its affinity mask)."""
    return usable_cores()


def pytest_configure(config: pytest.Config) -> None:
    """In each of N test processes, torch uses its 1/N share of the cores (at least one thread)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, usable_cores() // workers))


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
