"""A training run's folder: starting or resuming it, checkpointing it, and what a step saves.

Every source of randomness is saved in a checkpoint (torch's global generator, the data and noise
generators, the CUDA generator on a GPU) with the model, whatever the step trains beside it, Adam's
state and the position in the epoch, so a run resumed from any checkpoint ends with the same
parameters as the run that was never interrupted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jmvae import checkpoint as ckpt
from jmvae import distributed
from jmvae.distributed import World
from jmvae.errors import CheckpointError
from jmvae.models import MultimodalModel
from jmvae.training.batches import Batches
from jmvae.training.step import Step

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far a run is: optimisation steps, finished epochs, batches into the current epoch,
    seconds of training, and the metrics of every finished epoch."""

    step: int = 0
    epoch: int = 0
    index_in_epoch: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch metrics of a run folder (``metrics.jsonl``), oldest first."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state but keep this optimizer's implementation flags (fused,
    foreach): they are a property of the machine, not of the run."""
    flags = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, saved in zip(optimizer.param_groups, flags):
        group.update(saved)


def trained_weights(model: MultimodalModel, step: Step) -> dict[str, torch.Tensor]:
    """The model's state dict, and each module the step trains under ``<name>.``: one weights file."""
    weights = dict(model.state_dict())
    for name, module in step.modules().items():
        weights.update({f"{name}.{key}": value for key, value in module.state_dict().items()})
    return weights


def split_weights(weights: dict[str, torch.Tensor], names: list[str] | tuple[str, ...]) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """A weights file's tensors as (the model's, {name: the tensors saved under ``<name>.``})."""
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
    own = {}
    for key, value in weights.items():
        name, _, rest = key.partition(".")
        if name in parts:
            parts[name][rest] = value
        else:
            own[key] = value
    return own, parts


def load_trained_weights(model: MultimodalModel, step: Step, weights: dict[str, torch.Tensor], where: Path) -> None:
    """``trained_weights`` back into the model and the step's modules (every tensor accounted for)."""
    modules = step.modules()
    own, parts = split_weights(weights, tuple(modules))
    for name, module in modules.items():
        ckpt.load_weights(module, parts[name], where)
    ckpt.load_weights(model, own, where)


def process_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's global generator (and the CUDA one on a GPU): what a single run saves of them."""
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state()
    return rng


class RunFolder:
    """The run folder of one training (or none: ``path`` None trains without saving).

    ``global_rng``: what a checkpoint saves as the state of torch's global generators (default:
    this process's now); a member of a group of runs saves its own (``jmvae.training.group``)."""

    def __init__(self, path: Path | None, world: World, model: MultimodalModel, step: Step,
                 optimizer: torch.optim.Optimizer, batches: Batches, device: torch.device,
                 global_rng: dict[str, torch.Tensor] | None = None) -> None:
        self.path, self.world, self.model, self.step = path, world, model, step
        self.optimizer, self.batches, self.device, self.global_rng = optimizer, batches, device, global_rng

    def start(self, run: ckpt.RunConfig, resume: bool, overwrite: bool, checkpoint: Path | None = None) -> Progress:
        """Clear the folder (``overwrite``), or resume its latest checkpoint (``resume``; a folder
        with a config but no checkpoint starts afresh; ``checkpoint``: this one instead of the
        latest); write the run's config. Returns where training starts."""
        if self.path is None:
            return Progress()
        if overwrite:
            distributed.barrier(self.world)  # every rank has checked the folder before rank 0 clears it
            if self.world.is_main:
                ckpt.clear_run(self.path)
            distributed.barrier(self.world)
        folder = (checkpoint or ckpt.latest_checkpoint(self.path)) if resume else None
        progress = self.resume(folder, run) if folder is not None else Progress()
        if self.world.is_main:
            ckpt.save_run_config(self.path, run)
            if folder is None:  # a new run logs from epoch 1 (a run stopped before its first checkpoint left none)
                (self.path / "metrics.jsonl").unlink(missing_ok=True)
            parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
            ckpt.check_free_space(self.path, parameters)
        distributed.barrier(self.world)
        return progress

    def resume(self, folder: Path, run: ckpt.RunConfig) -> Progress:
        saved = ckpt.load_run_config(self.path)
        if (saved.model, saved.data, saved.adversarial) != (run.model, run.data, run.adversarial):
            raise CheckpointError(f"{self.path}: the run there has another model or data configuration; "
                                  "train into another folder, or overwrite it")
        weights, training_state, meta = ckpt.load_checkpoint(folder)
        load_trained_weights(self.model, self.step, weights, folder)
        load_optimizer_state(self.optimizer, ckpt.unflatten_optimizer(training_state, meta["optimizer"]))
        torch.set_rng_state(training_state["rng/torch"])
        self.batches.load_rng_state(training_state)
        if self.device.type == "cuda" and "rng/cuda" in training_state:
            torch.cuda.set_rng_state(training_state["rng/cuda"])
        step = meta["step"]
        # a run killed between logging an epoch and checkpointing it logged that epoch twice
        history = [r for r in read_history(self.path) if r["step"] <= step]
        if self.world.is_main:
            ckpt.write_atomic(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history).encode())
        logger.info("resuming %s at epoch %d, step %d", self.path, meta["epoch"], step)
        return Progress(step, meta["epoch"], meta["index_in_epoch"], meta.get("seconds", 0.0), history)

    def save(self, progress: Progress, commit: bool = True) -> None:
        """Checkpoint the run at ``progress`` (``commit`` False: see ``ckpt.save_checkpoint``)."""
        if self.path is None or not self.world.is_main:
            return
        own = self.global_rng or process_rng_state(self.device)
        rng = {"torch": own["torch"], **self.batches.rng_state(), **{k: v for k, v in own.items() if k != "torch"}}
        state = {"step": progress.step, "epoch": progress.epoch, "index_in_epoch": progress.index_in_epoch,
                 "seconds": progress.seconds}
        ckpt.save_checkpoint(self.path, trained_weights(self.model, self.step), self.optimizer, state, rng, commit)

    def what_is_saved(self) -> str:
        """For the divergence message: the run folder's state once training has stopped."""
        if self.path is None:
            return ""
        if ckpt.latest_checkpoint(self.path) is not None:
            return "The last good checkpoint is kept."
        return f"No checkpoint had been written yet: nothing of this run is kept, and {self.path} can take a retry."
