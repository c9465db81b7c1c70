"""One ``jmvae reproduce``: its configuration, and training and measuring one (row, seed) of Table 1.

A (row, seed) is measured once per protocol (steps trained, seeds, k, N_w, test limit,
evaluation seed, precisions, and the training settings that shape the model: batch size, learning
rate, clipping, KL warm-up, network sizes): its row is kept in the run folder's ``evaluation.json`` and in the
table, and found there again by ``Reproduction.stored`` instead of being measured again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jmvae import checkpoint as ckpt
from jmvae.coherence import Judge, fit_judge, label_coherence
from jmvae.config import EvalConfig, ModelConfig, TrainConfig
from jmvae.data import DataInfo, PairedData
from jmvae.errors import CheckpointError
from jmvae.evaluation import evaluate
from jmvae.experiments.hardware import hardware
from jmvae.experiments.table1.rows import ROW_KINDS, ROW_NAMES, run_folder_name, seed_rows
from jmvae.experiments.table1.store import read_evaluation, read_table, same_protocol, write_outputs
from jmvae.plots import image_and_label, model_figures
from jmvae.progress import ProgressLines, draws_bar
from jmvae.runs import load_run
from jmvae.training import train

COHERENCE_PER_CLASS = 1000  # images generated per class for the coherence column


class RunMismatch(CheckpointError):
    """A run folder holds a run of another seed or training precision than the protocol's."""


@dataclass(frozen=True)
class ReproduceConfig:
    out: Path
    runs: Path
    train: TrainConfig
    evaluation: EvalConfig
    latent_dim: int = 64
    hidden_dim: int = 512
    rows: tuple[str, ...] = ROW_NAMES
    figures: bool = True
    seeds: tuple[int, ...] = ()  # training seeds per row; () means train.seed alone
    jobs: int = 1  # worker processes training (row, seed) pairs side by side
    group: bool = True  # train the pairs of rows of one architecture together (experiments.table1.groups)

    @property
    def training_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.train.seed,)

    def run_dir(self, name: str, seed: int) -> Path:
        """RUNS/<row> for a single seed (the layout before several seeds existed); RUNS/<row>-seed<s>
        for several. Either command finds a seed's run where the other kind put it: a several-seed
        command the seed that an earlier single-seed command trained in RUNS/<row>, a single-seed
        command (say, resuming one seed of an interrupted several-seed run) RUNS/<row>-seed<s>."""
        single = self.runs / run_folder_name(name)
        own = self.runs / f"{run_folder_name(name)}-seed{seed}"
        if len(self.training_seeds) == 1:
            return own if (own / "config.json").is_file() and not holds_seed(single, seed) else single
        return single if not own.exists() and holds_seed(single, seed) else own


def holds_seed(run_dir: Path, seed: int) -> bool:
    """Whether ``run_dir`` holds a run trained with ``seed``."""
    return (run_dir / "config.json").is_file() and ckpt.load_run_config(run_dir).train.seed == seed


def holds_model_of(run_dir: Path, row: dict[str, Any], precision: str) -> bool:
    """Whether ``run_dir``'s latest checkpoint is the model ``row`` was measured on: the same
    seed, training precision and step."""
    latest = ckpt.latest_checkpoint(run_dir) if (run_dir / "config.json").is_file() else None
    if latest is None:
        return False
    saved = ckpt.load_run_config(run_dir).train
    return (saved.seed, saved.precision, ckpt.read_json(latest / "state.json")["step"]) == (row["seed"], precision, row["steps"])


TRAINING_SETTINGS = (("batch_size", "batch_size", "batch size"), ("lr", "lr", "learning rate"),
                     ("clip_grad_norm", "clip", "gradient clipping"), ("warmup_epochs", "warmup", "KL warm-up epochs"),
                     ("warmup_all_kl", "warmup_all_kl", "--warmup-all-kl"))
"""(TrainConfig field, protocol key, what a message calls it): the training settings besides the
seed and precision that shape the trained model, so a row is measured under them."""


def training_protocol(train: TrainConfig, latent_dim: int, hidden_dim: int) -> dict[str, Any]:
    """The protocol's training entries: ``TRAINING_SETTINGS`` and the networks' sizes."""
    return {**{key: getattr(train, field) for field, key, _ in TRAINING_SETTINGS},
            "latent_dim": latent_dim, "hidden_dim": hidden_dim}


def check_run_matches(run_dir: Path, train_config: TrainConfig) -> None:
    """Refuse to resume a run folder trained with another seed, training precision or training
    setting (``TRAINING_SETTINGS``): its model would be reported under this protocol. (Another
    architecture is refused by the resume itself.)"""
    if not (run_dir / "config.json").is_file() or not ckpt.latest_checkpoint(run_dir):
        return
    saved = ckpt.load_run_config(run_dir).train
    settings = (("seed", "seed"), ("precision", "training precision"), *((f, what) for f, _, what in TRAINING_SETTINGS))
    for field, what in settings:
        have, want = getattr(saved, field), getattr(train_config, field)
        if have != want:
            raise RunMismatch(f"{run_dir} holds a run trained with {what} {have}, not {want}")


def coherence_cell(model: Any, judge: Callable[[], Judge], seed: int) -> dict[str, Any] | None:
    """The row's ``coherence`` entry (see ``jmvae.coherence``), judged by ``judge()`` (fitted on
    first need); None for a model that cannot generate the image from the label (the VAE)."""
    image, label = image_and_label(model)
    if label is None or image not in model.generated:
        return None
    judged_by = judge()
    n_classes = model.config.modality(label).shape[0]
    value = label_coherence(model, judged_by, image, label, n_classes, COHERENCE_PER_CLASS, seed)
    return {f"{image}|{label}": value, "per_class": COHERENCE_PER_CLASS, "chance": 1 / n_classes,
            "judge_test_accuracy": judged_by.test_accuracy, "judged_on": judged_by.judged_on}


@dataclass
class Reproduction:
    """What one ``jmvae reproduce`` trains and how it measures; picklable for worker processes."""

    data: PairedData
    config: ReproduceConfig
    command: str
    judge: Judge | None = None

    @property
    def steps_needed(self) -> int:
        train_config = self.config.train
        steps = train_config.epochs * -(-len(next(iter(self.data.train.values()))) // train_config.batch_size)
        return min(steps, train_config.max_steps) if train_config.max_steps else steps

    def protocol(self, seed: int) -> dict[str, Any]:
        """What a stored row was measured with: a row is reused only under an equal protocol."""
        evaluation = self.config.evaluation
        return {"data": self.data.name, "steps": self.steps_needed, "seed": seed, "k": evaluation.k,
                "n_prior": evaluation.n_prior, "limit": evaluation.limit, "eval_seed": evaluation.seed,
                "precision": evaluation.precision, "train_precision": self.config.train.precision,
                **training_protocol(self.config.train, self.config.latent_dim, self.config.hidden_dim)}

    def tag(self, name: str, seed: int) -> str:
        return name if len(self.config.training_seeds) == 1 else f"{name} seed {seed}"

    def coherence_judge(self, log: Callable[[str], None]) -> Judge:
        """The classifier that judges generated images, fitted once on the real training images."""
        if self.judge is None:
            image, label = (m.name for m in self.data.modalities[:2])
            log(f"fitting the coherence judge on the {len(self.data.train[image])} training images")
            binary = self.data.modalities[0].likelihood == "bernoulli"  # judged on binary images, as the data
            self.judge = fit_judge(self.data.train[image], self.data.train[label], self.data.test[image],
                                   self.data.test[label], seed=self.config.train.seed, binary=binary)
        return self.judge

    def stored(self, name: str, seed: int, log: Callable[[str], None]) -> dict[str, Any] | None:
        """The (row, seed) measured before with this protocol, from the table or the run folder
        (its coherence added if it was measured before coherence existed); None if not done."""
        run_dir = self.config.run_dir(name, seed)
        table = self.config.out / "table1.json"
        sources = ((table, seed_rows(read_table(self.config.out).get(name)).get(seed)),
                   (run_dir / "evaluation.json", read_evaluation(run_dir)))
        where, row = next(((path, r) for path, r in sources if r and same_protocol(r, self.protocol(seed))), (None, None))
        if row is None:
            return None
        log(f"[{self.tag(name, seed)}] already in {where} with this protocol")
        missing = [key for key in ("coherence", "active_units") if key not in row]
        if row.get("coherence") and "judged_on" not in row["coherence"]:  # judged on means, before the judge saw binary images
            missing.append("coherence")
        if missing and holds_model_of(run_dir, row, self.config.train.precision):
            log(f"[{self.tag(name, seed)}] adding what it was measured without: {', '.join(missing)}")
            model = load_run(run_dir, self.config.train.device).model
            if "coherence" in missing:
                row = {**row, "coherence": coherence_cell(model, lambda: self.coherence_judge(log), self.config.evaluation.seed)}
            if "active_units" in missing:  # no importance sampling needed: k = N_w = 1 on the same test points
                quick = replace(self.config.evaluation, k=1, n_prior=1)
                row = {**row, "active_units": evaluate(model, self.data.test, quick).active_units}
        return row

    def model_config(self, name: str) -> ModelConfig:
        kind, alpha = ROW_KINDS[name]
        return ModelConfig(kind, self.data.modalities, self.config.latent_dim, self.config.hidden_dim, alpha=alpha)

    def trained_step(self, name: str, seed: int) -> int:
        """The step of the (row, seed)'s latest checkpoint in its run folder (0 if none)."""
        run_dir = self.config.run_dir(name, seed)
        latest = ckpt.latest_checkpoint(run_dir) if run_dir.exists() else None
        return ckpt.read_json(latest / "state.json")["step"] if latest else 0

    def run(self, name: str, seed: int, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        """Train (or resume) one (row, seed) to the protocol's steps, then ``measure`` it."""
        config, tag = self.config, self.tag(name, seed)
        run_dir = config.run_dir(name, seed)
        train_config = replace(config.train, seed=seed)  # its run folder was checked by reproduce()
        done_step = self.trained_step(name, seed)
        if done_step < self.steps_needed:
            log(f"[{tag}] training to step {self.steps_needed} (at {done_step}) in {run_dir}")
            bar = progress and draws_bar()  # workers, and a log file or pipe: tagged lines instead
            lines = None if bar else ProgressLines(tag, done_step, self.steps_needed, log)
            result = train(self.model_config(name), train_config, self.data, run_dir, resume=True, progress=bar,
                           data_info=DataInfo(self.data.name), on_step=lines)
            if result.interrupted:
                raise KeyboardInterrupt
        return self.measure(name, seed, progress, log)

    def measure(self, name: str, seed: int, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        """Evaluate a trained (row, seed), store its row in the run folder and the table, draw its
        figures if it is the first seed."""
        config, tag = self.config, self.tag(name, seed)
        run_dir = config.run_dir(name, seed)
        loaded = load_run(run_dir, config.train.device)
        model, run, state = loaded.model, loaded.config, loaded.state
        log(f"[{tag}] evaluating with k={config.evaluation.k}, N_w={config.evaluation.n_prior}")
        measured = evaluate(model, self.data.test, config.evaluation, progress)
        coherence = coherence_cell(model, lambda: self.coherence_judge(log), config.evaluation.seed)
        row = {**measured.to_dict(), "coherence": coherence, "epochs": state["epoch"], "steps": state["step"],
               "seed": run.train.seed, "train_seconds": round(state.get("seconds", 0.0), 1), "protocol": self.protocol(seed),
               "measured": {"command": self.command, "hardware": hardware(), "day": time.strftime("%Y-%m-%d", time.gmtime())}}
        ckpt.write_json(run_dir / "evaluation.json", row)
        if config.figures and seed == config.training_seeds[0]:
            log(f"[{tag}] figures in {config.out / 'figures' / run_folder_name(name)}")
            model_figures(model, run_dir, self.data, config.out / "figures" / run_folder_name(name), seed=config.evaluation.seed)
        write_outputs(config.out, self.command, {name: {seed: row}})
        return row
