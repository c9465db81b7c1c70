r"""Semi-supervised MNIST: JMVAE-kl on a few labelled images and many unlabelled ones.

    python -m jmvae.experiments.semisupervised --out results/mnist-semisupervised --epochs 10

For each n in ``labels`` (100, 600, 1,000, 3,000: n / 10 per class, chosen with
``data.semisupervised.keep_labels`` and ``labelled_seed``) two runs of JMVAE-kl (alpha 0.1, the
paper's MNIST architecture) are trained the same number of steps:

- ``semi-n``: all 60,000 training images, n of them with their label; a labelled image trains on
  the JMVAE-kl bound, an unlabelled one on the ELBO of the image with q(z|x) (``jmvae.partial``);
- ``labelled-only-n``: the n labelled images alone (what a library without partially paired
  training can learn from), listed 60,000 / n times so that an epoch is as many steps;

beside ``paired``: every label kept. Each run is then evaluated on the whole test set (all labels
there): the test error of the label predicted from the image alone (argmax p(w|z) at the mean
of q(z|x)), log p(x) with the image's own encoder q(z|x), and log p(x|w) and log p(x, w) with the
joint encoder (``jmvae.evaluation``). Runs are resumable folders under ``--runs``, so the
experiment continues where it stopped and trains further with a larger ``--epochs``;
``--only`` picks runs, for several processes side by side. The table is written from every run
folder that has its evaluation, with the protocol of the runs in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from jmvae import checkpoint as ckpt
from jmvae import presets
from jmvae.config import EvalConfig
from jmvae.data import PairedData, load_dataset
from jmvae.data.semisupervised import keep_labels
from jmvae.evaluation import evaluate
from jmvae.experiments.hardware import hardware
from jmvae.progress import ProgressLines
from jmvae.runs import load_run
from jmvae.training import train

LABELS = (100, 600, 1000, 3000)
ALPHA = 0.1
KINGMA_2014 = {  # test error (%), Kingma, Rezende, Mohamed & Welling (2014), Table 1
    "M2": {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92},
    "M1+M2": {100: 3.33, 600: 2.59, 1000: 2.40, 3000: 2.18},
}


@dataclass(frozen=True)
class SemiRun:
    """One run of the experiment: ``labelled`` None keeps every label."""

    labelled: int | None
    labelled_only: bool = False

    @property
    def name(self) -> str:
        if self.labelled is None:
            return "paired"
        return f"{'labelled-only' if self.labelled_only else 'semi'}-{self.labelled}"

    def data(self, full: PairedData, seed: int) -> PairedData:
        """Its training data: ``full`` with ``labelled`` labels kept (seeded), or only those images,
        listed len(full) // labelled times (``data.semisupervised.keep_labels``)."""
        if self.labelled is None:
            return full
        repeat = len(full.train["label"]) // self.labelled if self.labelled_only else 1
        return keep_labels(full, self.labelled, seed, self.labelled_only, repeat)


def all_runs(labels: tuple[int, ...]) -> list[SemiRun]:
    return [SemiRun(None)] + [SemiRun(n, only) for n in labels for only in (False, True)]


@dataclass(frozen=True)
class SemiConfig:
    out: Path
    runs: Path
    data_dir: str | None
    epochs: int
    dataset: str = "mnist"
    labels: tuple[int, ...] = LABELS
    seed: int = 0
    labelled_seed: int = 0
    precision: str = "fp32"
    threads: int = 1
    evaluation: EvalConfig = EvalConfig(k=100, n_prior=5000)

    def protocol(self) -> dict[str, Any]:
        return {"data": self.dataset, "epochs": self.epochs, "seed": self.seed, "labelled_seed": self.labelled_seed, "alpha": ALPHA,
                "precision": self.precision, "k": self.evaluation.k, "n_prior": self.evaluation.n_prior,
                "limit": self.evaluation.limit}


def run_one(config: SemiConfig, run: SemiRun, log=print) -> dict[str, Any]:
    """Train (or resume) one run to ``config.epochs`` and evaluate it; its row (kept in the run
    folder's ``evaluation.json``, and not measured again with the same protocol)."""
    run_dir = config.runs / run.name
    stored = run_dir / "evaluation.json"
    if stored.is_file():
        row = ckpt.read_json(stored)
        if row.get("protocol") == config.protocol():
            return row
    full = load_dataset(config.dataset, config.data_dir)
    data = run.data(full, config.labelled_seed)
    model_config, _ = presets.model_config(config.dataset, "jmvae-kl", data.modalities, ALPHA)
    train_config = presets.train_config(config.dataset, epochs=config.epochs, seed=config.seed, threads=config.threads,
                                        precision=config.precision)
    steps = config.epochs * -(-len(data.train["label"]) // train_config.batch_size)
    log(f"[{run.name}] training to step {steps} in {run_dir}")
    torch.set_num_threads(config.threads)
    result = train(model_config, train_config, data, run_dir, resume=(run_dir / "config.json").is_file(),
                   progress=False, data_info=data.run_info(), on_step=ProgressLines(run.name, 0, steps, log))
    if result.interrupted:
        raise KeyboardInterrupt
    log(f"[{run.name}] evaluating (k = {config.evaluation.k}, N_w = {config.evaluation.n_prior})")
    measured = evaluate(load_run(run_dir).model, data.test, config.evaluation).to_dict()
    row = {**measured, "name": run.name, "labelled": run.labelled, "labelled_only": run.labelled_only,
           "n_full": int(full.train["label"].shape[0]),
           "steps": result.step, "train_seconds": round(result.seconds, 1), "hardware": hardware(),
           "threads": config.threads, "protocol": config.protocol()}
    ckpt.write_json(stored, row)
    return row


def collect(config: SemiConfig) -> dict[str, dict[str, Any]]:
    """The rows of every run folder evaluated with this protocol."""
    rows = {}
    for run in all_runs(config.labels):
        path = config.runs / run.name / "evaluation.json"
        if path.is_file() and (row := ckpt.read_json(path)).get("protocol") == config.protocol():
            rows[run.name] = row
    return rows


def cells(row: dict[str, Any] | None) -> list[str]:
    """Test error (%), log p(x) (q(z|x)), log p(x|w) and log p(x, w) (joint encoder) of a row."""
    if row is None:
        return ["—"] * 4
    ll = row["log_likelihood"]
    return [f"{100 * (1 - row['accuracy']['label|image']):.2f}", f"{ll['image']['single']:.2f}",
            f"{ll['image|label']['multiple']:.2f}", f"{ll['joint']:.2f}"]


def markdown(config: SemiConfig, rows: dict[str, dict[str, Any]], command: str) -> str:
    p = config.protocol()
    n_full = next((row["n_full"] for row in rows.values()), 60_000)
    head = ("| labels | training data | test error (%) | log p(x) | log p(x\\|w) | log p(x, w) "
            "| M2 (Kingma 2014) | M1+M2 (Kingma 2014) |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for n in config.labels:
        for only in (False, True):
            what = f"{n:,} labelled only" if only else f"{n:,} labelled + {n_full - n:,} unlabelled"
            anchors = [f"{KINGMA_2014[m][n]:.2f}" if n in KINGMA_2014[m] and not only else "" for m in KINGMA_2014]
            lines.append("| " + " | ".join([f"{n:,}", what, *cells(rows.get(SemiRun(n, only).name)), *anchors]) + " |")
    lines.append("| " + " | ".join([f"{n_full:,}", "all labelled (fully paired)", *cells(rows.get("paired")), "", ""]) + " |")
    missing = [r.name for r in all_runs(config.labels) if r.name not in rows]
    return "\n".join([
        "# Semi-supervised MNIST with JMVAE-kl",
        "",
        f"JMVAE-kl (alpha = {ALPHA}, the paper's MNIST architecture) on {p['data']}, {p['epochs']} epochs of "
        f"{n_full:,} images (the labelled-only runs: their images repeated to that many) for every run, "
        f"training seed {p['seed']}, labels chosen with seed {p['labelled_seed']} (balanced per class), "
        f"{p['precision']} training. Evaluated on all 10,000 test images with k = {p['k']} importance samples "
        f"and N_w = {p['n_prior']} prior draws. Test error: the label predicted from the image alone "
        "(argmax p(w|z) at the mean of q(z|x)); log p(x) with q(z|x); log p(x|w) and log p(x, w) with the joint "
        "encoder (nats, higher is better). The Kingma et al. (2014) columns are their published test errors "
        "(a different model, trained to convergence), for scale, not a like-for-like comparison.",
        "",
        *lines,
        "",
        f"Written by `{command}`; the runs were measured on {', '.join(sorted({r['hardware'] for r in rows.values()})) or '—'}, "
        f"{config.threads} thread per run.",
        "" if not missing else f"Not yet measured with this protocol: {', '.join(missing)}.",
        "",
    ])


def write_report(config: SemiConfig, command: str) -> dict[str, Any]:
    rows = collect(config)
    table = {"protocol": config.protocol(), "command": command, "hardware": hardware(), "runs": rows,
             "kingma_2014_test_error": {m: {str(n): v for n, v in e.items()} for m, e in KINGMA_2014.items()}}
    config.out.mkdir(parents=True, exist_ok=True)
    ckpt.write_json(config.out / "semisupervised.json", table)
    ckpt.write_atomic(config.out / "semisupervised.md", markdown(config, rows, command).encode())
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jmvae.experiments.semisupervised", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results/mnist-semisupervised", help="where the table goes")
    parser.add_argument("--runs", help="run folders (default OUT/runs)")
    parser.add_argument("--data", default="mnist", help="a data set with class labels (mnist, fashion-mnist, digits)")
    parser.add_argument("--data-dir", help="data folder holding mnist/ (default: $JMVAE_DATA)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--labels", default=",".join(map(str, LABELS)), help="labelled images per run, comma-separated")
    parser.add_argument("--only", help="run names to train (comma-separated: paired, semi-100, labelled-only-100, ...)")
    parser.add_argument("--train-precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--n-prior", type=int, default=5000)
    parser.add_argument("--report-only", action="store_true", help="write the table from the run folders; train nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    config = SemiConfig(out, Path(args.runs) if args.runs else out / "runs", args.data_dir, args.epochs, args.data,
                        tuple(int(n) for n in args.labels.split(",")), precision=args.train_precision,
                        threads=args.threads, evaluation=EvalConfig(k=args.k, n_prior=args.n_prior))
    runs = all_runs(config.labels)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {r.name for r in runs}
        if unknown:
            print(f"semisupervised: unknown runs {sorted(unknown)}; choose from {[r.name for r in runs]}", file=sys.stderr)
            return 2
        runs = [r for r in runs if r.name in wanted]
    command = "python -m jmvae.experiments.semisupervised " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.report_only:
        for run in runs:
            run_one(config, run, lambda m: print(m, file=sys.stderr, flush=True))
    table = write_report(config, command)
    print(json.dumps({name: cells(row) for name, row in table["runs"].items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
