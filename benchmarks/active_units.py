"""Active latent units of trained runs, beside their test log-likelihood where it was measured.

    .venv/bin/python benchmarks/active_units.py NAME=RUN_DIR [NAME=RUN_DIR ...] [--data mnist]

A unit is active when its posterior mean varies over the test set by more than 0.01 (Burda et
al. 2016; ``jmvae.evaluation``), counted for every proposal the model has, on all test images.
The count comes from ``jmvae.evaluation.evaluate`` with k = 1 and N_w = 1 (the bounds it also
returns are then meaningless and not shown); the log p(x) shown is the run's own full-protocol
evaluation (``evaluation.json`` in the run folder, written by ``jmvae reproduce``), if any.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from jmvae.config import EvalConfig
from jmvae.data import load_dataset
from jmvae.evaluation import evaluate
from jmvae.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = load_dataset(args.data).test
    for name, run_dir in (item.split("=", 1) for item in args.runs):
        loaded = load_run(run_dir)
        model, run = loaded.model, loaded.config
        units = evaluate(model, test, EvalConfig(k=1, n_prior=1)).active_units
        stored = Path(run_dir) / "evaluation.json"
        log_px = json.loads(stored.read_text())["log_likelihood"]["image"]["multiple"] if stored.is_file() else None
        print(json.dumps({"run": name, "seed": run.train.seed, "train_precision": run.train.precision,
                          "compile": run.train.compile, "active_units": units, "log_px_multiple": log_px}), flush=True)


if __name__ == "__main__":
    main()
