"""JMVAE-kl on three modalities (``mnist-fashion``: MNIST digit, label, Fashion-MNIST image of the
same class), and the three ways of inferring z from two of them (``jmvae.subsets``) compared.

    JMVAE_DATA=/work/shared/data python benchmarks/three_modalities.py --epochs 40 --threads 1 \
        --n-test 1000 --k 100 --n-prior 1000 --k-check 1000 --n-check 200

(the committed results/mnist-fashion/; ``--train-only`` stops after training). Steps, each
resumable (the run checkpoints every epoch; the judges are cached in ``OUT/runs/judges.pt``):

1. train JMVAE-kl (alpha 0.1, the paper's MNIST architecture per modality, a three-branch joint
   encoder) for ``--epochs`` epochs into ``OUT/runs/jmvae-kl`` (resumed if it is there);
2. fit one judge per image modality (``coherence.fit_judge``: MNIST train for ``image``,
   Fashion-MNIST train for ``fashion``, binary inputs);
3. coherence of generation on the whole test set for every non-empty strict subset S and every
   target m not in S, with each subset rule where |S| = 2 (``coherence.cross_coherence``);
   on the first ``--n-test`` test data, for each two-modality subset S and each proposal (the
   three rules, the joint encoder for reference), the importance-weighted bounds at ``--k``
   samples of log p(x_S) (a lower bound under every proposal: the higher, the tighter) and of
   log p(x_all) (the same bound with a proposal that has not seen the target: how well q(z|x_S)
   covers z that explain the target too), paired against the product's; and the evaluator's
   cells (``evaluation.evaluate``, k = ``--k``, N_w = ``--n-prior``); with ``--k-check K``, the
   bounds again at k = K on the first ``--n-check`` test data;
4. write ``OUT/results.json``, ``OUT/results.md`` and ``OUT/coherence.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from jmvae import presets
from jmvae.data import load_dataset
from jmvae.runs import load_run
from jmvae.training import train
from three_modalities_eval import evaluate_all  # beside this script


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/mnist-fashion")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--n-prior", type=int, default=1000)
    p.add_argument("--k-check", type=int, default=None, help="the bounds again at this k ...")
    p.add_argument("--n-check", type=int, default=200, help="... on this many test data")
    p.add_argument("--train-only", action="store_true")
    return p.parse_args()


def train_run(data, out: Path, epochs: int, threads: int) -> Path:
    run_dir = out / "runs" / "jmvae-kl"
    model_config, _ = presets.model_config("mnist-fashion", "jmvae-kl", data.modalities, alpha=0.1)
    train_config = presets.train_config("mnist-fashion", epochs=epochs, threads=threads, seed=0)
    train(model_config, train_config, data, run_dir, resume=True, progress=False, data_info=data.run_info())
    return run_dir


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data = load_dataset("mnist-fashion", os.environ.get("JMVAE_DATA"))
    started = time.perf_counter()
    run_dir = train_run(data, out, args.epochs, args.threads)
    print(f"trained to {args.epochs} epochs in {time.perf_counter() - started:.0f} s (this call)", flush=True)
    if args.train_only:
        return
    run = load_run(run_dir)
    command = "JMVAE_DATA=/work/shared/data python " + " ".join(sys.argv)
    started = time.perf_counter()
    check = (args.k_check, args.n_check) if args.k_check else None
    results = evaluate_all(run, data, out, args.n_test, args.k, args.n_prior, command, check)
    results["eval_seconds"] = round(time.perf_counter() - started, 1)
    results["machine"] = {"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__,
                          "python": platform.python_version()}
    results["run"] = {"model": run.config.model.to_dict(), "train": dataclasses.asdict(run.config.train),
                      "state": {k: v for k, v in run.state.items() if isinstance(v, (int, float, str))}}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
