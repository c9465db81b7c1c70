r"""The GAN variants (VAE-GAN, CVAE-GAN, CMMA-GAN, JMVAE-GAN): a discriminator on the image.

As in the authors' code (Tars' VAE-GAN and multimodal VAE-GAN, after Larsen et al. 2016), a
discriminator D(x) -> P(x is real) is trained against the decoder of the model's first modality
(the image). With x the data, x_rec the decoder's mean at z ~ q(z | inputs) (the training
posterior sample of the bound) and x_prior its mean at z ~ p(z) (p(z | w) for the CMMA):

    discriminator:  L_D = -log D(x) - log(1 - D(x_rec)) - log(1 - D(x_prior))
    generator:      L_G = -log D(x_rec) - log D(x_prior)          (non-saturating)

and the model minimises  -bound + gan_weight * L_G , where the generator term reaches only the
image decoder: x_rec is decoded from a detached z, so the encoders are trained by the bound
alone (Tars: the encoder's update has no GAN term; the image decoder's loss is
-log p(x | z) + L_G with GAN weight 1).

Stabilising choices (standard, and each one a flag or a documented default): the
non-saturating generator loss; leaky-ReLU discriminator without batch norm; Adam with
beta1 = 0.5 (the paper's CelebA setting); the reconstruction likelihood kept in the decoder's
loss, which anchors it; optional one-sided label smoothing (``TrainConfig.gan_real_label``).
Both players take one Adam step per batch from the same forward pass (simultaneous updates;
Tars updates them one after the other, recomputing in between).

Differences from Tars, stated: prior draws come from the model's prior N(0, I) (Tars fed
uniform(-1, 1) noise to the decoder); one optimizer with two parameter groups (Tars: three
optimizers with equal settings; Adam is per parameter, so the update rule is the same).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jmvae import likelihoods
from jmvae.config import Modality
from jmvae.networks import CONV_CHANNELS

LEAK = 0.2


class Discriminator(nn.Module):
    """D(x): image -> one logit (log D / (1 - D)).

    Convolutional images: 4x4 stride-2 convolutions 64, 128, 256, 256 with leaky ReLU, flatten,
    a dense layer of ``hidden_dim`` (1024 in the paper) with leaky ReLU, one output. Flat data
    (MNIST's 784 pixels): D -> hidden -> hidden (leaky ReLU) -> 1.
    """

    def __init__(self, modality: Modality, hidden_dim: int = 1024) -> None:
        super().__init__()
        self.shape = modality.shape
        if modality.network == "conv":
            layers: list[nn.Module] = []
            previous = modality.shape[0]
            for out in CONV_CHANNELS:
                layers += [nn.Conv2d(previous, out, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(LEAK)]
                previous = out
            scale = 2 ** len(CONV_CHANNELS)
            flat = previous * (modality.shape[1] // scale) * (modality.shape[2] // scale)
            self.features: nn.Module = nn.Sequential(*layers, nn.Flatten())
        else:
            flat = modality.features
            self.features = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden_dim), nn.LeakyReLU(LEAK))
            flat = hidden_dim
        self.head = nn.Sequential(nn.Linear(flat, hidden_dim), nn.LeakyReLU(LEAK), nn.Linear(hidden_dim, 1))
        self.conv = modality.network == "conv"

    def forward(self, x: Tensor) -> Tensor:
        """(B, *shape) or flat (B, D) images -> (B,) logits."""
        x = x.reshape(len(x), *self.shape) if self.conv else x.reshape(len(x), -1)
        return self.head(self.features(x.to(self.head[0].weight.dtype))).squeeze(-1)


def image_mean(model, z: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
    """The mean of p(x | z[, w]) for the model's first modality (the image)."""
    name = model.config.names[0]
    params = model.decoders[name](model.decoder_input(z, batch))
    return likelihoods.mean(model.config.modality(name), likelihoods.distribution(model.config.modality(name), params))


def prior_draw(model, batch: Mapping[str, Tensor], noise: Tensor) -> Tensor:
    """z ~ p(z) (p(z | w) for the CMMA) from standard-normal ``noise`` (B, L)."""
    prior = model.prior(batch)
    return prior.base_dist.loc + prior.base_dist.scale * noise


@contextmanager
def batch_norm_statistics_kept(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in training mode (batch statistics) without changing its batch norms'
    running statistics: the GAN's extra decoder passes (reconstructions, prior draws) must not
    move the statistics the decoder is evaluated with."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    names = ("running_mean", "running_var", "num_batches_tracked")
    kept = [{name: getattr(m, name) for name in names} for m in norms]
    for m, buffers in zip(norms, kept):  # the passes update copies (autograd keeps them); the originals stay
        for name, buffer in buffers.items():
            setattr(m, name, buffer.clone())
    try:
        yield
    finally:
        for m, buffers in zip(norms, kept):
            for name, buffer in buffers.items():
                setattr(m, name, buffer)


def gan_losses(model, batch: Mapping[str, Tensor], z: Tensor, prior_noise: Tensor,
               real_label: float = 1.0, real: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(L_G, L_D, mean D(x) on real images) for one batch; see the module docstring.

    L_G's gradient reaches the image decoder only (z is detached; the discriminator's
    parameters are frozen while L_G's graph is built); L_D's reaches the discriminator only.
    ``real_label`` < 1 is one-sided label smoothing. ``real``: the real images D sees (default:
    the batch's); for binarized images the training loop gives the intensities, since decoded
    means are never exactly 0 or 1 and D would tell them from bits by that alone.
    """
    discriminator: Discriminator = model.discriminator
    real = batch[model.config.names[0]] if real is None else real
    with torch.no_grad():
        z_prior = prior_draw(model, batch, prior_noise)
    with batch_norm_statistics_kept(model.decoders[model.config.names[0]]):
        fakes = torch.cat([image_mean(model, z.detach(), batch), image_mean(model, z_prior, batch)])
    for p in discriminator.parameters():
        p.requires_grad_(False)
    try:
        generator = F.softplus(-discriminator(fakes)).mean() * 2  # -log D(x_rec) - log D(x_prior), batch means
    finally:
        for p in discriminator.parameters():
            p.requires_grad_(True)
    real_logits = discriminator(real)
    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    disc = real_term + F.softplus(discriminator(fakes.detach())).mean() * 2
    return generator, disc, torch.sigmoid(real_logits.detach()).mean()
