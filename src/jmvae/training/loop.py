"""The training loop: Adam on a step's objective, with KL warm-up, clipping and checkpoints.

    for each epoch, for each batch:
        inputs    = batches.take(order, index)         # binarised batch, its noise (batches.py)
        objective = step.objective(inputs)             # -bound (+ a GAN's game)     (step.py)
        backward; average across ranks; clip           # optim.py
        check divergence on the device; Adam step
    log the epoch's means; checkpoint                  # state.py

Data stay on the device as tensors; a batch is an index into them. What is random, and how a run
resumes bit for bit: ``batches.py`` and ``state.py``.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jmvae import checkpoint as ckpt
from jmvae import distributed
from jmvae.config import AdversarialConfig, ModelConfig, TrainConfig
from jmvae.data import DataInfo, PairedData
from jmvae.data.checks import check_paired
from jmvae.masks import modalities_and_masks
from jmvae.errors import CheckpointError, JMVAEError
from jmvae.models import MultimodalModel, build_model
from jmvae.objectives import kl_weight
from jmvae.training.batches import Batches
from jmvae.training.optim import DIVERGENCE_CHECK_EVERY, DivergenceError, DivergenceWatch, make_optimizer
from jmvae.training.signals import StopFlag
from jmvae.training.sinks import MetricsFile, Sink
from jmvae.training.state import Progress, RunFolder
from jmvae.training.step import ELBOStep, Step
from jmvae.precision import autocast_for
from jmvae.progress import progress_bar

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: MultimodalModel
    step: int
    epoch: int
    seconds: float
    interrupted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    trained_beside: dict[str, torch.nn.Module] = field(default_factory=dict)  # a GAN's discriminator


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JMVAEError("a CUDA device was asked for, but no CUDA GPU is available; use the CPU", ("device",))
    return device


def check_run_folder(run_path: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a folder that already holds a run (its config.json) unless ``resume`` or
    ``overwrite`` says what to do with it: training into it would append a second run to its
    metrics (epochs 1..N, then 1..N again) and replace its checkpoints."""
    if resume and overwrite:
        raise JMVAEError("resume and overwrite contradict each other; choose one")
    if (run_path / "config.json").exists() and not (resume or overwrite):
        raise CheckpointError(f"{run_path} already holds a run; pass resume=True to continue it, overwrite=True to "
                              "replace it, or another run_dir")


def make_step(model: MultimodalModel, adversarial: AdversarialConfig | None, compile: bool) -> Step:
    """The bound's step, or a GAN variant's (which builds its discriminator from the global seed)."""
    if adversarial is None:
        return ELBOStep(model, compile)
    from jmvae.adversarial import AdversarialStep  # the GAN variants' code loads only for them

    return AdversarialStep(model, adversarial, compile)


def train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data: PairedData,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    data_info: DataInfo | None = None,
    on_step: Callable[[int], None] | None = None,
    overwrite: bool = False,
    adversarial: AdversarialConfig | None = None,
    sinks: Sequence[Sink] = (),
) -> TrainResult:
    """Train a model from ``model_config`` on ``data.train``; checkpoint into ``run_dir`` each epoch.

    ``adversarial``: train the GAN variant of the model (``jmvae.adversarial``). ``resume=True``
    continues from the run folder's latest checkpoint (its configs must match; a folder with no
    checkpoint yet starts the run); ``overwrite=True`` replaces the run there. A folder that holds a
    run is refused without either (``check_run_folder``), as ``jmvae train`` refuses it. A new run
    that fails before its first checkpoint (diverged at step 1, say) takes back the files it wrote,
    so a retry in the same folder is not refused and nothing that was saved is lost.
    ``on_step(step)`` is called after every optimisation step (``jmvae bench`` times with it).
    ``sinks`` also receive each epoch's record, beside ``metrics.jsonl`` (``training.sinks``: a
    ``TensorBoardSink``, say), on the main rank; they are closed when training stops.
    """
    run_path = Path(run_dir) if run_dir is not None else None
    run = ckpt.RunConfig(model_config, train_config, data_info or DataInfo(data.name), adversarial)
    if run_path is None:
        return Training(run, data, None, progress, on_step, sinks).run(False, False)
    check_run_folder(run_path, resume, overwrite)
    created = not run_path.exists()
    fresh = not resume or ckpt.latest_checkpoint(run_path) is None
    try:
        return Training(run, data, run_path, progress, on_step, sinks).run(resume, overwrite)
    except BaseException:
        if fresh and distributed.current().is_main and ckpt.latest_checkpoint(run_path) is None:
            ckpt.remove_unstarted_run(run_path, created)
        raise


class Training:
    """One training run: its model, step, optimiser, batches and folder, and the loop over them."""

    def __init__(self, run: ckpt.RunConfig, data: PairedData, run_path: Path | None, progress: bool,
                 on_step: Callable[[int], None] | None, sinks: Sequence[Sink] = ()) -> None:
        model_config, config = run.model, run.train
        check_paired(model_config.modalities, data.train, f"{data.name} training data")
        self.world, device_name = distributed.setup(config.device)
        self.device = resolve_device(device_name)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.run_config, self.config, self.on_step, self.show_progress = run, config, on_step, progress
        self.model = build_model(model_config)
        self.step = make_step(self.model, run.adversarial, config.compile)
        for module in (self.model, *self.step.modules().values()):
            module.to(self.device)
        self.optimizer = make_optimizer(self.step.parameter_groups(), config)
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        train = modalities_and_masks(data.train, model_config.names)  # with the masks of partially paired data
        self.batches = Batches(train, data.binarized_modalities(model_config.names), config.batch_size, config.seed,
                               model_config.latent_dim, self.step.noise_draws, self.device, self.world)
        self.folder = RunFolder(run_path, self.world, self.model, self.step, self.optimizer, self.batches, self.device)
        own: list[Sink] = [MetricsFile(run_path / "metrics.jsonl")] if run_path is not None else []
        self.sinks = [*own, *sinks] if self.world.is_main else []
        # bf16: autocast on every device (docs/benchmarks.md, "Does bf16 training give the same model?")
        self.autocast = autocast_for(self.device, config.precision)
        self.watch = DivergenceWatch(self.optimizer, self.device, deferred=not self.world.enabled)

    def run(self, resume: bool, overwrite: bool) -> TrainResult:
        progress = self.folder.start(self.run_config, resume, overwrite)
        steps_per_epoch = self.batches.steps_per_epoch
        total_steps = self.config.epochs * steps_per_epoch
        if self.config.max_steps is not None:
            total_steps = min(total_steps, self.config.max_steps)
        self.bar = progress_bar(total=total_steps, initial=progress.step, enabled=self.show_progress and self.world.is_main)
        interrupted = False
        self.model.train()
        try:
            for sink in self.sinks:
                sink.start(progress.step, progress.history)
            with StopFlag() as stop, self.model.labels_checked():  # check_paired checked every label
                while progress.step < total_steps and not interrupted:
                    self.epoch(progress, total_steps, stop)
                    interrupted = stop.signal is not None
        finally:
            for sink in self.sinks:
                sink.close()
        if interrupted:
            logger.warning("stopped by signal %d at step %d; checkpoint saved", stop.signal, progress.step)
        self.bar.close()
        self.model.eval()
        return TrainResult(self.model, progress.step, progress.epoch, progress.seconds, interrupted, progress.history,
                           self.step.modules())

    def epoch(self, progress: Progress, total_steps: int, stop: StopFlag) -> None:
        """The rest of the current epoch (to ``total_steps`` or a signal); log it if it finished; checkpoint."""
        started = time.perf_counter()
        order = self.batches.order(progress.epoch)
        self.bar.set_postfix(epoch=progress.epoch + 1)  # counted from 1, as the summary and metrics.jsonl count
        sums: dict[str, torch.Tensor] = {}
        count, weight = 0, 1.0
        while progress.index_in_epoch < self.batches.steps_per_epoch and progress.step < total_steps:
            weight = kl_weight(progress.step, self.batches.steps_per_epoch, self.config.warmup_epochs)
            metrics = self.optimisation_step(progress.step, order, progress.index_in_epoch, weight, stop)
            progress.step += 1
            progress.index_in_epoch += 1
            count += 1
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value.detach()
            self.bar.update(1)
            if self.on_step is not None:
                self.on_step(progress.step)
            if progress.step % DIVERGENCE_CHECK_EVERY == 0:
                self.stop_if_diverged()
                self.bar.set_postfix(epoch=progress.epoch + 1, loss=f"{float(metrics['loss'].detach()):.2f}")
            if stop.signal is not None:
                break
        progress.seconds += time.perf_counter() - started
        self.stop_if_diverged()  # before this epoch's metrics and checkpoint are written
        finished = progress.index_in_epoch >= self.batches.steps_per_epoch
        if count:
            if self.world.enabled:
                sums = {k: v / self.world.size for k, v in distributed.sum_across(sums, self.world).items()}
            record = {"epoch": progress.epoch + 1 if finished else progress.epoch, "step": progress.step,
                      "kl_weight": weight, "seconds": round(progress.seconds, 3),
                      **{k: float(v) / count for k, v in sums.items()}}
            if finished:
                progress.history.append(record)
                for sink in self.sinks:
                    sink.log(record)
        if finished:
            progress.epoch, progress.index_in_epoch = progress.epoch + 1, 0
        self.folder.save(progress)

    def optimisation_step(self, step: int, order: torch.Tensor, index: int, weight: float,
                          stop: StopFlag) -> dict[str, torch.Tensor]:
        """One batch: objective, backward, gradients averaged and clipped, divergence noted, Adam."""
        inputs, share = self.batches.take(order, index, weight, weight if self.config.warmup_all_kl else 1.0)
        with self.autocast:
            objective, metrics = self.step.objective(inputs)
        self.optimizer.zero_grad(set_to_none=True)
        (objective * share if self.world.enabled else objective).backward()
        distributed.average_gradients(self.parameters, self.world)
        grad_norm = self.step.clip(self.optimizer, self.config.clip_grad_norm)
        bad = self.watch.note(step, objective, grad_norm)
        if self.world.enabled:
            bad, stopping = distributed.any_rank([bad, stop.signal is not None], self.world, self.device)
            if stopping and stop.signal is None:
                stop.signal = signal.SIGTERM  # another rank was signalled
        if bad:
            self.watch.mark(step, objective, grad_norm)
            self.stop_if_diverged()
        self.optimizer.step()
        return metrics

    def stop_if_diverged(self) -> None:
        error = self.watch.error(self.batches.steps_per_epoch)
        if error is not None:
            self.bar.close()
            raise DivergenceError(f"{error} {self.folder.what_is_saved()}".strip(), error.settings)
