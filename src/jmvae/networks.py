"""Encoders and decoders, independent of any objective.

Shapes: B batch, S importance/Monte-Carlo samples, L latent dims, H hidden units, D features.

The builders ``modality_encoder``, ``modality_branch`` and ``modality_decoder`` are the one seam
where a modality's network is chosen; today every modality gets an MLP (the paper's MNIST
architecture), and convolutional networks for images plug in here.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from jmvae.config import Modality
from jmvae.likelihoods import decoder_width


def mlp(sizes: list[int], activate_last: bool = False) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or activate_last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """Diagonal Gaussian from features: mean = W_mu h + b_mu, variance = softplus(W_v h + b_v) + min_var.

    Mean and variance come from one fused (H, 2L) product (the same model as two separate layers).
    """

    def __init__(self, in_features: int, latent_dim: int, min_variance: float) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * latent_dim)
        self.min_variance = min_variance

    def forward(self, h: Tensor) -> Independent:
        mean, pre_variance = self.linear(h).float().chunk(2, dim=-1)  # float32 even under bf16 autocast
        variance = F.softplus(pre_variance) + self.min_variance
        return Independent(Normal(mean, variance.sqrt(), validate_args=False), 1)


class GaussianEncoder(nn.Module):
    """q(z | input): D -> H -> H -> (mean, variance), ReLU. Used for unimodal encoders q(z|x_m),
    the VAE's encoder and the CMMA's prior network p(z|w)."""

    def __init__(self, in_features: int, hidden_dim: int, latent_dim: int, min_variance: float) -> None:
        super().__init__()
        self.body = mlp([in_features, hidden_dim, hidden_dim], activate_last=True)
        self.head = GaussianHead(hidden_dim, latent_dim, min_variance)

    def forward(self, x: Tensor) -> Independent:
        return self.head(self.body(x))


class JointEncoder(nn.Module):
    """q(z | x_1, ..., x_M): each modality -> H (ReLU), concatenated -> H (ReLU) -> (mean, variance).

    A modality given as ``None`` is zero-filled at the input of its branch (JMVAE-zero's
    inference with a missing modality, Suzuki et al. 2016, Sec. 3.3).
    """

    def __init__(self, modalities: tuple[Modality, ...], hidden_dim: int, latent_dim: int, min_variance: float) -> None:
        super().__init__()
        self.modalities = modalities
        self.branches = nn.ModuleDict({m.name: modality_branch(m, hidden_dim) for m in modalities})
        self.trunk = mlp([hidden_dim * len(modalities), hidden_dim], activate_last=True)
        self.head = GaussianHead(hidden_dim, latent_dim, min_variance)

    def forward(self, inputs: Mapping[str, Tensor | None]) -> Independent:
        batch = next(v.shape[0] for v in inputs.values() if v is not None)
        like = next(v for v in inputs.values() if v is not None)
        features = []
        for m in self.modalities:
            x = inputs.get(m.name)
            if x is None:
                x = like.new_zeros(batch, m.features)
            features.append(self.branches[m.name](x))
        return self.head(self.trunk(torch.cat(features, dim=-1)))


def modality_branch(modality: Modality, hidden_dim: int) -> nn.Module:
    """The first layer of a joint encoder for one modality: D_m -> H, ReLU."""
    return mlp([modality.features, hidden_dim], activate_last=True)


def modality_encoder(modality: Modality, hidden_dim: int, latent_dim: int, min_variance: float) -> GaussianEncoder:
    """A unimodal encoder q(z | x_m)."""
    return GaussianEncoder(modality.features, hidden_dim, latent_dim, min_variance)


def modality_decoder(modality: Modality, hidden_dim: int, in_features: int) -> nn.Module:
    """A decoder for p(x_m | z) (or p(x_m | z, w) when ``in_features`` includes w):
    in -> H -> H -> distribution parameters (logits or mean [and log-scale]), ReLU."""
    return mlp([in_features, hidden_dim, hidden_dim, decoder_width(modality)])
