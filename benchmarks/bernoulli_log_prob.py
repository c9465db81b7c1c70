"""Cost and precision of the Bernoulli log-likelihood forms on an importance-sampling-sized decode.

    python benchmarks/bernoulli_log_prob.py [--threads 1] [--rounds 9] [--evaluate]

Logits of shape (S, B, D) = (25, 100, 784), the rows one evaluation chunk decodes on a CPU,
confident and mostly right as a trained decoder's; x binary (20% ones) or [0, 1] intensities.
Forms, each summed over D:

- binary-only:   log sigmoid((2x - 1) l)                        (jmvae before; wrong for intensities)
- library:       log sigmoid((2b - 1) l) + (x - b) l, b = round(x)   (jmvae.likelihoods.log_prob)
- softplus:      x l - softplus(l)
- bce:           -binary_cross_entropy_with_logits(l, x)

Prints one JSON line: the hardware, the median milliseconds per call of each form (interleaved rounds,
so drift hits every form alike) and each form's largest error against float64. ``--evaluate``
adds the end-to-end cost: ``evaluate`` of an (untrained) MNIST JMVAE-kl on 100 binarised test
images at k = N_w = 200 with the binary-only form and with the library's, interleaved, and whether
the two give the same numbers (needs MNIST under $JMVAE_DATA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from jmvae.config import Modality
from jmvae.likelihoods import log_prob
from jmvae.experiments.hardware import hardware

FORMS = {
    "binary-only": lambda logits, x: F.logsigmoid(logits * (2 * x - 1)).sum(-1),
    "library": lambda logits, x: log_prob(Modality("x", (784,), "bernoulli"), logits, x),
    "softplus": lambda logits, x: (x * logits - F.softplus(logits)).sum(-1),
    "bce": lambda logits, x: -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--evaluate", action="store_true", help="also time evaluate() end to end (MNIST)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(100, 784, generator=g) < 0.2).float()
    intensities = torch.rand(100, 784, generator=g)
    logits = (2 * x - 1) * (torch.randn(25, 100, 784, generator=g).abs() * 6 + 2)
    logits[..., :40] *= -1  # some confidently wrong pixels

    def reference(values: torch.Tensor) -> torch.Tensor:
        return (values.double() * logits.double() - F.softplus(logits.double())).sum(-1)

    errors = {name: {"binary": float((f(logits, x).double() - reference(x)).abs().max()),
                     "intensities": float((f(logits, intensities).double() - reference(intensities)).abs().max())}
              for name, f in FORMS.items()}
    times: dict[str, list[float]] = {name: [] for name in FORMS}
    for _ in range(args.rounds):
        for name, f in FORMS.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                f(logits, x)
            times[name].append((time.perf_counter() - start) / args.calls * 1e3)
    result = {"hardware": hardware(),
              "ms_median": {n: round(statistics.median(t), 3) for n, t in times.items()}, "max_abs_error_nats": errors}
    if args.evaluate:
        result["evaluate"] = evaluate_both(args.rounds)
    print(json.dumps(result))


def evaluate_both(rounds: int) -> dict:
    """Median seconds of one ``evaluate`` with each form, and whether their cells are equal."""
    import os

    from jmvae import ModelConfig, build_model
    from jmvae import likelihoods
    from jmvae.config import EvalConfig
    from jmvae.data import load_dataset
    from jmvae.evaluation import evaluate

    data = load_dataset("mnist", os.environ.get("JMVAE_DATA"))
    torch.manual_seed(0)
    model = build_model(ModelConfig("jmvae-kl", data.modalities, alpha=0.1))
    test = {k: v[:100] for k, v in data.test.items()}
    library = likelihoods.log_prob

    def binary_only(modality, params, value):
        if modality.likelihood == "bernoulli":
            return FORMS["binary-only"](params, value.reshape(*value.shape[: value.dim() - len(modality.shape)], -1))
        return library(modality, params, value)

    seconds: dict[str, list[float]] = {"binary-only": [], "library": []}
    cells = {}
    try:
        for _ in range(rounds):
            for name, form in (("binary-only", binary_only), ("library", library)):
                likelihoods.log_prob = form
                start = time.perf_counter()
                cells[name] = evaluate(model, test, EvalConfig(k=200, n_prior=200)).log_likelihood
                seconds[name].append(time.perf_counter() - start)
    finally:
        likelihoods.log_prob = library
    return {"seconds_median": {n: round(statistics.median(t), 3) for n, t in seconds.items()},
            "same_cells": cells["binary-only"] == cells["library"]}


if __name__ == "__main__":
    main()
