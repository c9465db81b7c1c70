"""The paper's recipe per data set: the architecture and optimisation of Suzuki et al. (2016).

Why: one place for them, so the command line and the Python API give the same run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jmvae.config import Modality, ModelConfig, TrainConfig


def paper_model_config(kind: str, modalities: Sequence[Modality], alpha: float = 0.1) -> ModelConfig:
    """The paper's CelebA architecture (the authors' code): z 128; image: convolutions
    64-128-256-256, 1024 dense units after them in q(z|x), mirrored transposed convolutions;
    attributes: 512 -> 512 branch in the joint encoder, 512-unit MLPs elsewhere; joint layer 1024."""
    mods = tuple(m if m.network == "conv" else dataclasses.replace(m, hidden_dim=512, branch_layers=2) for m in modalities)
    return ModelConfig(kind, mods, latent_dim=128, hidden_dim=1024, alpha=alpha if kind == "jmvae-kl" else 0.0)


def paper_train_config(**overrides: Any) -> TrainConfig:
    """The paper's CelebA optimisation: Adam lr 1e-4, beta1 0.5, 100 epochs, 20 epochs of KL warm-up."""
    settings: dict[str, Any] = {"epochs": 100, "lr": 1e-4, "betas": (0.5, 0.999), "warmup_epochs": 20.0}
    settings.update(overrides)
    return TrainConfig(**settings)
