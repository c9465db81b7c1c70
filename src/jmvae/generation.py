"""Generating modalities from others, and the class probabilities of a label given others.

``generate(model, given, n)`` draws z ~ r(z | given) n times from the model's generation latent
(JMVAE: r = q(z | given); CVAE and CMMA: their prior given w; nothing given: p(z)), by the
reparameterisation z = loc + scale * eps, eps ~ N(0, I) (a mixture of experts: an expert per draw,
``distributions.draw``), and returns the decoders'
distributions p(x_m | z). ``class_probabilities`` gives p(w | z) at z = the mean of q(z | given),
the one point that summarises the posterior, so that a prediction is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch.distributions import Distribution, MixtureSameFamily

from jmvae.distributions import draw
from jmvae.errors import JMVAEError
from jmvae.models import MultimodalModel


@torch.inference_mode()
def generate(model: MultimodalModel, given: Mapping[str, Tensor], n: int, generator: torch.Generator | None = None) -> dict[str, Distribution]:
    """p(x_m | z) for n draws of z given ``given`` (each given value is a batch of one)."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in given.items()}
    latent = model.generation_latent(batch, tuple(batch))  # nothing given: the prior p(z)
    latent_dim = model.config.latent_dim
    if isinstance(latent, MixtureSameFamily):  # JMVAE-kl's mixture of experts (jmvae.subsets)
        z = draw(latent, (n,), generator).reshape(n, latent_dim)
    else:
        loc = latent.base_dist.loc.reshape(-1, latent_dim).expand(n, -1)  # (n, L)
        scale = latent.base_dist.scale.reshape(-1, latent_dim).expand(n, -1)
        z = loc + scale * torch.randn(loc.shape, generator=generator, device=device, dtype=loc.dtype)
    decode_batch = {k: v.expand(n, *v.shape[1:]) for k, v in batch.items()}
    return model.decode(z, decode_batch)


@torch.inference_mode()
def class_probabilities(model: MultimodalModel, batch: Mapping[str, Tensor], target: str, given: tuple[str, ...]) -> Tensor:
    """(N, C) class probabilities of ``target`` for a batch: p(target | z = mean of q(z | given))."""
    if target not in model.generated:
        raise JMVAEError(f"{model.config.display_name} cannot predict {target!r}; it generates {model.generated}")
    z = model.posterior(batch, given).mean
    return model.decode(z, batch)[target].probs
