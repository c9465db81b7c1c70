"""Table 1 of the paper: train and evaluate every model, write the table and check the claims.

Resumable at every level: each model trains in its own run folder (resumed from its latest
checkpoint), and a model whose evaluation is stored with the same protocol is not evaluated
again. The table and the claims are rewritten from whatever has been measured so far.

Several training seeds per row (``seeds``): each seed trains in its own run folder
(``RUNS/<row>-seed<s>``) and is evaluated on the same test set with the same evaluation seed.
A row holds every seed measured with its protocol, by this command or earlier ones: the mean of
every cell over them, their sample standard deviation (``seed_std``, n - 1 in the denominator)
and each seed's own row (``per_seed``). The claims are checked on the means. Runs of one 100-epoch MNIST model differ by about a nat from seed to
seed (docs/benchmarks.md), more than the test-set standard error of a cell (about 0.25), so a
single run cannot separate rows closer than that.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from jmvae import checkpoint as ckpt
from jmvae.coherence import Judge, fit_judge, label_coherence
from jmvae.config import EvalConfig, ModelConfig, TrainConfig
from jmvae.cores import usable_cores
from jmvae.data import PairedData
from jmvae.errors import CheckpointError
from jmvae.evaluation import ACTIVE_UNIT_THRESHOLD, evaluate
from jmvae.plots import image_and_label, model_figures
from jmvae.training import load_model, train

ROWS: tuple[tuple[str, float], ...] = (
    ("vae", 0.0),
    ("cvae", 0.0),
    ("cmma", 0.0),
    ("jmvae-zero", 0.0),
    ("jmvae-kl", 0.01),
    ("jmvae-kl", 0.1),
    ("jmvae-kl", 1.0),
)

PROTOCOL_DEFAULTS = {"precision": "fp32", "train_precision": "fp32"}  # what rows written before a protocol key existed were measured with
SAME_NATS = 0.5  # two log-likelihoods within this many nats count as "the same"
MUCH_NATS = 1.0  # "much lower" / "significantly" means by more than this many nats
RECOGNISABLE = 0.7  # images generated from a label are "recognisable" when the judge agrees this often
COLLAPSED = 0.5  # ... and "collapsed" when it agrees at most this often (chance: 1 / classes)
COHERENCE_PER_CLASS = 1000  # images generated per class for the coherence column


def row_name(kind: str, alpha: float) -> str:
    return f"{kind}(alpha={alpha:g})" if kind == "jmvae-kl" else kind


ROW_KINDS = {row_name(k, a): (k, a) for k, a in ROWS}


def run_folder_name(name: str) -> str:
    return name.replace("(", "-").replace(")", "").replace("=", "")


@dataclass(frozen=True)
class ReproduceConfig:
    out: Path
    runs: Path
    train: TrainConfig
    evaluation: EvalConfig
    latent_dim: int = 64
    hidden_dim: int = 512
    rows: tuple[str, ...] = tuple(row_name(k, a) for k, a in ROWS)
    figures: bool = True
    seeds: tuple[int, ...] = ()  # training seeds per row; () means train.seed alone
    jobs: int = 1  # worker processes training (row, seed) pairs side by side

    @property
    def training_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.train.seed,)

    def run_dir(self, name: str, seed: int) -> Path:
        """RUNS/<row> for a single seed (the layout before several seeds existed); RUNS/<row>-seed<s>
        for several, except a seed that an earlier single-seed command trained in RUNS/<row>."""
        single = self.runs / run_folder_name(name)
        if len(self.training_seeds) == 1:
            return single
        own = self.runs / f"{run_folder_name(name)}-seed{seed}"
        if not own.exists() and (single / "config.json").is_file() and ckpt.load_run_config(single).train.seed == seed:
            return single
        return own


def hardware() -> str:
    """A one-line description of the machine the numbers came from."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()  # with --jobs: a worker's, which this process takes too (jmvae.cli)
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' * (threads != 1)}, torch {torch.__version__}"


def reproduce(
    data: PairedData,
    config: ReproduceConfig,
    command: str,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and evaluate every (row, seed) of Table 1 not yet done; write table1.{json,md}; return the JSON.

    A (row, seed) already in ``OUT/table1.json``, or in its run folder's ``evaluation.json``,
    with the same protocol (steps trained, seed, k, N_w, test limit, evaluation seed,
    precisions) is kept as it is, so the small table file alone carries finished rows across
    machines; run folders (checkpoints) only matter for runs still in progress. The table is
    merged seed by seed under a file lock at every write, so several processes may share one
    OUT: ``config.jobs`` worker processes (each with ``train.threads`` threads) take the runs
    still to do from one queue, and separate ``jmvae reproduce`` commands may work on disjoint
    rows.
    """
    config.out.mkdir(parents=True, exist_ok=True)
    work = Reproduction(data, config, command)
    pending = []
    for name in config.rows:
        for seed in config.training_seeds:
            row = work.stored(name, seed, log)
            if row is None:
                pending.append((name, seed))
            else:
                write_outputs(config.out, command, {name: {seed: row}})
    for name, seed in pending:  # a wrong run folder stops the command before anything starts
        check_run_matches(config.run_dir(name, seed), replace(config.train, seed=seed))
    if config.jobs > 1 and len(pending) > 1:
        if any(ROW_KINDS[name][0] != "vae" for name, _ in pending):
            work.coherence_judge(log)  # fitted once here rather than once per worker
        run_in_workers(work, pending, config.jobs, log)
    else:
        for name, seed in pending:
            work.run(name, seed, progress, log)
    return write_outputs(config.out, command)


@dataclass
class Reproduction:
    """One ``jmvae reproduce``: what it trains and how it measures; picklable for worker processes."""

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
        evaluation = self.config.evaluation
        return {"data": self.data.name, "steps": self.steps_needed, "seed": seed, "k": evaluation.k,
                "n_prior": evaluation.n_prior, "limit": evaluation.limit, "eval_seed": evaluation.seed,
                "precision": evaluation.precision, "train_precision": self.config.train.precision}

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
            model, _, _ = load_model(run_dir, self.config.train.device)
            if "coherence" in missing:
                row = {**row, "coherence": coherence_cell(model, lambda: self.coherence_judge(log), self.config.evaluation.seed)}
            if "active_units" in missing:  # no importance sampling needed: k = N_w = 1 on the same test points
                quick = replace(self.config.evaluation, k=1, n_prior=1)
                row = {**row, "active_units": evaluate(model, self.data.test, quick).active_units}
        return row

    def run(self, name: str, seed: int, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
        """Train (or resume) one (row, seed) to the protocol's steps, evaluate it, store its row
        in the run folder and the table, draw its figures if it is the first seed."""
        config, tag = self.config, self.tag(name, seed)
        kind, alpha = ROW_KINDS[name]
        model_config = ModelConfig(kind, self.data.modalities, config.latent_dim, config.hidden_dim, alpha=alpha)
        run_dir = config.run_dir(name, seed)
        train_config = replace(config.train, seed=seed)  # its run folder was checked by reproduce()
        latest = ckpt.latest_checkpoint(run_dir) if run_dir.exists() else None
        done_step = ckpt.read_json(latest / "state.json")["step"] if latest else 0
        if done_step < self.steps_needed:
            log(f"[{tag}] training to step {self.steps_needed} (at {done_step}) in {run_dir}")
            result = train(model_config, train_config, self.data, run_dir, resume=True, progress=progress,
                           data_info={"name": self.data.name})
            if result.interrupted:
                raise KeyboardInterrupt
        model, run, state = load_model(run_dir, config.train.device)
        log(f"[{tag}] evaluating with k={config.evaluation.k}, N_w={config.evaluation.n_prior}")
        result = evaluate(model, self.data.test, config.evaluation, progress)
        coherence = coherence_cell(model, lambda: self.coherence_judge(log), config.evaluation.seed)
        row = {**result.to_dict(), "coherence": coherence, "epochs": state["epoch"], "steps": state["step"],
               "seed": run.train.seed, "train_seconds": round(state.get("seconds", 0.0), 1), "protocol": self.protocol(seed)}
        ckpt.write_json(run_dir / "evaluation.json", row)
        if config.figures and seed == config.training_seeds[0]:
            log(f"[{tag}] figures in {config.out / 'figures' / run_folder_name(name)}")
            model_figures(model, run_dir, self.data, config.out / "figures" / run_folder_name(name), seed=config.evaluation.seed)
        write_outputs(config.out, self.command, {name: {seed: row}})
        return row


_worker: dict[str, Any] = {}  # a worker process's Reproduction and whether it is running a pair


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _start_worker(work: Reproduction, threads: int) -> None:
    # Ctrl-C reaches the whole process group: training catches it (checkpoint, stop) through its
    # own handler; elsewhere a worker leaves it to the parent, which then asks every worker to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    torch.set_num_threads(threads)
    _worker.update(work=work, busy=False)


def _stop_worker(signum: int, frame: Any) -> None:
    """SIGTERM outside training: abandon the pair being run (an evaluation), as an exception that
    travels back to the parent like any other; an idle worker waits for the executor's exit signal."""
    if _worker.get("busy"):
        raise KeyboardInterrupt


def _run_in_worker(item: tuple[str, int]) -> tuple[str, int]:
    _worker["busy"] = True
    try:
        _worker["work"].run(*item, False, log_to_stderr)
    finally:
        _worker["busy"] = False
    return item


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


STOP_GRACE_SECONDS = 120.0  # how long stopping workers may take to checkpoint before they are killed


def stop_workers(pool: ProcessPoolExecutor, log: Callable[[str], None]) -> None:
    """Ask every worker to stop (SIGTERM: a training run checkpoints and stops, an evaluation is
    abandoned), let them finish that, and kill any still alive after ``STOP_GRACE_SECONDS``.

    Workers are never killed at once: a process killed while it holds one of the executor's queue
    locks would leave the others waiting on it for ever. Signals to this process while it waits
    are ignored (the workers are already stopping)."""
    processes = list(getattr(pool, "_processes", {}).values())  # the executor has no public handle
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                log(f"worker {process.pid} did not stop within {STOP_GRACE_SECONDS:g} s; killing it")
                process.kill()
                process.join()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def run_in_workers(work: Reproduction, pending: list[tuple[str, int]], jobs: int, log: Callable[[str], None]) -> None:
    """Run the pending (row, seed) pairs in up to ``jobs`` worker processes, handing each worker
    the next pair when it finishes one, each with ``train.threads`` threads (default: the cores
    this process may use, shared out). The first failure, Ctrl-C or SIGTERM stops every worker
    (``stop_workers``: a training run checkpoints and stops, an evaluation in progress is dropped)
    and is raised here once they have exited; no pair starts after it, and every run keeps its
    last checkpoint, so the same command resumes."""
    jobs = min(jobs, len(pending))
    threads = work.config.train.threads or max(1, usable_cores() // jobs)
    log(f"running {len(pending)} models in {jobs} worker processes, {threads} thread{'s' if threads > 1 else ''} each")
    queue = list(reversed(pending))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(work, threads))
    running: set[Future] = set()
    try:
        while queue or running:
            while queue and len(running) < jobs:  # never more than one pair a worker: nothing waits queued
                running.add(pool.submit(_run_in_worker, queue.pop()))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name, seed = future.result()
                log(f"[{work.tag(name, seed)}] done")
    except BaseException:
        stop_workers(pool, log)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)


def same_protocol(row: dict[str, Any], protocol: dict[str, Any]) -> bool:
    return {**PROTOCOL_DEFAULTS, **row.get("protocol", {})} == protocol


def read_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """The row ``reproduce`` stored in a run folder after evaluating it (None if there is none)."""
    path = run_dir / "evaluation.json"
    return ckpt.read_json(path) if path.is_file() else None


def holds_model_of(run_dir: Path, row: dict[str, Any], precision: str) -> bool:
    """Whether ``run_dir``'s latest checkpoint is the model ``row`` was measured on: the same
    seed, training precision and step."""
    latest = ckpt.latest_checkpoint(run_dir) if (run_dir / "config.json").is_file() else None
    if latest is None:
        return False
    saved = ckpt.load_run_config(run_dir).train
    return (saved.seed, saved.precision, ckpt.read_json(latest / "state.json")["step"]) == (row["seed"], precision, row["steps"])


def check_run_matches(run_dir: Path, train_config: TrainConfig) -> None:
    """Refuse to resume a run folder trained with another seed or training precision: its model
    would be reported under this protocol."""
    if not (run_dir / "config.json").is_file() or not ckpt.latest_checkpoint(run_dir):
        return
    saved = ckpt.load_run_config(run_dir).train
    for what, have, want in (("seed", saved.seed, train_config.seed), ("training precision", saved.precision, train_config.precision)):
        if have != want:
            raise CheckpointError(f"{run_dir} holds a run trained with {what} {have}, not {want}; "
                                  "use another --runs (or --out) folder, or remove that run folder")


def seed_rows(entry: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    """The per-seed rows a table entry holds: its ``per_seed`` rows, or the entry itself for one seed."""
    if not entry:
        return {}
    if "per_seed" in entry:
        return {int(seed): row for seed, row in entry["per_seed"].items()}
    seed = entry.get("protocol", {}).get("seed", entry.get("seed"))
    return {} if seed is None else {int(seed): entry}


def combine_seeds(done: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The table row of a model from its seeds' rows: the run itself for one seed; for several the
    mean of every cell over the seeds, the sample standard deviation (``seed_std``) and each
    seed's row (``per_seed``)."""
    if len(done) == 1:
        return next(iter(done.values()))
    order = sorted(done)
    rows = [done[s] for s in order]
    first = rows[0]
    coherence = None
    values = [judged_coherence(r) for r in rows]
    if first.get("coherence") and None not in values:
        key = next(k for k in first["coherence"] if "|" in k)
        coherence = {**first["coherence"], key: statistics.fmean(values), "n_seeds": len(rows),
                     "judge_test_accuracy": statistics.fmean(r["coherence"]["judge_test_accuracy"] for r in rows)}
    protocol = {k: v for k, v in first["protocol"].items() if k != "seed"}
    units = all(r.get("active_units") for r in rows)  # rows evaluated before active units were counted lack them

    def over_seeds(statistic: Callable[[list[float]], float]) -> dict[str, Any]:
        """``statistic`` over the seeds of every cell, accuracy and active-unit count."""
        return {key: tree_statistic([r[key] for r in rows], statistic) if key != "active_units" or units else {}
                for key in ("log_likelihood", "accuracy", "active_units")}

    return {
        "model": first["model"], "k": first["k"], "n_prior": first["n_prior"], "n_test": first["n_test"],
        **over_seeds(statistics.fmean),
        "coherence": coherence,
        "seed_std": {**over_seeds(statistics.stdev), "coherence": statistics.stdev(values) if coherence else None},
        "seeds": order, "epochs": first["epochs"], "steps": first["steps"],
        "train_seconds": round(statistics.fmean(r["train_seconds"] for r in rows), 1),
        "eval_seconds": round(statistics.fmean(r["eval_seconds"] for r in rows), 2),
        "protocol": {**protocol, "seeds": order},
        "per_seed": {str(s): done[s] for s in order},
    }


def tree_statistic(trees: list[Any], statistic: Callable[[list[float]], float | None]) -> Any:
    """``statistic`` of each leaf across nested dicts of the same shape; a None leaf stays None."""
    first = trees[0]
    if isinstance(first, dict):
        return {key: tree_statistic([tree[key] for tree in trees], statistic) for key in first}
    return None if first is None else statistic(trees)


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


def read_table(out: Path) -> dict[str, Any]:
    """The rows of ``OUT/table1.json`` measured so far (empty if none)."""
    path = out / "table1.json"
    return json.loads(path.read_text())["models"] if path.is_file() else {}


def write_outputs(out: Path, command: str, runs: dict[str, dict[int, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Merge newly measured ``runs`` ({row: {seed: its row}}) into table1.json under a lock, re-check
    the claims, rewrite table1.md and report.md. Every other seed of a row already in the table
    with the same protocol is kept (a row shows all the seeds measured with its protocol), so
    commands that measure different seeds of one row add up instead of overwriting each other;
    seeds of another protocol are replaced."""
    with open(out / ".table1.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        models = read_table(out)
        for name, new in (runs or {}).items():
            measured = {**PROTOCOL_DEFAULTS, **next(iter(new.values())).get("protocol", {})}
            kept = {seed: row for seed, row in seed_rows(models.get(name)).items()
                    if same_protocol(row, {**measured, "seed": seed})}
            models[name] = combine_seeds({**kept, **new})
        order = [row_name(k, a) for k, a in ROWS]
        models = dict(sorted(models.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))
        table = {"models": models, "claims": check_claims(models), "command": command, "hardware": hardware()}
        ckpt.write_json(out / "table1.json", table)
        ckpt.write_atomic(out / "table1.md", render_markdown(table).encode())
        ckpt.write_atomic(out / "report.md", render_report(table, out).encode())
    return table


# -- the paper's checkable claims (SETUP.md) ------------------------------------------------------


def _cell(models: dict[str, Any], name: str, *path: str) -> float | None:
    value: Any = models.get(name)
    if value is None:
        return None
    value = value["log_likelihood"]
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def coherence_value(models: dict[str, Any], name: str) -> float | None:
    """The judged coherence of images generated from labels for row ``name`` (None if unmeasured)."""
    return judged_coherence(models.get(name) or {})


def judged_coherence(row: dict[str, Any]) -> float | None:
    """A row's judged coherence of images generated from labels (None if unmeasured or undefined)."""
    return next((v for k, v in (row.get("coherence") or {}).items() if "|" in k), None)


def coherence_stderr(entry: dict[str, Any]) -> float:
    """Binomial standard error of a coherence entry: sqrt(p (1 - p) / n), n images judged (over all seeds)."""
    value = next(v for k, v in entry.items() if "|" in k)
    n = entry["per_class"] * round(1 / entry["chance"]) * entry.get("n_seeds", 1)
    return (value * (1 - value) / n) ** 0.5


def _keys(models: dict[str, Any]) -> tuple[str, str]:
    for result in models.values():
        keys = [k for k in result["log_likelihood"] if k != "joint"]
        return keys[0], keys[1]
    return "image", "image|label"


PAPER_PROTOCOL = {"epochs": 100, "k": 1000, "n_test": 10_000}  # Table 1: the authors' 100 epochs, all test images
FAR_FROM_PAPER = {"epochs": 20, "k": 100, "n_test": 1000}
"""Below these (a fifth of the paper's epochs, a tenth of its k and test images) a claim's verdict
is "not established": a 2-epoch run or a 5-sample bound says nothing about the paper's claims."""


def joint_active_units(row: dict[str, Any] | None) -> float | None:
    """Active latent units of a row's joint (or only) proposal, as table1.md shows (None if not counted)."""
    units = (row or {}).get("active_units") or {}
    return next(iter(units.values()), None)


def judging_caveat(models: dict[str, Any], rows: list[str]) -> str | None:
    """Why the rows a claim is judged on cannot establish it, or None: a collapsed model (no
    active latent unit: its z carries nothing about the data, and images generated from a label
    are at chance), or a protocol far from the paper's (``FAR_FROM_PAPER``)."""
    judged = [name for name in rows if name in models]
    reasons = []
    collapsed = [name for name in judged if joint_active_units(models[name]) == 0]
    if collapsed:
        reasons.append(f"judged on collapsed models (0 active latent units: {', '.join(collapsed)})")
    gaps = []
    for key, minimum in FAR_FROM_PAPER.items():
        low = sorted({models[n][key] for n in judged if isinstance(models[n].get(key), (int, float)) and models[n][key] < minimum})
        if low:
            what = {"n_test": "test points"}.get(key, key)
            gaps.append(f"{what} {', '.join(f'{v:g}' for v in low)} (the paper's: {PAPER_PROTOCOL[key]:,})")
    if gaps:
        reasons.append("far from the paper's protocol: " + ", ".join(gaps))
    return "; ".join(reasons) or None


def claim_verdict(claim: dict[str, Any]) -> str:
    """What table1.md says of a claim: holds, does not hold, not established, not checked."""
    if claim["holds"] is None:
        return "not checked"
    if not claim.get("established", True):
        return "not established"
    return "holds" if claim["holds"] else "does not hold"


def check_claims(models: dict[str, Any]) -> list[dict[str, Any]]:
    """Each claim of SETUP.md with holds = True/False from the measured cells (None if unmeasured),
    ``established`` False (and a ``caveat``) when the rows it is judged on are collapsed or far from
    the paper's protocol (``judging_caveat``), and the ``verdict`` table1.md shows."""
    kx, kxw = _keys(models)

    def c(name: str, *path: str) -> float | None:
        return _cell(models, name, *path)

    kl = {a: row_name("jmvae-kl", a) for a in (0.01, 0.1, 1.0)}
    claims = []

    def claim(text: str, parts: list[tuple[str, Callable[..., bool], tuple[float | None, ...]]], digits: int = 2,
              rows: list[str] | None = None) -> None:
        """``rows``: the models the claim compares (default: every row of the table)."""
        missing = [desc for desc, _, values in parts if any(v is None for v in values)]
        if missing:
            entry = {"claim": text, "holds": None, "evidence": "not measured yet: " + "; ".join(missing)}
            claims.append({**entry, "verdict": claim_verdict(entry)})
            return
        verdicts = [(desc, bool(test(*values)), values) for desc, test, values in parts]
        evidence = "; ".join(
            f"{desc}: {'yes' if ok else 'no'} ({', '.join(f'{v:.{digits}f}' for v in values)})" for desc, ok, values in verdicts
        )
        caveat = judging_caveat(models, list(models) if rows is None else rows)
        entry = {"claim": text, "holds": all(ok for _, ok, _ in verdicts), "established": caveat is None,
                 "caveat": caveat, "evidence": evidence}
        claims.append({**entry, "verdict": claim_verdict(entry)})

    zero_x = [c("jmvae-zero", kx, "multiple"), c("jmvae-zero", kx, "single")]
    claim(
        "JMVAE-zero's log p(x) is the same as or slightly better than the VAE's.",
        [(f"best JMVAE-zero log p(x) >= VAE - {SAME_NATS} (zero multiple, zero single, VAE)",
          lambda m, s, v: max(m, s) >= v - SAME_NATS, (*zero_x, c("vae", kx, "single")))],
        rows=["jmvae-zero", "vae"],
    )
    singles = [c(kl[a], kx, "single") for a in (0.01, 0.1, 1.0)]
    all_px = [v for name in models for v in (c(name, kx, "multiple"), c(name, kx, "single")) if v is not None]
    claim(
        "JMVAE-kl's log p(x) improves as alpha gets smaller; alpha = 0.01 with the single bound is the best "
        "log p(x) of Table 1; alpha = 1 is much lower.",
        [
            ("single bound decreasing in alpha (0.01, 0.1, 1)", lambda a, b, d: a > b > d, tuple(singles)),
            ("alpha=0.01 single is the best log p(x) (it, best of all)", lambda a, m: a >= m,
             (singles[0], max(all_px) if all_px else None)),
            (f"alpha=1 single < alpha=0.01 single - {MUCH_NATS} (1, 0.01)", lambda d, a: d < a - MUCH_NATS,
             (singles[2], singles[0])),
        ],
    )
    cvae = c("cvae", kxw, "multiple")
    others_xw = [v for name in models if name != "cvae" for v in (c(name, kxw, "multiple"), c(name, kxw, "single")) if v is not None]
    cmma = c("cmma", kxw, "multiple")
    claim(
        "For log p(x|w), the CVAE is best; with the multiple bound, JMVAE-zero and JMVAE-kl (alpha < 1) beat the CMMA.",
        [
            ("CVAE >= every other log p(x|w) (CVAE, best other)", lambda a, b: a >= b,
             (cvae, max(others_xw) if others_xw else None)),
            ("JMVAE-zero multiple > CMMA", lambda a, b: a > b, (c("jmvae-zero", kxw, "multiple"), cmma)),
            ("JMVAE-kl(0.01) multiple > CMMA", lambda a, b: a > b, (c(kl[0.01], kxw, "multiple"), cmma)),
            ("JMVAE-kl(0.1) multiple > CMMA", lambda a, b: a > b, (c(kl[0.1], kxw, "multiple"), cmma)),
        ],
    )
    zero_single = c("jmvae-zero", kxw, "single")
    kl_single = [c(kl[a], kxw, "single") for a in (0.01, 0.1, 1.0)]
    claim(
        "JMVAE-zero with the single bound gives a much lower log p(x|w); JMVAE-kl improves it significantly, "
        "and more so as alpha grows.",
        [
            (f"zero single < zero multiple - {MUCH_NATS} (single, multiple)", lambda s, m: s < m - MUCH_NATS,
             (zero_single, c("jmvae-zero", kxw, "multiple"))),
            (f"every JMVAE-kl single > zero single + {MUCH_NATS} (worst kl, zero)", lambda k, z: k > z + MUCH_NATS,
             (min(kl_single) if None not in kl_single else None, zero_single)),
            ("kl single increasing in alpha (0.01, 0.1, 1)", lambda a, b, d: a < b < d, tuple(kl_single)),
        ],
        rows=["jmvae-zero", *kl.values()],
    )
    joint_zero, joint_kl, joint_kl1 = c("jmvae-zero", "joint"), c(kl[0.01], "joint"), c(kl[1.0], "joint")
    claim(
        "Joint log p(x,w): JMVAE-zero and JMVAE-kl are almost identical (zero slightly lower); large alpha lowers it.",
        [
            (f"|zero - kl(0.01)| <= {SAME_NATS} (zero, kl 0.01)", lambda z, k: abs(z - k) <= SAME_NATS, (joint_zero, joint_kl)),
            (f"kl(1) < kl(0.01) - {MUCH_NATS} (kl 1, kl 0.01)", lambda d, a: d < a - MUCH_NATS, (joint_kl1, joint_kl)),
        ],
        rows=["jmvae-zero", kl[0.01], kl[1.0]],
    )
    coh = {name: coherence_value(models, name) for name in ("jmvae-zero", *kl.values())}
    kl_coh = [coh[kl[a]] for a in (0.01, 0.1, 1.0)]
    claim(
        "Images generated from a label alone: sharp digits with JMVAE-kl, collapsed with JMVAE-zero (Appendix E).",
        [
            (f"every JMVAE-kl coherence >= {RECOGNISABLE} (0.01, 0.1, 1)", lambda *v: min(v) >= RECOGNISABLE, tuple(kl_coh)),
            (f"JMVAE-zero coherence <= {COLLAPSED}", lambda z: z <= COLLAPSED, (coh["jmvae-zero"],)),
        ],
        digits=3,
        rows=["jmvae-zero", *kl.values()],
    )
    claims.append({"claim": "On CelebA, JMVAE(-GAN) beats VAE-GAN, CVAE-GAN and CMMA-GAN.", "holds": None,
                   "evidence": "not an MNIST claim; needs the full CelebA set", "verdict": "not checked"})
    return claims


def render_markdown(table: dict[str, Any]) -> str:
    models = table["models"]
    kx, kxw = _keys(models)

    def fmt(value: float | None, digits: int = 2, spread: float | None = None) -> str:
        if value is None:
            return "—"
        return f"{value:.{digits}f}" + ("" if spread is None else f" ± {spread:.{digits}f}")

    def active_units(r: dict[str, Any]) -> str:
        """The joint (or only) proposal's active units; a mean ± standard deviation over seeds."""
        if not r.get("active_units"):
            return "—"
        value = next(iter(r["active_units"].values()))
        spread = next(iter(((r.get("seed_std") or {}).get("active_units") or {None: None}).values()))
        return str(value) if "seed_std" not in r else fmt(value, 1, spread)

    def seeds_of(r: dict[str, Any]) -> str:
        return ", ".join(str(s) for s in r["seeds"]) if "seeds" in r else str(r.get("seed", "—"))

    datasets = {r.get("protocol", {}).get("data") for r in models.values()} - {None}
    lines = [
        f"# Table 1: test log-likelihoods on {', '.join(sorted(datasets)) or 'no data yet'}",
        "",
        f"Command: `{table['command']}`  ",
        f"Hardware: {table['hardware']}",
        "",
        "| model | log p(x) multiple | log p(x) single | log p(x\\|w) multiple | log p(x\\|w) single | "
        "log p(x,w) | accuracy w\\|x | coherence x\\|w | active z | seeds | epochs | train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in models.items():
        ll = r["log_likelihood"]
        std = r.get("seed_std") or {"log_likelihood": None, "accuracy": None, "coherence": None, "active_units": None}
        sll = std["log_likelihood"] or {kx: {"multiple": None, "single": None}, kxw: {"multiple": None, "single": None},
                                        "joint": None}
        acc = next(iter(r["accuracy"].values()), None) if r.get("accuracy") else None
        sacc = next(iter(std["accuracy"].values()), None) if std["accuracy"] else None
        cells = [fmt(ll[cell][bound], spread=sll[cell][bound]) for cell in (kx, kxw) for bound in ("multiple", "single")]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {fmt(ll['joint'], spread=sll['joint'])} | {fmt(acc, 4, sacc)} | "
            f"{fmt(coherence_value(models, name), 3, std['coherence'])} | {active_units(r)} | {seeds_of(r)} | {r['epochs']} | "
            f"{r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |"
        )
    if any("seed_std" in r for r in models.values()):
        lines += ["", "Rows over several training seeds show the mean ± the sample standard deviation over the seeds "
                  "(train s, eval s: the mean per seed); the claims below are checked on the means."]
    if models:
        first = next(iter(models.values()))
        lines += ["", f"k = {first['k']} importance samples, N_w = {first['n_prior']} prior samples, "
                  f"{first['n_test']} test images; higher is better (nats). '—': the model does not define that cell. "
                  "Active z: latent units of the joint proposal (the VAE's: q(z|x)) whose posterior mean varies "
                  f"over the test set by more than {ACTIVE_UNIT_THRESHOLD} (Burda et al. 2016)."]
        judged = [r["coherence"] for r in models.values() if r.get("coherence")]
        if judged:
            errors = [coherence_stderr(entry) for entry in judged]
            lines += ["", f"Coherence x|w: the share of {judged[0]['per_class']} images generated from each label alone that "
                      "an independent classifier (an MLP fitted on the real training images; "
                      f"{judged[0]['judge_test_accuracy']:.4f} accurate on the real test images) assigns to that label, "
                      f"judged on {judged[0].get('judged_on', 'means of p(x|z); judge fitted on intensities, tested on binarised images')}, "
                      f"averaged over labels (chance: {judged[0]['chance']:.2g}); binomial standard errors "
                      f"{min(errors):.4f} to {max(errors):.4f}. See `jmvae.coherence`."]
    lines += ["", "## The paper's claims", ""]
    for claim in table["claims"]:
        verdict = claim_verdict(claim)
        note = (f" ({'holds' if claim['holds'] else 'does not hold'} by the numbers, but {claim['caveat']})"
                if verdict == "not established" else "")
        lines.append(f"- **{verdict}**{note}: {claim['claim']}  \n  {claim['evidence']}")
    return "\n".join(lines) + "\n"


def render_report(table: dict[str, Any], out: Path) -> str:
    """table1.md followed by every model's figures found under OUT/figures/<row>/ (report.md)."""
    lines = [render_markdown(table).replace("# Table 1", "# Report: Table 1", 1), "## Figures", ""]
    figures = out / "figures"
    rows = [name for name in table["models"] if (figures / run_folder_name(name)).is_dir()]
    if not rows:
        return "\n".join(lines + ["No figures yet (they are drawn after each model's evaluation).", ""])

    def image(name: str, figure: str) -> str:
        path = figures / run_folder_name(name) / figure
        return f"![{name} {figure}](figures/{run_folder_name(name)}/{figure})" if path.is_file() else "—"

    sections = [
        ("Images generated from the label alone (Appendix E, Figure 7)", "generation.png",
         "One row per label. JMVAE-kl draws z from its label encoder q(z|w); JMVAE-zero from the joint "
         "encoder with the image zero-filled, which the paper shows collapsing; the CMMA from p(z|w), the "
         "CVAE from N(0, I) with w given to the decoder."),
        ("Latent space of the test set (Figure 3)", "latent.png",
         "PCA of the means of each model's training posterior on the test set, coloured by label; the axes give "
         "each component's share of the variance. The paper's Figure 3 is a t-SNE: `jmvae plot RUN --embedding tsne` "
         "draws that."),
        ("Reconstructions (Appendix C)", "reconstructions.png",
         "Test images, then their reconstructions through the joint encoder and through the image-only encoder."),
        ("Training curves", "curves.png", "Every logged term of the training loss, per epoch."),
    ]
    for title, figure, caption in sections:
        shown = [name for name in rows if (figures / run_folder_name(name) / figure).is_file()]
        if not shown:
            continue
        lines += [f"### {title}", "", caption, "", "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown),
                  "| " + " | ".join(image(name, figure) for name in shown) + " |", ""]
    return "\n".join(lines)
