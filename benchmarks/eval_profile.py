"""Where a full-protocol evaluation's time goes: is there anything left for evaluating models together?

    python benchmarks/eval_profile.py [--model jmvae-kl] [--images 20] [--threads 1]

Issue 15 asks for members evaluated together "where that is faster". Stacking models can only
save per-operation overhead, so it helps a step only when its matrix products run well below
the machine's product rate. This evaluates one MNIST model of the paper's architecture (untrained:
the cost does not depend on the weights) with the paper's protocol (k = 1000, N_w = 5000) on
``--images`` binarised MNIST test images under ``torch.profiler`` (``with_flops``), and prints one
JSON line: seconds per test image (timed without the profiler), the matrix products' share of
that time (their own CPU time under the profiler), their GFLOP/s, and a (2500 x 512) @ (512 x 512) product's GFLOP/s measured in the same run (the
size of one chunk of the decoder's first hidden layer).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.profiler import ProfilerActivity, profile

from jmvae import EvalConfig, ModelConfig, build_model, evaluate
from jmvae.data import load_dataset
from jmvae.experiments.hardware import hardware
from stacked_step import matmul_gflops

PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jmvae-kl", choices=("vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"))
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    test = {name: values[: args.images] for name, values in data.test.items()}
    torch.manual_seed(0)
    model = build_model(ModelConfig(args.model, data.modalities, **({"alpha": 0.1} if args.model == "jmvae-kl" else {})))
    config = EvalConfig(k=1000, n_prior=5000, batch_size=args.images)
    evaluate(model, {k: v[:2] for k, v in test.items()}, EvalConfig(k=10, n_prior=10))  # warm-up
    start = time.perf_counter()
    evaluate(model, test, config)
    seconds = time.perf_counter() - start  # without the profiler, whose overhead inflates the small operators
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        evaluate(model, test, config)
    products = [e for e in prof.key_averages() if e.key in PRODUCTS]
    product_us = sum(e.self_cpu_time_total for e in products)
    flops = sum(e.flops for e in products)
    print(json.dumps({"hardware": hardware(), "threads": args.threads, "model": args.model, "images": args.images,
                      "k": config.k, "n_prior": config.n_prior,
                      "seconds_per_test_image": round(seconds / args.images, 4),
                      "products_share_of_wall_time": round(product_us / 1e6 / seconds, 3),
                      "products_gflops": round(flops / product_us / 1e3, 1),
                      "gflop_per_test_image": round(flops / args.images / 1e9, 2),
                      "mm_2500x512x512_gflops": round(matmul_gflops(rounds=20, rows=2500), 1)}))


if __name__ == "__main__":
    main()
