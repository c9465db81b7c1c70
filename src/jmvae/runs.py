"""A trained run, loaded: its model, its configs and its checkpoint's state.

``load_run(folder)`` reads the latest checkpoint of a run folder (``checkpoint.py`` keeps the
tensors and the atomic I/O) into a ``Run``: what ``evaluate``, ``sample``, ``plot``, ``serve`` and
the experiments read. What a GAN variant trained beside the model (its discriminator) is checked
and left in the file: generating and evaluating need only the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jmvae import checkpoint as ckpt
from jmvae.errors import CheckpointError
from jmvae.models import MultimodalModel, build_model
from jmvae.training.loop import resolve_device
from jmvae.training.state import split_weights

TRAINED_BESIDE = ("discriminator",)
"""Prefixes of what a training step saves beside the model in its weights file."""


@dataclass
class Run:
    """A run folder's trained model (in eval mode), its configs, and its checkpoint's state
    (``step``, ``epoch``, ``seconds``, ...)."""

    path: Path
    model: MultimodalModel
    config: ckpt.RunConfig
    state: dict[str, Any]

    @property
    def display_name(self) -> str:
        return self.config.display_name


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    """The trained model of a run folder (its latest checkpoint), with its configs and state."""
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise CheckpointError(f"{run_path} is not a folder; give the folder a training run wrote")
    config = ckpt.load_run_config(run_path)
    folder = ckpt.latest_checkpoint(run_path)
    if folder is None:
        raise CheckpointError(f"{run_path} has no checkpoint yet; train it first")
    weights, _, meta = ckpt.load_checkpoint(folder)
    model = build_model(config.model)
    own, _ = split_weights(weights, TRAINED_BESIDE)
    ckpt.load_weights(model, own, folder)
    model.to(resolve_device(device)).eval()
    return Run(run_path, model, config, meta)

