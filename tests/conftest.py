"""Shared fixtures: small real data (scikit-learn's 8x8 digits), tiny configs, MNIST when present.

MNIST tests need the IDX files. With ``JMVAE_DATA`` set (as ``.ci/run`` sets it) they must be
there and the tests fail otherwise; with it unset the MNIST tests are skipped with a note.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from jmvae import ModelConfig, TrainConfig, load_dataset
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


def tiny_config(data: PairedData, kind: str = "jmvae-kl", alpha: float = 0.1, latent: int = 4, hidden: int = 32) -> ModelConfig:
    alpha = alpha if kind == "jmvae-kl" else 0.0
    return ModelConfig(kind, data.modalities, latent_dim=latent, hidden_dim=hidden, alpha=alpha)


def tiny_train(**overrides) -> TrainConfig:
    settings = {"epochs": 1, "batch_size": 64, "seed": 0}
    settings.update(overrides)
    return TrainConfig(**settings)


def batch_of(data: PairedData, n: int, split: str = "test") -> dict[str, torch.Tensor]:
    source = data.test if split == "test" else data.train
    return {k: v[:n] for k, v in source.items()}
