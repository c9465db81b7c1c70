r"""The two players' losses of the GAN variants (the game: ``jmvae.adversarial``).

    discriminator:  L_D = -log D(x) - log(1 - D(x_rec)) - log(1 - D(x_prior))
    generator:      L_G = -log D(x_rec) - log D(x_prior)          (non-saturating)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jmvae import likelihoods
from jmvae.adversarial.discriminator import Discriminator
from jmvae.distributions import at_noise


def image_mean(model, z: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
    """The mean of p(x | z[, w]) for the model's first modality (the image)."""
    name = model.config.names[0]
    params = model.decoders[name](model.decoder_input(z, batch))
    return likelihoods.mean(model.config.modality(name), likelihoods.distribution(model.config.modality(name), params))


def prior_draw(model, batch: Mapping[str, Tensor], noise: Tensor) -> Tensor:
    """z ~ p(z) (p(z | w) for the CMMA) from standard-normal ``noise`` (B, L)."""
    return at_noise(model.prior(batch), noise)


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


def gan_losses(model, discriminator: Discriminator, batch: Mapping[str, Tensor], z: Tensor, prior_noise: Tensor,
               real_label: float = 1.0, real: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(L_G, L_D, mean D(x) on real images) for one batch; see ``jmvae.adversarial``.

    L_G's gradient reaches the image decoder only (z is detached; the discriminator's
    parameters are frozen while L_G's graph is built); L_D's reaches the discriminator only.
    ``real_label`` < 1 is one-sided label smoothing. ``real``: the real images D sees (default:
    the batch's); for binarized images the training loop gives the intensities, since decoded
    means are never exactly 0 or 1 and D would tell them from bits by that alone.
    """
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
