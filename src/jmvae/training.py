"""The training loop: Adam on the model's negative bound, with warm-up, clipping and checkpoints.

Every source of randomness is owned here and saved in checkpoints, so a run resumed from any
checkpoint ends with the same parameters as the run that was never interrupted:

- the epoch's shuffling comes from a generator seeded with (seed, epoch);
- stochastic binarisation draws from a data generator on the device;
- reparameterisation noise draws from torch's global generator, seeded once from ``seed``.

Data stay on the device as tensors; a batch is an index into them, binarised on the device.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from jmvae import checkpoint as ckpt
from jmvae import distributed
from jmvae.adversarial import gan_losses
from jmvae.config import ModelConfig, TrainConfig
from jmvae.data import PairedData, binarize
from jmvae.data.checks import check_paired
from jmvae.errors import CheckpointError, JMVAEError
from jmvae.likelihoods import labels_already_checked
from jmvae.models import MultimodalModel, build_model
from jmvae.objectives import kl_weight

logger = logging.getLogger(__name__)


class DivergenceError(JMVAEError):
    """The loss or a gradient became NaN or infinite."""


DIVERGENCE_CHECK_EVERY = 50
"""Steps between reads of the divergence flag on the host (where the flag stays on the device)."""


class DivergenceWatch:
    """Notes the first step whose loss or gradient norm is not finite, without waiting on the device.

    Reading ``isfinite(loss)`` on the host every step makes a GPU finish the step before the next
    one can be queued. With fused Adam the test stays on the device instead: the flag goes to the
    optimizer as ``found_inf`` (the fused kernel then leaves the parameters and Adam's moments
    untouched for that step, as with AMP's gradient scaler), the first bad step's number, loss and
    gradient norm are kept in device tensors, and the host reads them every
    ``DIVERGENCE_CHECK_EVERY`` steps and before any metrics or checkpoint are written. Training
    still stops with ``DivergenceError`` naming the first bad step, and nothing from after it is
    saved. Without fused Adam (or across processes, whose flags are exchanged every step anyway)
    ``deferred`` is False and each step is checked at once.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device, deferred: bool) -> None:
        self.optimizer = optimizer
        self.deferred = deferred and all(g.get("fused") for g in optimizer.param_groups)
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.values = torch.zeros(2, device=device)  # loss and gradient norm at that step

    def note(self, step: int, objective: torch.Tensor, grad_norm: torch.Tensor) -> bool:
        """Deferred: record this step's finiteness on the device and return False. Otherwise:
        return whether this step is bad (the caller then ``mark``s it, maybe after asking the
        other ranks)."""
        bad = ~(torch.isfinite(objective.detach()) & torch.isfinite(grad_norm))
        if not self.deferred:
            return bool(bad)
        self.optimizer.found_inf = bad.float()  # type: ignore[attr-defined]
        first = bad & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.values = torch.where(first, self.observed(objective, grad_norm), self.values)
        return False

    def mark(self, step: int, objective: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Record ``step`` as the bad one (this process's loss and gradient norm)."""
        self.first_step.fill_(step)
        self.values.copy_(self.observed(objective, grad_norm))

    @staticmethod
    def observed(objective: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
        return torch.stack([objective.detach().float(), grad_norm.float()])

    def error(self, steps_per_epoch: int) -> DivergenceError | None:
        """The error to raise if a step has diverged (reads the device); steps and epochs are
        counted from 1, as the progress bar and the summary count them."""
        step = int(self.first_step)
        if step < 0:
            return None
        loss, norm = self.values.tolist()
        return DivergenceError(
            f"training diverged at step {step + 1} (epoch {step // steps_per_epoch + 1}): loss {loss:.4g}, "
            f"gradient norm {norm:.4g}; try a lower --lr, a KL --warmup or gradient clipping."
        )


@dataclass
class TrainResult:
    model: MultimodalModel
    step: int
    epoch: int
    seconds: float
    interrupted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise JMVAEError("--device cuda was asked for, but no CUDA GPU is available; use --device cpu")
    return device


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def model_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the bound trains: all but a GAN variant's discriminator."""
    critic = getattr(model, "discriminator", None)
    excluded = {id(p) for p in critic.parameters()} if critic is not None else set()
    return [p for p in model.parameters() if id(p) not in excluded]


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """Adam with its fused kernel (one pass over all parameters) where torch has one for the
    device: on this project's 2-core CPU it makes a JMVAE-kl step 1.6x faster than the default
    multi-tensor Adam (benchmarks/), with the same update rule. A GAN variant's discriminator
    is a second parameter group with the same settings (Adam's update is per parameter, so this
    is the same as a second optimizer)."""
    groups: list[dict[str, Any]] = [{"params": model_parameters(model)}]
    if getattr(model, "discriminator", None) is not None:
        groups.append({"params": list(model.discriminator.parameters())})
    try:
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, eps=config.eps, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device or torch version
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def gradient_norm(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """The 2-norm of all the parameters' gradients taken together (0 when none has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads, foreach=True) if grads else torch.zeros(())


def clip_gradients(optimizer: torch.optim.Optimizer, parameters: list[torch.nn.Parameter],
                   max_norm: float | None) -> torch.Tensor:
    """Return the total 2-norm of the gradients of ``parameters`` and clip them to ``max_norm``.

    The rule is ``torch.nn.utils.clip_grad_norm_``'s: every gradient is multiplied by
    min(1, max_norm / (norm + 1e-6)). When the optimizer is fused Adam over exactly these
    parameters, the factor is handed to it as its ``grad_scale`` (the fused kernel divides each
    gradient by it in the same pass that updates the parameters) instead of a separate pass over
    all 3M gradients: the same update, +7% JMVAE-kl steps per second (benchmarks/ablations.py clip-adam).
    Otherwise (a second, unclipped group such as a GAN's discriminator; a non-fused Adam) the
    gradients are scaled in place. ``max_norm`` None or 0: no clipping, the norm is still returned
    (the divergence check reads it).
    """
    norm = gradient_norm(parameters)
    fused_over_these = (len(optimizer.param_groups) == 1 and optimizer.param_groups[0].get("fused")
                        and len(optimizer.param_groups[0]["params"]) == len(parameters))
    if fused_over_these:
        optimizer.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0) if max_norm else None  # type: ignore[attr-defined]
    elif max_norm:
        torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, norm, foreach=True)
    return norm


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state but keep this optimizer's implementation flags (fused,
    foreach): they are a property of the machine, not of the run."""
    flags = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, saved in zip(optimizer.param_groups, flags):
        group.update(saved)


def compiled_loss(model: MultimodalModel) -> Callable[..., Any]:
    """``model.loss`` through ``torch.compile`` (inductor's default mode). Every model's loss
    traces as one graph (Gaussian KLs in closed form, label ranges checked before the loop). The
    KL weights are Python floats that dynamo keeps symbolic, so a KL warm-up does not recompile.
    A failure to compile (no C++ compiler for inductor's CPU kernels, say) becomes a one-line
    ``JMVAEError``."""
    compiled = torch.compile(model.loss)

    def loss(*args: Any) -> Any:
        try:
            return compiled(*args)
        except Exception as exc:  # dynamo and inductor raise many types; none is ours to handle
            if not type(exc).__module__.startswith("torch._"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JMVAEError(f"--compile: torch.compile failed ({first[:200]}); train without --compile") from exc

    return loss


class _StopFlag:
    """Set by SIGINT/SIGTERM so the loop can checkpoint and stop between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread
                pass
        return self

    def handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def check_run_folder(run_path: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a folder that already holds a run (its config.json) unless ``resume`` or
    ``overwrite`` says what to do with it: training into it would append a second run to its
    metrics (epochs 1..N, then 1..N again) and replace its checkpoints."""
    if resume and overwrite:
        raise JMVAEError("resume and overwrite contradict each other; choose one")
    if (run_path / "config.json").exists() and not (resume or overwrite):
        raise CheckpointError(f"{run_path} already holds a run; pass resume=True to continue it, overwrite=True to "
                              "replace it, or another run_dir")


def train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data: PairedData,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    data_info: dict[str, Any] | None = None,
    on_step: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train a model from ``model_config`` on ``data.train``; checkpoint into ``run_dir`` each epoch.

    ``resume=True`` continues from the run folder's latest checkpoint (its configs must match);
    ``overwrite=True`` replaces the run there. A folder that holds a run is refused without either
    (``check_run_folder``), as ``jmvae train`` refuses it. A new run that fails before its first
    checkpoint (diverged at step 1, say) takes back the files it wrote, so a retry in the same
    folder is not refused and nothing that was saved is lost.
    ``on_step(step)`` is called after every optimisation step (``jmvae bench`` times with it).
    """
    run_path = Path(run_dir) if run_dir is not None else None
    if run_path is None:
        return _train(model_config, train_config, data, None, False, False, progress, data_info, on_step)
    check_run_folder(run_path, resume, overwrite)
    created = not run_path.exists()
    fresh = not resume or ckpt.latest_checkpoint(run_path) is None
    try:
        return _train(model_config, train_config, data, run_path, resume, overwrite, progress, data_info, on_step)
    except BaseException:
        if fresh and distributed.current().is_main and ckpt.latest_checkpoint(run_path) is None:
            ckpt.remove_unstarted_run(run_path, created)
        raise


def _train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data: PairedData,
    run_path: Path | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
    data_info: dict[str, Any] | None,
    on_step: Callable[[int], None] | None,
) -> TrainResult:
    """``train`` once its run folder is checked."""
    check_paired(model_config.modalities, data.train, f"{data.name} training data")
    world, device_name = distributed.setup(train_config.device)
    device = resolve_device(device_name)
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    torch.manual_seed(train_config.seed)
    model = build_model(model_config).to(device)
    optimizer = make_optimizer(model, train_config)
    data_generator = torch.Generator(device=device).manual_seed(train_config.seed + 1)
    noise_generator = torch.Generator(device=device).manual_seed(train_config.seed + 2)
    step, epoch, start_index, elapsed = 0, 0, 0, 0.0
    history: list[dict[str, Any]] = []

    if run_path is not None:
        if overwrite:
            distributed.barrier(world)  # every rank has checked the folder before rank 0 clears it
            if world.is_main:
                ckpt.clear_run(run_path)
            distributed.barrier(world)
        run = ckpt.RunConfig(model_config, train_config, data_info or {"name": data.name})
        folder = ckpt.latest_checkpoint(run_path) if resume else None
        if folder is not None:
            saved = ckpt.load_run_config(run_path)
            if saved.model != model_config or saved.data != run.data:
                raise CheckpointError(
                    f"{run_path}: the run there has another model or data configuration; "
                    "use another --out, or --overwrite to replace it"
                )
            weights, training_state, meta = ckpt.load_checkpoint(folder)
            ckpt.load_weights(model, weights, folder)
            load_optimizer_state(optimizer, ckpt.unflatten_optimizer(training_state, meta["optimizer"]))
            torch.set_rng_state(training_state["rng/torch"])
            data_generator.set_state(training_state["rng/data"])
            if "rng/noise" in training_state:  # absent from checkpoints of jmvae before data parallelism
                noise_generator.set_state(training_state["rng/noise"])
            if device.type == "cuda" and "rng/cuda" in training_state:
                torch.cuda.set_rng_state(training_state["rng/cuda"])
            step, epoch, start_index = meta["step"], meta["epoch"], meta["index_in_epoch"]
            elapsed = meta.get("seconds", 0.0)
            # a run killed between logging an epoch and checkpointing it logged that epoch twice
            history = [r for r in read_history(run_path) if r["step"] <= step]
            if world.is_main:
                ckpt.write_atomic(run_path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history).encode())
            logger.info("resuming %s at epoch %d, step %d", run_path, epoch, step)
        if world.is_main:
            ckpt.save_run_config(run_path, run)
            if folder is None:  # a new run logs from epoch 1 (a run stopped before its first checkpoint left none)
                (run_path / "metrics.jsonl").unlink(missing_ok=True)
            ckpt.check_free_space(run_path, model)
        distributed.barrier(world)

    images = [m.name for m in model_config.modalities if m.likelihood == "bernoulli"]
    train_data = {name: data.train[name].to(device) for name in model_config.names}
    n = next(iter(train_data.values())).shape[0]
    batch_size = train_config.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = train_config.epochs * steps_per_epoch
    if train_config.max_steps is not None:
        total_steps = min(total_steps, train_config.max_steps)

    def save(index_in_epoch: int, at_epoch: int) -> None:
        if run_path is None or not world.is_main:
            return
        rng = {"torch": torch.get_rng_state(), "data": data_generator.get_state(), "noise": noise_generator.get_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state()
        state = {"step": step, "epoch": at_epoch, "index_in_epoch": index_in_epoch, "seconds": elapsed}
        ckpt.save_checkpoint(run_path, model, optimizer, state, rng)

    def what_is_saved() -> str:
        """For the divergence message: the run folder's state once ``train`` has stopped."""
        if run_path is None:
            return ""
        if ckpt.latest_checkpoint(run_path) is not None:
            return "The last good checkpoint is kept."
        return f"No checkpoint had been written yet: nothing of this run is kept, and {run_path} can take a retry."

    model.train()
    bar = tqdm(total=total_steps, initial=step, disable=not (progress and world.is_main), unit="step", dynamic_ncols=True)
    parameters = list(model.parameters())
    clipped = model_parameters(model)  # the discriminator's gradients are not clipped
    adversarial = model.discriminator is not None
    latent_dim = model_config.latent_dim
    # bf16: autocast on every device. oneDNN's float32 products with bfloat16 internals
    # (set_float32_matmul_precision("medium")) were faster on a Xeon with AMX (1.18-1.23x a float32
    # step against autocast's 1.11-1.15x) but slower on an AMD EPYC (1.08x against 1.52x); autocast is
    # also what GPUs use. (100-epoch runs of either land at the levels float32 runs land at, set by
    # the number of active latent units: docs/benchmarks.md, "Does bf16 training give the same model?".)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=train_config.precision == "bf16")
    loss_fn = compiled_loss(model) if train_config.compile else model.loss
    interrupted = False
    watch = DivergenceWatch(optimizer, device, deferred=not world.enabled)

    def stop_if_diverged() -> None:
        error = watch.error(steps_per_epoch)
        if error is not None:
            bar.close()
            raise DivergenceError(f"{error} {what_is_saved()}".strip())

    with _StopFlag() as stop, labels_already_checked():  # check_paired checked every label above
        while step < total_steps:
            started = time.perf_counter()
            order = epoch_permutation(n, train_config.seed, epoch, device)
            bar.set_postfix(epoch=epoch + 1)  # counted from 1, as the summary and metrics.jsonl count
            sums: dict[str, torch.Tensor] = {}
            count = 0
            index = start_index
            while index < steps_per_epoch and step < total_steps:
                idx = order[index * batch_size : (index + 1) * batch_size]
                batch = {name: value[idx] for name, value in train_data.items()}
                real_images = batch[model_config.names[0]] if adversarial else None  # D sees intensities, not bits
                for name in images:
                    batch[name] = binarize(batch[name], data_generator)
                noise = torch.randn((len(idx), latent_dim), generator=noise_generator, device=device)
                prior_noise = torch.randn((len(idx), latent_dim), generator=noise_generator, device=device) if adversarial else None
                share = 1.0
                if world.enabled:  # this rank's rows of the global draws; see jmvae.distributed
                    rows = world.rows(len(idx))
                    batch = {name: value[rows] for name, value in batch.items()}
                    noise = noise[rows]
                    prior_noise = prior_noise[rows] if adversarial else None
                    real_images = real_images[rows] if adversarial else None
                    share = (rows.stop - rows.start) * world.size / len(idx)
                weight = kl_weight(step, steps_per_epoch, train_config.warmup_epochs)
                with autocast:
                    terms = loss_fn(batch, weight, weight if train_config.warmup_all_kl else 1.0, noise)
                    objective = terms.total
                    if adversarial:
                        generator_loss, disc_loss, d_real = gan_losses(model, batch, terms.z, prior_noise,
                                                                       train_config.gan_real_label, real_images)
                        terms.adversarial = {"generator": generator_loss, "discriminator": disc_loss, "d_real": d_real}
                        objective = objective + model_config.gan_weight * generator_loss + disc_loss
                optimizer.zero_grad(set_to_none=True)
                (objective * share if world.enabled else objective).backward()
                distributed.average_gradients(parameters, world)
                grad_norm = clip_gradients(optimizer, clipped, train_config.clip_grad_norm)
                if adversarial:  # not clipped, but checked: its norm joins the divergence test
                    grad_norm = grad_norm + gradient_norm(list(model.discriminator.parameters()))
                bad = watch.note(step, objective, grad_norm)
                if world.enabled:
                    bad, stopping = distributed.any_rank([bad, stop.signal is not None], world, device)
                    if stopping and stop.signal is None:
                        stop.signal = signal.SIGTERM  # another rank was signalled
                if bad:
                    watch.mark(step, objective, grad_norm)
                    stop_if_diverged()
                optimizer.step()
                step += 1
                index += 1
                count += 1
                for key, value in terms.named().items():
                    sums[key] = sums.get(key, 0.0) + value.detach()
                bar.update(1)
                if on_step is not None:
                    on_step(step)
                if step % DIVERGENCE_CHECK_EVERY == 0:
                    stop_if_diverged()
                    bar.set_postfix(epoch=epoch + 1, loss=f"{float(terms.total.detach()):.2f}")
                if stop.signal is not None:
                    break
            elapsed += time.perf_counter() - started
            stop_if_diverged()  # before this epoch's metrics and checkpoint are written
            finished_epoch = index >= steps_per_epoch
            if count:
                if world.enabled:
                    sums = {k: v / world.size for k, v in distributed.sum_across(sums, world).items()}
                record = {"epoch": epoch + 1 if finished_epoch else epoch, "step": step, "kl_weight": weight,
                          "seconds": round(elapsed, 3), **{k: float(v) / count for k, v in sums.items()}}
                if finished_epoch:
                    history.append(record)
                    if run_path is not None and world.is_main:
                        with open(run_path / "metrics.jsonl", "a") as f:
                            f.write(json.dumps(record) + "\n")
            if finished_epoch:
                epoch, start_index = epoch + 1, 0
            else:
                start_index = index
            save(start_index, epoch)
            if stop.signal is not None:
                interrupted = True
                logger.warning("stopped by signal %d at step %d; checkpoint saved", stop.signal, step)
                break
    bar.close()
    model.eval()
    return TrainResult(model, step, epoch, elapsed, interrupted, history)


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_model(run_dir: str | Path, device: str = "cpu") -> tuple[MultimodalModel, ckpt.RunConfig, dict[str, Any]]:
    """The trained model of a run folder (latest checkpoint), in eval mode, with its config and state."""
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise CheckpointError(f"{run_path} is not a folder; give the --out folder of a jmvae train run")
    run = ckpt.load_run_config(run_path)
    folder = ckpt.latest_checkpoint(run_path)
    if folder is None:
        raise CheckpointError(f"{run_path} has no checkpoint yet; train it first (jmvae train ... --out {run_path})")
    weights, _, meta = ckpt.load_checkpoint(folder)
    model = build_model(run.model)
    ckpt.load_weights(model, weights, folder)
    model.to(resolve_device(device)).eval()
    return model, run, meta
