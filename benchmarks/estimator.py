"""Importance-weighted evaluation: jmvae's estimator against a plain chunked PyTorch estimator.

Both bound log p(x) of the same model (the paper's MNIST JMVAE, plain_loop.JMVAE's weights
copied into jmvae's JMVAE) on the same binarized MNIST test images, with the joint proposal
q(z|x,w) and k = 1000 samples:

    L_k = log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x, w),   z_i ~ q(z | x, w).

The plain estimator is what a user writes by hand: 10 images per chunk, all k samples at once,
z of shape (k, 10, 64), torch.no_grad. jmvae's is ``jmvae.estimators.iw_log_likelihoods`` as
``jmvae evaluate`` runs it (batches of 100 images, chunks of its default size,
inference mode), and the same under bfloat16 autocast as ``jmvae evaluate --precision bf16``
runs it. Prints one JSON line per estimator with importance samples/s (images x k / s)
and the mean bound; the two means must agree within their Monte-Carlo error.

    .venv/bin/python benchmarks/estimator.py --images 200 [--threads T]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F

import common
from plain_loop import JMVAE as PlainJMVAE

from jmvae import ModelConfig, build_model
from jmvae.data import image_label_modalities
from jmvae.estimators import iw_log_likelihoods


def copy_weights(plain: PlainJMVAE, ours) -> None:
    """plain_loop's layer names -> jmvae's (the Gaussian heads are fused: mean rows, then variance rows)."""
    sd = plain.state_dict()
    pairs = {
        "joint_encoder.branches.image.0": "joint_x.0", "joint_encoder.branches.label.0": "joint_w.0",
        "joint_encoder.trunk.0": "joint_body.0",
        "decoders.image.0": "dec_x.0.0", "decoders.image.2": "dec_x.0.2", "decoders.image.4": "dec_x.1",
        "decoders.label.0": "dec_w.0.0", "decoders.label.2": "dec_w.0.2", "decoders.label.4": "dec_w.1",
    }
    new = {}
    for a, b in pairs.items():
        new[f"{a}.weight"], new[f"{a}.bias"] = sd[f"{b}.weight"], sd[f"{b}.bias"]
    for kind in ("weight", "bias"):
        new[f"joint_encoder.head.linear.{kind}"] = torch.cat([sd[f"joint_head.mean.{kind}"], sd[f"joint_head.var.{kind}"]])
    missing = set(ours.state_dict()) - set(new)
    assert all(k.startswith("unimodal_encoders") for k in missing), missing
    ours.load_state_dict({**ours.state_dict(), **new})


@torch.no_grad()
def plain_bound(model: PlainJMVAE, x: torch.Tensor, w: torch.Tensor, k: int, chunk_images: int) -> torch.Tensor:
    out = []
    for start in range(0, len(x), chunk_images):
        xb, wb = x[start : start + chunk_images], w[start : start + chunk_images]
        mean, var = model.joint(xb, wb)
        std = var.sqrt()
        z = mean + std * torch.randn(k, *mean.shape)                       # (k, B, L)
        log_q = (-0.5 * ((z - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prior = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        logits = model.dec_x(z)                                            # (k, B, 784)
        log_px = -F.binary_cross_entropy_with_logits(logits, xb.expand_as(logits), reduction="none").sum(-1)
        out.append(torch.logsumexp(log_px + log_prior - log_q, 0) - math.log(k))
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--threads", type=int)
    p.add_argument("--data-dir")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder = common.mnist_dir(args.data_dir)
    images = torch.from_numpy(common.read_idx_images(folder / "t10k-images-idx3-ubyte.gz")[: args.images] / 255.0).float()
    labels = torch.from_numpy(common.read_idx_labels(folder / "t10k-labels-idx1-ubyte.gz")[: args.images].astype("int64"))
    x = (torch.rand(images.shape, generator=torch.Generator().manual_seed(0)) < images).float()
    w = labels if labels.dim() == 2 else F.one_hot(labels, 10).float()
    plain = PlainJMVAE().eval()
    ours = build_model(ModelConfig("jmvae-kl", image_label_modalities(28, 28, 10), 64, 512, alpha=0.1)).eval()
    copy_weights(plain, ours)

    batch = {"image": x.reshape(-1, 28, 28), "label": w.argmax(-1)}
    results = []
    for name in ("plain-estimator", "jmvae-estimator", "jmvae-estimator-bf16"):
        started = time.perf_counter()
        if name == "plain-estimator":
            values = plain_bound(plain, x, w, args.k, 10)
        else:
            precision = torch.autocast("cpu", dtype=torch.bfloat16) if name.endswith("bf16") else contextlib.nullcontext()
            parts = []
            for s in range(0, len(x), 100):
                b = {key: v[s : s + 100] for key, v in batch.items()}
                with torch.inference_mode(), precision:
                    q = ours.posterior(b, ("image", "label"))
                    parts.append(iw_log_likelihoods(ours, b, [("image",)], q, args.k)[("image",)])
            values = torch.cat(parts).double()
        seconds = time.perf_counter() - started
        results.append({"name": name, "samples_per_s": len(x) * args.k / seconds, "seconds": seconds,
                        "images": len(x), "k": args.k, "mean_bound": values.mean().item(),
                        "sem": (values.std() / math.sqrt(len(values))).item(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()})
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
