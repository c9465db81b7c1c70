r"""Reproducible reparameterised draws from ``torch.distributions`` objects.

``torch.distributions`` samples from torch's global generator only. The importance-weighted
estimator draws from a ``torch.Generator`` of its own (seeded per test batch, so sharded
evaluation gathers the single-process numbers), so it needs a draw that takes a generator and
is *exactly* the proposal whose ``log_prob`` weighs the sample:

- Normal:              z = loc + scale * eps,                       eps ~ N(0, I)
- MultivariateNormal:  z = loc + L eps (L the Cholesky factor of the covariance)
- Independent:         the base distribution's draw (event dims only change ``log_prob``)
- TransformedDistribution (LogNormal, ...): the transforms applied to the base's draw
- MixtureSameFamily (``subsets.ExpertMixture``): a component per sample, drawn from the mixing
                       weights, then that component's draw (reparameterised within it)
- any other distribution with an inverse CDF (Laplace, Cauchy, Uniform, Exponential, ...):
                       z = F^{-1}(u),  u ~ U(eps, 1 - eps) elementwise (inverse-transform sampling)

Anything else (StudentT, Gamma, ...) is refused with a ``TypeError`` naming it: a
silent Gaussian draw weighted by another density's ``log_prob`` is a biased estimate.
"""

from __future__ import annotations

import math

import torch
from torch import Size, Tensor
from torch.distributions import (Distribution, Independent, MixtureSameFamily, MultivariateNormal, Normal,
                                 TransformedDistribution)


def draw(dist: Distribution, sample_shape: tuple[int, ...] | Size, generator: torch.Generator | None = None) -> Tensor:
    """A sample of shape ``sample_shape + batch_shape + event_shape`` drawn with ``generator``
    (reparameterised: differentiable in the distribution's parameters); see the module docstring
    for the draw each family gets. ``generator=None``: torch's own ``rsample`` (or ``sample``).
    """
    sample_shape = Size(sample_shape)
    if generator is None:
        return dist.rsample(sample_shape) if dist.has_rsample else dist.sample(sample_shape)
    if isinstance(dist, Independent):
        return draw(dist.base_dist, sample_shape, generator)
    if isinstance(dist, TransformedDistribution):
        value = draw(dist.base_dist, sample_shape, generator)
        for transform in dist.transforms:
            value = transform(value)
        return value
    if isinstance(dist, Normal):
        return dist.loc + dist.scale * standard_normal(dist._extended_shape(sample_shape), dist.loc, generator)
    if isinstance(dist, MultivariateNormal):
        eps = standard_normal(dist._extended_shape(sample_shape), dist.loc, generator)
        return dist.loc + (dist.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    if isinstance(dist, MixtureSameFamily):
        return mixture_draw(dist, sample_shape, generator)
    return inverse_cdf_draw(dist, sample_shape, generator)


def mixture_draw(dist: MixtureSameFamily, sample_shape: Size, generator: torch.Generator | None) -> Tensor:
    """A draw of a mixture: per sample a component k ~ the mixing weights, then component k's
    draw (every component is drawn and the chosen one kept); ``generator=None``: torch's own."""
    probs = dist.mixture_distribution.probs  # (..., K)
    batch, k = probs.shape[:-1], probs.shape[-1]
    n = math.prod(sample_shape)
    chosen = torch.multinomial(probs.reshape(-1, k), n, replacement=True, generator=generator)  # (B', n)
    chosen = chosen.T.reshape(*sample_shape, *batch)
    values = draw(dist.component_distribution, sample_shape, generator)  # (S..., B..., K, event...)
    event = dist.event_shape
    index = chosen.reshape(*chosen.shape, 1, *(1 for _ in event)).expand(*chosen.shape, 1, *event)
    return values.gather(-1 - len(event), index).squeeze(-1 - len(event))


def at_noise(dist: Distribution, noise: Tensor) -> Tensor:
    """The reparameterised sample z = loc + scale * noise of a diagonal Gaussian (a Normal, or an
    Independent of one) at given standard-normal ``noise``: training draws its noise from a
    generator of its own, so that data-parallel ranks take the rows of one global draw."""
    normal = dist.base_dist if isinstance(dist, Independent) else dist
    return normal.loc + normal.scale * noise


def standard_normal(shape: Size, like: Tensor, generator: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def inverse_cdf_draw(dist: Distribution, sample_shape: Size, generator: torch.Generator) -> Tensor:
    """F^{-1}(u) for u uniform in (eps, 1 - eps); ``TypeError`` if ``dist`` has no inverse CDF."""
    shape = dist._extended_shape(sample_shape)
    like = dist.mean
    tiny = torch.finfo(like.dtype).eps
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype).clamp(tiny, 1 - tiny)
    try:
        return dist.icdf(u)
    except NotImplementedError:
        raise TypeError(
            f"cannot draw a reproducible sample from a {type(dist).__name__} proposal (no inverse CDF); "
            "use a Normal, MultivariateNormal, a transformed or an invertible-CDF distribution, "
            "or pass generator=None to sample from torch's global generator"
        ) from None
