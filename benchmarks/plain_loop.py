"""A bare hand-written PyTorch JMVAE-kl training loop: "what a competent user writes by hand".

The paper's MNIST model (SETUP.md): joint encoder q(z|x,w) (x -> 512 ReLU, w -> 512 ReLU,
concatenated -> 512 ReLU -> mean, softplus variance), unimodal encoders q(z|x) 784-512-512 and
q(z|w) 10-512-512, decoders p(x|z) 64-512-512-784 (Bernoulli, sigmoid logits) and
p(w|z) 64-512-512-10 (Categorical), z = 64, prior N(0, I).
Loss per batch (mean over the batch): -[E_q log p(x|z) + E_q log p(w|z) - KL(q(z|x,w) || N(0,I))]
+ alpha * [KL(q(z|x,w) || q(z|x)) + KL(q(z|x,w) || q(z|w))], alpha = 0.1, one sample of z.
nn.Linear layers, hand formulas for the likelihoods and the Gaussian KLs, default
torch.optim.Adam (lr 1e-3), clip_grad_norm_ at 5, batch 100, real MNIST re-binarized per batch.

Runs in both venvs (torch 2.13 CPU in /work/main/.venv, 2.14.1 in /work/peers-venv):

    python benchmarks/plain_loop.py --steps 300 --warmup 30 [--threads T]

Prints one JSON line: {"name", "samples_per_s", "steps", "seconds", "torch", "threads", ...}.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F
from torch import nn

import common


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU after each (the last one too: these are hidden stacks)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    def __init__(self, hidden: int, z_dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(hidden, z_dim)
        self.var = nn.Linear(hidden, z_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(h), F.softplus(self.var(h))


class JMVAE(nn.Module):
    def __init__(self, x_dim: int = common.X_DIM, w_dim: int = common.W_DIM, z_dim: int = common.Z_DIM,
                 hidden: int = common.HIDDEN) -> None:
        super().__init__()
        # q(z | x, w)
        self.joint_x = mlp([x_dim, hidden])
        self.joint_w = mlp([w_dim, hidden])
        self.joint_body = mlp([2 * hidden, hidden])
        self.joint_head = GaussianHead(hidden, z_dim)
        # q(z | x), q(z | w)
        self.enc_x = nn.Sequential(mlp([x_dim, hidden, hidden]), GaussianHead(hidden, z_dim))
        self.enc_w = nn.Sequential(mlp([w_dim, hidden, hidden]), GaussianHead(hidden, z_dim))
        # p(x | z), p(w | z): logits
        self.dec_x = nn.Sequential(mlp([z_dim, hidden, hidden]), nn.Linear(hidden, x_dim))
        self.dec_w = nn.Sequential(mlp([z_dim, hidden, hidden]), nn.Linear(hidden, w_dim))

    def joint(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.joint_x(x), self.joint_w(w)], dim=-1)
        return self.joint_head(self.joint_body(h))


def kl_gauss(m1: torch.Tensor, v1: torch.Tensor, m2: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1, v1) || N(m2, v2)) for diagonal Gaussians (variances), summed over the last axis."""
    return 0.5 * (torch.log(v2) - torch.log(v1) + (v1 + (m1 - m2) ** 2) / v2 - 1).sum(-1)


def jmvae_kl_loss(model: JMVAE, x: torch.Tensor, w: torch.Tensor, alpha: float) -> torch.Tensor:
    mean, var = model.joint(x, w)
    z = mean + var.sqrt() * torch.randn_like(mean)
    log_px = -F.binary_cross_entropy_with_logits(model.dec_x(z), x, reduction="none").sum(-1)
    log_pw = (F.log_softmax(model.dec_w(z), dim=-1) * w).sum(-1)
    kl_prior = 0.5 * (var + mean**2 - 1 - torch.log(var)).sum(-1)
    mx, vx = model.enc_x(x)
    mw, vw = model.enc_w(w)
    kl_uni = kl_gauss(mean, var, mx, vx) + kl_gauss(mean, var, mw, vw)
    return (-(log_px + log_pw - kl_prior) + alpha * kl_uni).mean()


def main(argv: list[str] | None = None) -> None:
    def extra(p):
        p.add_argument("--alpha", type=float, default=common.ALPHA)
        p.add_argument("--clip", type=float, default=common.CLIP, help="gradient-norm clipping (0: off)")

    args = common.parse_args(__doc__.splitlines()[0], extra, argv)
    common.setup_torch(args)
    x_all, w_all, data = common.load_train(args.data_dir, args.seed, args.limit)
    batches = common.TensorBatches(x_all, w_all, args.batch_size, args.seed)

    model = JMVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=common.LR)
    model.train()

    timer = common.StepTimer(args.warmup, args.steps)
    total = 0.0
    for x, w, _ in batches:
        loss = jmvae_kl_loss(model, x, w, args.alpha)
        optimizer.zero_grad()
        loss.backward()
        if args.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        total += loss.item()
        if timer.step_done():
            break
    common.emit("plain-loop", args, timer, data=data, clip=args.clip or None,
                final_loss=loss.item(), mean_loss=total / timer.done)


if __name__ == "__main__":
    main()
