"""The paper's models: JMVAE (zero, kl) and the baselines VAE, CVAE and CMMA."""

from __future__ import annotations

from jmvae.config import ModelConfig
from jmvae.models.base import Batch, MultimodalModel
from jmvae.models.cmma import CMMA
from jmvae.models.cvae import CVAE
from jmvae.models.jmvae import JMVAE
from jmvae.models.vae import VAE

MODEL_CLASSES: dict[str, type[MultimodalModel]] = {
    "vae": VAE,
    "cvae": CVAE,
    "cmma": CMMA,
    "jmvae-zero": JMVAE,
    "jmvae-kl": JMVAE,
}


def build_model(config: ModelConfig) -> MultimodalModel:
    """The model named by ``config.kind``, freshly initialised from torch's global generator."""
    return MODEL_CLASSES[config.kind](config)


__all__ = ["Batch", "CMMA", "CVAE", "JMVAE", "MODEL_CLASSES", "MultimodalModel", "VAE", "build_model"]
