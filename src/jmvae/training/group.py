"""A group of runs: M models of one architecture (one ModelConfig but for seed and alpha) trained
together in one process, one ordinary run folder each.

    for each epoch, for each batch:
        each member's batch and noise      = its own Batches.take     (its seed's streams)
        every member's terms               = one vmapped model.loss   (stack.py)
        backward; clip each member's gradients to its own norm; one fused Adam step
        a member whose loss or gradient norm is not finite leaves the group
    log each member's epoch means; checkpoint every member (a group commit)

What each member draws: its own ``Batches`` (the epoch order from (seed_i, epoch), binarisation
from a data generator seeded seed_i + 1, noise from one seeded seed_i + 2), exactly the draws of a
single run with seed_i; its initial weights are a single run's (torch seeded with seed_i, then
the model built). The training set is on the device once, shared by all members' ``Batches``.

Divergence: a member whose loss or gradient norm is not finite at a step is out of the group from
that step (its weights stay as they were before it, the others go on in a smaller stack); its run
folder keeps its last good checkpoint and gets ``divergence.json`` saying at which step, and the
group's record (``group.json``) names it. The flags are read on the host every step (M booleans;
one fused Adam cannot skip one member's update the way a single run's skips its whole step).

Checkpoints: at the end of every epoch (and on a signal) every member's checkpoint is written
without being made current, then ``group.json`` records the step (the commit), then each
member's ``latest`` is pointed at it and its older checkpoint removed. A resume reads the step in
``group.json``, so a kill anywhere between resumes every member from one step; each member folder
alone is an ordinary run folder (``load_run``, ``jmvae evaluate``; ``jmvae train --resume`` of
one member continues it as a single run).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jmvae import checkpoint as ckpt
from jmvae.config import ModelConfig, TrainConfig
from jmvae.data import DataInfo, PairedData
from jmvae.data.checks import check_paired
from jmvae.distributed import World
from jmvae.errors import CheckpointError, JMVAEError
from jmvae.models import MultimodalModel, build_model
from jmvae.objectives import kl_weight
from jmvae.progress import progress_bar
from jmvae.training.batches import Batches
from jmvae.training.loop import check_run_folder, resolve_device
from jmvae.training.sinks import MetricsFile
from jmvae.masks import modalities_and_masks
from jmvae.training.optim import DivergenceError, divergence_error
from jmvae.training.signals import StopFlag
from jmvae.training.stack import MemberOptimizer, Stack, StackedLoss
from jmvae.training.state import Progress, RunFolder, process_rng_state
from jmvae.training.step import ELBOStep
from jmvae.precision import autocast_for

logger = logging.getLogger(__name__)

GROUP_RECORD = "group.json"


def member_name(model_config: ModelConfig, seed: int) -> str:
    """A member's run folder under the group's: ``alpha0.1-seed1`` (JMVAE-kl) or ``seed1``."""
    return f"alpha{model_config.alpha:g}-seed{seed}" if model_config.kind == "jmvae-kl" else f"seed{seed}"


@dataclass
class Member:
    """One run of the group: its configs, model, streams, run folder and what became of it."""

    name: str
    run: ckpt.RunConfig
    model: MultimodalModel
    batches: Batches
    optimizer: MemberOptimizer
    folder: RunFolder
    history: list[dict[str, Any]] = field(default_factory=list)
    diverged: str | None = None  # what divergence.json says, once it has


@dataclass
class GroupResult:
    """The members (their models and histories; ``diverged`` says which stopped), where the group
    stopped, its seconds of training, and whether a signal stopped it."""

    members: list[Member]
    step: int
    epoch: int
    seconds: float
    interrupted: bool = False


def train_group(model_config: ModelConfig, train_config: TrainConfig, data: PairedData, out: str | Path,
                members: Sequence[tuple[float, int]], resume: bool = False, overwrite: bool = False,
                progress: bool = True, data_info: DataInfo | None = None,
                on_step: Callable[[int], None] | None = None,
                folders: Sequence[str | Path] | None = None) -> GroupResult:
    """Train one model per (alpha, seed) in ``members`` together (``model_config`` and
    ``train_config`` with that alpha and seed), each into ``out/<member_name>``; ``resume`` and
    ``overwrite`` as for ``train``. ``on_step(step)`` after every optimisation step. ``folders``:
    each member's run folder instead (distinct names; ``out`` then holds only ``group.json``, and
    each member is named by its folder's name)."""
    if model_config.kind not in ("jmvae-kl", "jmvae-zero", "vae", "cvae", "cmma"):
        raise JMVAEError(f"a group trains the models of jmvae.models, not {model_config.kind}")
    if len(set(members)) != len(members) or not members:
        raise JMVAEError("a group's members are distinct (alpha, seed) pairs, at least one", ("seeds", "alpha"))
    out = Path(out)
    if resume and overwrite:
        raise JMVAEError("resume and overwrite contradict each other; choose one")
    if (out / GROUP_RECORD).exists() and not (resume or overwrite):
        raise CheckpointError(f"{out} already holds a group of runs; pass resume=True to continue it, "
                              "overwrite=True to replace it, or another folder")
    if folders is not None and (len(folders) != len(members) or len({Path(f).name for f in folders}) != len(members)):
        raise JMVAEError("a group's member folders are one per member, with distinct names")
    training = GroupTraining(model_config, train_config, data, out, members, data_info or DataInfo(data.name), on_step,
                             folders)
    try:
        return training.run(resume, overwrite, progress)
    except BaseException:
        training.take_back_if_unstarted()
        raise


class GroupTraining:
    """The members, their stack and loss, the group's record, and the loop over them."""

    def __init__(self, model_config: ModelConfig, config: TrainConfig, data: PairedData, out: Path,
                 pairs: Sequence[tuple[float, int]], data_info: DataInfo, on_step: Callable[[int], None] | None,
                 folders: Sequence[str | Path] | None = None) -> None:
        check_paired(model_config.modalities, data.train, f"{data.name} training data")
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.out, self.config, self.on_step = out, config, on_step
        train = {name: value.to(self.device)  # once, for every member; with the masks of partially paired data
                 for name, value in modalities_and_masks(data.train, model_config.names).items()}
        binarized = data.binarized_modalities(model_config.names)
        self.members: list[Member] = []
        for i, (alpha, seed) in enumerate(pairs):
            run = ckpt.RunConfig(dataclasses.replace(model_config, alpha=alpha), dataclasses.replace(config, seed=seed),
                                 data_info, None)
            torch.manual_seed(seed)  # a single run's initial weights, and its global generators as it saves them
            model = build_model(run.model).to(self.device)
            rng = process_rng_state(self.device)
            batches = Batches(train, binarized, config.batch_size, seed, model_config.latent_dim, 1, self.device, World())
            optimizer = MemberOptimizer(list(model.parameters()))
            path = out / member_name(run.model, seed) if folders is None else Path(folders[i])
            folder = RunFolder(path, World(), model, ELBOStep(model), optimizer,  # type: ignore[arg-type]
                               batches, self.device, rng)
            self.members.append(Member(path.name, run, model, batches, optimizer, folder))
        self.loss = StackedLoss(self.members[0].model, config.compile)
        self.autocast = autocast_for(self.device, config.precision)
        self.steps_per_epoch = self.members[0].batches.steps_per_epoch
        self.record: dict[str, Any] = {}
        self.live: list[Member] = []
        self.committed = False
        self.started: list[Path] = []  # the member folders this group started afresh
        self.made_out = False  # whether start() made ``out`` (member folders elsewhere)

    def start(self, resume: bool, overwrite: bool) -> Progress:
        """Start or resume every member that has not diverged; build their stack."""
        saved = ckpt.read_json(self.out / GROUP_RECORD) if resume and (self.out / GROUP_RECORD).exists() else {}
        step = saved.get("step")
        self.committed = step is not None
        diverged = saved.get("diverged", {}) if self.committed else {}
        progress = Progress()
        for member in self.members:
            path = member.folder.path
            assert path is not None
            check_run_folder(path, resume, overwrite)
            if member.name in diverged:
                member.diverged = diverged[member.name]
                continue
            at = ckpt.checkpoint_folder(path, step) if self.committed else None
            if at is not None and not at.is_dir():
                raise CheckpointError(f"{at} is missing: {self.out / GROUP_RECORD} says the group checkpointed step "
                                      f"{step}; the group's folder is damaged")
            progress = member.folder.start(member.run, self.committed, overwrite, at)
            if not self.committed:
                self.started.append(path)
            member.history = progress.history
            self.live.append(member)
        if not self.live:
            raise DivergenceError(f"every member of the group in {self.out} has diverged; nothing to resume")
        self.record = {"members": [{"name": m.name, "seed": m.run.train.seed, "alpha": m.run.model.alpha}
                                   for m in self.members], "step": step, "diverged": diverged}
        if not self.out.exists():  # with member folders elsewhere, no member made it
            self.out.mkdir(parents=True)
            self.made_out = True
        ckpt.write_json(self.out / GROUP_RECORD, self.record)
        self.stack = Stack([m.model for m in self.live], [m.optimizer for m in self.live], self.config,
                           [m.optimizer.loaded for m in self.live])
        return Progress(progress.step, progress.epoch, progress.index_in_epoch, progress.seconds)

    def run(self, resume: bool, overwrite: bool, show_progress: bool) -> GroupResult:
        progress = self.start(resume, overwrite)
        total_steps = self.config.epochs * self.steps_per_epoch
        if self.config.max_steps is not None:
            total_steps = min(total_steps, self.config.max_steps)
        self.bar = progress_bar(total=total_steps, initial=progress.step, enabled=show_progress)
        interrupted = False
        with StopFlag() as stop, self.loss.base.labels_checked():  # check_paired checked every label
            while progress.step < total_steps and not interrupted and self.live:
                self.epoch(progress, total_steps, stop)
                interrupted = stop.signal is not None
        if interrupted:
            logger.warning("stopped by signal %d at step %d; checkpoint saved", stop.signal, progress.step)
        self.bar.close()
        for member in self.members:
            member.model.eval()
        if not self.live:
            raise DivergenceError("every member of the group diverged: " + " ".join(str(m.diverged) for m in self.members))
        return GroupResult(self.members, progress.step, progress.epoch, progress.seconds, interrupted)

    def epoch(self, progress: Progress, total_steps: int, stop: StopFlag) -> None:
        """The rest of the current epoch (to ``total_steps`` or a signal); log it if it finished; checkpoint."""
        started = time.perf_counter()
        orders = [m.batches.order(progress.epoch) for m in self.live]
        sums: dict[str, torch.Tensor] = {}
        count, weight = 0, 1.0
        while progress.index_in_epoch < self.steps_per_epoch and progress.step < total_steps and self.live:
            weight = kl_weight(progress.step, self.steps_per_epoch, self.config.warmup_epochs)
            terms, kept = self.optimisation_step(progress.step, orders, progress.index_in_epoch, weight)
            if kept is not None:  # members left: their orders and sums go with them
                orders = [orders[r] for r in kept]
                sums = {k: v[kept] for k, v in sums.items()}
            progress.step += 1
            progress.index_in_epoch += 1
            count += 1
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.detach()
            self.bar.update(1)
            if self.on_step is not None:
                self.on_step(progress.step)
            if stop.signal is not None:
                break
        progress.seconds += time.perf_counter() - started
        finished = progress.index_in_epoch >= self.steps_per_epoch
        if count and finished:
            for row, member in enumerate(self.live):
                record = {"epoch": progress.epoch + 1, "step": progress.step, "kl_weight": weight,
                          "seconds": round(progress.seconds, 3), **{k: float(v[row]) / count for k, v in sums.items()}}
                member.history.append(record)
                MetricsFile(member.folder.path / "metrics.jsonl").log(record)
        if finished:
            progress.epoch, progress.index_in_epoch = progress.epoch + 1, 0
        if self.live:
            self.save(progress)

    def optimisation_step(self, step: int, orders: list[torch.Tensor], index: int,
                          weight: float) -> tuple[dict[str, torch.Tensor], list[int] | None]:
        """One batch for every member: stacked terms, backward, per-member clipping, members whose
        loss or gradient is not finite out, Adam. Returns the terms ((M,) each, of the members still
        in) and, if some left, the rows that stayed."""
        alpha_weight = weight if self.config.warmup_all_kl else 1.0
        inputs = [m.batches.take(order, index, weight, alpha_weight)[0] for m, order in zip(self.live, orders)]
        batch = {name: torch.stack([i.batch[name] for i in inputs]) for name in inputs[0].batch}
        noise = torch.stack([i.noise[0] for i in inputs])
        alphas = torch.tensor([m.run.model.alpha * alpha_weight for m in self.live], device=self.device)
        with self.autocast:
            terms = self.loss.terms(self.stack.params, self.stack.buffers, batch, weight, alphas, noise)
        self.stack.optimizer.zero_grad(set_to_none=True)
        terms["loss"].sum().backward()
        norms = self.stack.clip_members(self.config.clip_grad_norm)
        bad = ~(torch.isfinite(terms["loss"].detach()) & torch.isfinite(norms))
        kept = None
        if bool(bad.any()):
            kept = self.leave(step, bad.tolist(), terms["loss"].detach().float().tolist(), norms.tolist())
            terms = {k: v[kept] for k, v in terms.items()}
        if self.live:
            self.stack.optimizer.step()
        return terms, kept

    def leave(self, step: int, bad: list[bool], losses: list[float], norms: list[float]) -> list[int]:
        """The members that diverged at ``step`` leave the group (their folders and the group's
        record say so); the rest go on in a stack of their own. Returns the rows that stayed."""
        for row, member in enumerate(self.live):
            if bad[row]:
                error = divergence_error(step, self.steps_per_epoch, losses[row], norms[row], f"member {member.name}")
                member.diverged = f"{error} {member.folder.what_is_saved()}".strip()
                logger.warning("%s; the other members go on", member.diverged)
                assert member.folder.path is not None
                ckpt.write_json(member.folder.path / "divergence.json",
                                {"member": member.name, "step": step + 1, "loss": losses[row],
                                 "gradient_norm": norms[row], "message": member.diverged})
                self.record["diverged"][member.name] = member.diverged
        ckpt.write_json(self.out / GROUP_RECORD, self.record)
        kept = [row for row, flag in enumerate(bad) if not flag]
        self.live = [self.live[row] for row in kept]
        if self.live:
            self.stack = self.stack.keep(kept, self.config)
        return kept

    def save(self, progress: Progress) -> None:
        """Checkpoint every member in the group, committed together (the module's docstring)."""
        for member in self.live:
            member.folder.save(progress, commit=False)
        self.record["step"] = progress.step
        ckpt.write_json(self.out / GROUP_RECORD, self.record)  # the commit: a resume starts here
        self.committed = True
        for member in self.live:
            assert member.folder.path is not None
            ckpt.commit_checkpoint(member.folder.path, progress.step)

    def take_back_if_unstarted(self) -> None:
        """A group that fails before its first checkpoint takes back the files it wrote."""
        if self.committed or not self.started:
            return
        for path in self.started:
            if path.exists() and ckpt.latest_checkpoint(path) is None:
                ckpt.remove_unstarted_run(path, True)
        (self.out / GROUP_RECORD).unlink(missing_ok=True)
        if self.made_out:
            try:
                self.out.rmdir()
            except OSError:  # something else is in it
                pass
