"""Helpers the tests share (imported as ``from helpers import ...``; fixtures stay in conftest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from jmvae import ModelConfig, TrainConfig
from jmvae.data import PairedData


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


def jmvae(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``jmvae ARGS`` in a fresh interpreter, output captured (the command line as a user runs it)."""
    return subprocess.run([sys.executable, "-m", "jmvae", *args], capture_output=True, text=True, cwd=cwd, timeout=600)
