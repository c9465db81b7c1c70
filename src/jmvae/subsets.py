r"""Inferring z from a strict subset S of two or more modalities out of unimodal experts.

JMVAE-kl has a joint encoder q(z | x_1..x_M) and one unimodal encoder q_m(z | x_m) =
N(mu_m, diag sigma_m^2) per modality; with three or more modalities a subset S (2 <= |S| < M)
has no encoder of its own, and its posterior is made of its members' experts
(``ModelConfig.subset_inference``):

- ``"product"`` (the default): the normalised product of the experts,
  q_S(z) ∝ prod_{m in S} q_m(z): precisions add, lambda = sum_m lambda_m (lambda_m = sigma_m^-2),
  mean = sum_m lambda_m mu_m / lambda. Each q_m(z | x_m) ≈ p(z | x_m) ∝ p(z) p(x_m | z) already
  holds the prior, so the product counts it |S| times.
- ``"prior-product"`` (the MVAE's correction, Wu & Goodman 2018):
  q_S(z) ∝ prod_{m in S} q_m(z) / p(z)^(|S|-1), the exact p(z | x_S) if every expert were its
  modality's exact posterior (p(z | x_S) ∝ p(z) prod_m p(x_m | z)). With p(z) = N(mu_0, lambda_0^-1):
  lambda = sum_m lambda'_m - (|S|-1) lambda_0, mean = (sum_m lambda'_m mu_m - (|S|-1) lambda_0 mu_0)
  / lambda. Positivity guard: a learned expert may be wider than the prior in some dimension
  (lambda_m < lambda_0: its implied likelihood factor q_m / p would have negative precision), so
  every expert's precision is floored at the prior's, lambda'_m = max(lambda_m, lambda_0), keeping
  its mean; then lambda >= lambda_0 > 0 (the result is never wider than the prior).
  ``floored_fraction`` reports how often the floor acts.
- ``"mixture"`` (a uniform mixture of experts, MMVAE's, Shi et al. 2019):
  q_S(z) = (1/|S|) sum_{m in S} q_m(z); log q_S(z) = logsumexp_m log q_m(z) - log |S|.
  A draw picks an expert uniformly per sample, then z = mu_m + sigma_m * eps (reparameterised in
  the experts' parameters; the choice is discrete). ``ExpertMixture``, a ``MixtureSameFamily``
  whose ``log_prob`` is that logsumexp, so the importance-weighted estimator weighs its samples
  by the mixture's density (``distributions.draw`` draws it reproducibly).

A single expert (|S| = 1) is its own posterior under every rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Size, Tensor
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from jmvae.config import SUBSET_RULES
from jmvae.distributions import mixture_draw

__all__ = ["SUBSET_RULES", "ExpertMixture", "floored_fraction", "prior_corrected_product", "product_of_gaussians",
           "subset_posterior", "using_rule"]


def standard_prior(like: Independent) -> Independent:
    """N(0, I) of ``like``'s event shape, on its device and dtype (JMVAE's prior p(z))."""
    loc = like.base_dist.loc
    zeros = torch.zeros(loc.shape[-1], device=loc.device, dtype=loc.dtype)
    return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)


def product_of_gaussians(experts: Sequence[Independent]) -> Independent:
    """The normalised product of diagonal Gaussians: precisions add, means are precision-weighted
    (``"product"``; the only subset rule before ``subset_inference`` existed, bit for bit)."""
    precisions = torch.stack([e.base_dist.scale.pow(-2) for e in experts])
    means = torch.stack([e.base_dist.loc for e in experts])
    precision = precisions.sum(0)
    mean = (precisions * means).sum(0) / precision
    return Independent(Normal(mean, precision.rsqrt(), validate_args=False), 1)


def floored_precisions(experts: Sequence[Independent], prior: Independent) -> tuple[Tensor, Tensor]:
    """(|S|, B, L) expert precisions floored at the prior's, and (B, L) the prior's precision."""
    prior_precision = prior.base_dist.scale.pow(-2)
    precisions = torch.stack([e.base_dist.scale.pow(-2) for e in experts])
    return torch.maximum(precisions, prior_precision), prior_precision.expand_as(precisions[0])


def prior_corrected_product(experts: Sequence[Independent], prior: Independent | None = None) -> Independent:
    """prod_m q_m(z) / p(z)^(|S|-1), each expert's precision floored at the prior's (``"prior-product"``);
    ``prior`` default N(0, I)."""
    if len(experts) == 1:
        return experts[0]
    prior = prior or standard_prior(experts[0])
    precisions, prior_precision = floored_precisions(experts, prior)
    means = torch.stack([e.base_dist.loc for e in experts])
    extra = len(experts) - 1
    precision = precisions.sum(0) - extra * prior_precision
    mean = ((precisions * means).sum(0) - extra * prior_precision * prior.base_dist.loc) / precision
    return Independent(Normal(mean, precision.rsqrt(), validate_args=False), 1)


def floored_fraction(experts: Sequence[Independent], prior: Independent | None = None) -> float:
    """The share of (expert, datum, dimension) precisions below the prior's (floored by ``"prior-product"``)."""
    prior = prior or standard_prior(experts[0])
    precisions = torch.stack([e.base_dist.scale.pow(-2) for e in experts])
    return float((precisions < prior.base_dist.scale.pow(-2)).double().mean())


class ExpertMixture(MixtureSameFamily):
    """The uniform mixture (1/K) sum_k q_k(z) of K diagonal Gaussian experts with batch shape (B,)
    and event shape (L,): batch shape (B,), event shape (L,). ``rsample`` picks an expert per
    sample and reparameterises within it; ``log_prob`` is the logsumexp over experts minus log K."""

    has_rsample = True

    def __init__(self, experts: Sequence[Independent]) -> None:
        loc = torch.stack([e.base_dist.loc for e in experts], dim=-2)  # (B, K, L)
        scale = torch.stack([e.base_dist.scale for e in experts], dim=-2)
        weights = Categorical(logits=torch.zeros(loc.shape[:-1], device=loc.device, dtype=loc.dtype))
        super().__init__(weights, Independent(Normal(loc, scale, validate_args=False), 1), validate_args=False)

    @property
    def experts(self) -> int:
        return self._num_component

    def rsample(self, sample_shape: Size | tuple[int, ...] = Size()) -> Tensor:
        return mixture_draw(self, Size(sample_shape), None)


def subset_posterior(experts: Sequence[Independent], rule: str = "product",
                     prior: Independent | None = None) -> Independent | ExpertMixture:
    """q(z | x_S) from the experts of S by ``rule`` (one of ``SUBSET_RULES``; module docstring)."""
    if rule not in SUBSET_RULES:
        raise ValueError(f"subset inference {rule!r} is not one of {SUBSET_RULES}")
    if len(experts) == 1:
        return experts[0]
    if rule == "product":
        return product_of_gaussians(experts)
    if rule == "prior-product":
        return prior_corrected_product(experts, prior)
    return ExpertMixture(experts)


@contextmanager
def using_rule(model: Any, rule: str) -> Iterator[None]:
    """While open, ``model`` (a JMVAE-kl) infers z from subsets by ``rule``: its config is replaced
    by a copy with ``subset_inference=rule`` (the weights are the same), restored on exit."""
    previous = model.config
    model.config = dataclasses.replace(previous, subset_inference=rule)
    try:
        yield
    finally:
        model.config = previous
