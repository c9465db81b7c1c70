"""jmvae: joint multimodal variational autoencoders (Suzuki, Nakayama & Matsuo 2016) in PyTorch.

    from jmvae import Modality, ModelConfig, TrainConfig, EvalConfig, load_dataset, train, evaluate

The models (JMVAE-zero, JMVAE-kl and the baselines VAE, CVAE, CMMA) share one interface
(``jmvae.models.MultimodalModel``), one training objective module and one importance-weighted
estimator (``jmvae.estimators``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from jmvae.config import AdversarialConfig, EvalConfig, Modality, ModelConfig, TrainConfig
from jmvae.data import PairedData, load_dataset
from jmvae.errors import CheckpointError, DataError, JMVAEError
from jmvae.estimators import iw_log_likelihood, iw_log_likelihoods, log_marginal_by_prior
from jmvae.evaluation import evaluate
from jmvae.generation import class_probabilities, generate
from jmvae.models import CMMA, CVAE, JMVAE, VAE, MultimodalModel, build_model
from jmvae.runs import Run, load_run
from jmvae.training import train

__all__ = [
    "AdversarialConfig", "CMMA", "CVAE", "CheckpointError", "DataError", "EvalConfig", "JMVAE", "JMVAEError", "Modality",
    "ModelConfig", "MultimodalModel", "PairedData", "TrainConfig", "VAE", "build_model", "class_probabilities", "evaluate",
    "generate", "iw_log_likelihood", "iw_log_likelihoods", "load_dataset", "load_run", "Run",
    "log_marginal_by_prior", "train",
]
