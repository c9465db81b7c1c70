"""Encoders and decoders, independent of any objective.

Shapes: B batch, S importance/Monte-Carlo samples, L latent dims, H hidden units, D features.

The builders ``modality_encoder``, ``modality_branch`` and ``modality_decoder`` are the one seam
where a modality's network is chosen, by ``Modality.network``:

- ``"mlp"``: the paper's MNIST architecture (ReLU layers of ``hidden_dim`` units);
- ``"conv"``: an image (C, H, W) with the paper's CelebA networks (the authors' code):
  an encoder of four 4x4 stride-2 convolutions with 64, 128, 256, 256 channels, batch norm after
  all but the first, ReLU (64x64 -> 256x4x4 = 4096 features), and a mirrored decoder: dense
  -> 256 x H/16 x W/16 (ReLU) -> 4x4 stride-2 transposed convolutions with 256, 128, 64 channels
  (batch norm, ReLU) and a last one to C channels (linear; 2C for a learned Gaussian scale).

Every network reads and writes flat vectors, whatever the modality's shape: encoders get
(B, D) (``likelihoods.encoder_input``), decoders return (..., decoder_width) for any leading
dims, so objectives and estimators do not know which architecture they drive.

A modality's own layers are ``modality.hidden_dim`` wide when it sets one, else the model's
``hidden_dim``; a joint encoder's shared layer is always the model's ``hidden_dim``. The paper's
CelebA model is hidden_dim 1024 (the joint layer and the dense layer after the image encoder's
convolutions) with the attribute modality at 512 (``jmvae.presets.paper_model_config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from jmvae.config import Modality
from jmvae.likelihoods import decoder_width

CONV_CHANNELS: tuple[int, ...] = (64, 128, 256, 256)
"""Encoder channels; the decoder runs them backwards (256, 128, 64) and ends in the image's."""


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
    """q(z | x_1, ..., x_M): each modality -> its branch's features, concatenated -> H (ReLU) -> (mean, variance).

    A branch is ``branch_layers`` ReLU layers of H_m units for an MLP modality (one in the MNIST
    architecture) and the convolution stack for an image (4096 features at 64x64). A modality given as ``None`` is zero-filled at the input of its
    branch (JMVAE-zero's inference with a missing modality, Suzuki et al. 2016, Sec. 3.3).
    """

    def __init__(self, modalities: tuple[Modality, ...], hidden_dim: int, latent_dim: int, min_variance: float) -> None:
        super().__init__()
        self.modalities = modalities
        self.branches = nn.ModuleDict({m.name: modality_branch(m, hidden_dim) for m in modalities})
        width = sum(branch_width(self.branches[m.name]) for m in modalities)
        self.trunk = mlp([width, hidden_dim], activate_last=True)
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


# -- convolutional networks for images -----------------------------------------------------------


class ConvFeatures(nn.Module):
    """Flat images (..., C*H*W) -> features (..., 256 * H/16 * W/16): four 4x4 stride-2
    convolutions (64, 128, 256, 256 channels), batch norm after all but the first, ReLU."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        channels, height, width = shape
        self.shape = (channels, height, width)
        layers: list[nn.Module] = []
        previous = channels
        for i, out in enumerate(CONV_CHANNELS):
            # a convolution followed by batch norm needs no bias (the norm's shift replaces it)
            layers.append(nn.Conv2d(previous, out, kernel_size=4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            previous = out
        self.net = nn.Sequential(*layers)
        scale = 2 ** len(CONV_CHANNELS)
        self.out_features = previous * (height // scale) * (width // scale)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        h = self.net(x.reshape(-1, *self.shape))
        return h.reshape(*lead, self.out_features)


class ConvEncoder(nn.Module):
    """q(z | image): convolutions -> flatten -> H (ReLU) -> (mean, variance)."""

    def __init__(self, shape: tuple[int, ...], hidden_dim: int, latent_dim: int, min_variance: float) -> None:
        super().__init__()
        features = ConvFeatures(shape)
        self.body = nn.Sequential(features, nn.Linear(features.out_features, hidden_dim), nn.ReLU())
        self.head = GaussianHead(hidden_dim, latent_dim, min_variance)

    def forward(self, x: Tensor) -> Independent:
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    """(..., in_features) -> dense 256 x H/16 x W/16 (ReLU) -> transposed convolutions 256, 128, 64
    (4x4, stride 2, batch norm, ReLU) -> C' channels (linear) -> flat (..., C' * H * W).

    ``out_channels`` is the image's channels, or twice that for a learned Gaussian scale: the
    first half of the flat output (the first C channels) is the mean, the second the log-scale,
    as ``likelihoods.distribution`` reads it.
    """

    def __init__(self, shape: tuple[int, ...], in_features: int, out_channels: int) -> None:
        super().__init__()
        _, height, width = shape
        scale = 2 ** len(CONV_CHANNELS)
        top = CONV_CHANNELS[-1]
        self.start = (top, height // scale, width // scale)
        self.dense = nn.Sequential(nn.Linear(in_features, math.prod(self.start)), nn.ReLU())
        layers: list[nn.Module] = []
        previous = top
        for out in reversed(CONV_CHANNELS[:-1]):  # 256, 128, 64: the encoder's channels backwards
            layers += [nn.ConvTranspose2d(previous, out, kernel_size=4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU()]
            previous = out
        layers.append(nn.ConvTranspose2d(previous, out_channels, kernel_size=4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)
        self.out_features = out_channels * height * width

    def forward(self, h: Tensor) -> Tensor:
        lead = h.shape[:-1]
        x = self.dense(h.reshape(-1, h.shape[-1])).reshape(-1, *self.start)
        return self.net(x).reshape(*lead, self.out_features)


# -- the seam: one network per modality ----------------------------------------------------------


def width_of(modality: Modality, hidden_dim: int) -> int:
    """Width of a modality's own hidden layers: its ``hidden_dim`` if set, else the model's."""
    return modality.hidden_dim or hidden_dim


def branch_width(branch: nn.Module) -> int:
    """How many features a branch built by ``modality_branch`` outputs."""
    if isinstance(branch, ConvFeatures):
        return branch.out_features
    return next(layer for layer in reversed(branch) if isinstance(layer, nn.Linear)).out_features


def modality_branch(modality: Modality, hidden_dim: int) -> nn.Module:
    """The first layers of a joint encoder for one modality: D_m -> H_m (ReLU), ``branch_layers``
    times, for an MLP modality; the convolution stack (flattened) for an image."""
    if modality.network == "conv":
        return ConvFeatures(modality.shape)
    h = width_of(modality, hidden_dim)
    return mlp([modality.features] + [h] * modality.branch_layers, activate_last=True)


def modality_encoder(modality: Modality, hidden_dim: int, latent_dim: int, min_variance: float) -> nn.Module:
    """A unimodal encoder q(z | x_m): ``GaussianEncoder`` (MLP) or ``ConvEncoder`` (image)."""
    if modality.network == "conv":
        return ConvEncoder(modality.shape, width_of(modality, hidden_dim), latent_dim, min_variance)
    return GaussianEncoder(modality.features, width_of(modality, hidden_dim), latent_dim, min_variance)


def modality_decoder(modality: Modality, hidden_dim: int, in_features: int) -> nn.Module:
    """A decoder for p(x_m | z) (or p(x_m | z, w) when ``in_features`` includes w), outputting
    the likelihood's parameters (logits or mean [and log-scale]), flat:
    in -> H -> H -> parameters (ReLU) for an MLP modality, ``ConvDecoder`` for an image."""
    if modality.network == "conv":
        out_channels = decoder_width(modality) // math.prod(modality.shape[1:])
        return ConvDecoder(modality.shape, in_features, out_channels)
    h = width_of(modality, hidden_dim)
    return mlp([in_features, h, h, decoder_width(modality)])
