r"""Training bounds on partially paired data: each datum contributes the bound of what it has.

A batch with masks (``jmvae.masks``: o_im = 1 when datum i has modality m, stored values zero
where o_im = 0) is trained on, datum by datum, with

JMVAE-kl, for datum i with observed set S_i (all in one batched pass, selected with masks):

- S_i = all M modalities: the JMVAE-kl bound (Eq. 3 and 4),
  E_{q(z|x_1..x_M)}[sum_m log p(x_m|z)] - KL(q(z|x_1..x_M) || p(z)) - alpha sum_m KL(q(z|x_1..x_M) || q(z|x_m));
- S_i = {m}: the ELBO of modality m alone with its own encoder,
  E_{q(z|x_m)}[log p(x_m|z)] - KL(q(z|x_m) || p(z));
- |S_i| >= 2, S_i not all (three or more modalities): the ELBO of S_i with the product of the
  observed experts q_S(z) ∝ prod_{m in S_i} q(z|x_m) (precisions add, means precision-weighted),
  divided by p(z)^(|S_i|-1) when the model's ``subset_inference`` is "prior-product" (the
  default with three or more modalities; ``jmvae.subsets``; "mixture" trains with the plain
  product), E_{q_S}[sum_{m in S_i} log p(x_m|z)] - KL(q_S || p(z));
- S_i empty: nothing.

JMVAE-zero: the joint encoder with the missing inputs zero-filled (its inference for a missing
modality, Sec. 3.3), E_{q(z|x_{S_i}, 0)}[sum_{m in S_i} log p(x_m|z)] - KL(q || p(z)).

The baselines (VAE, CVAE, CMMA) read every modality they use for every datum: a datum that lacks
one of them is left out (``complete_rows_bound``), which is what other libraries do with JMVAE.

Every term is the sum over the batch's data with at least one observed modality, divided by their
number n: ``total = kl_weight * kl_prior - sum_m recon_m + alpha * alpha_weight * sum_m kl_m`` with
recon_m = (1/n) sum_i o_im log p(x_im | z_i) and kl_m = (1/n) sum_{i complete} KL(q(z|x_i) || q(z|x_im)).
With nothing missing these are the complete-data bound's batch means. The kl_weight (warm-up)
scales every datum's prior KL, the alpha_weight every complete datum's alpha terms. A datum's
gradient reaches only the encoders and decoders of the modalities it has (the selections are
``torch.where``, so an unselected encoder gets an exact zero).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from jmvae.distributions import at_noise
from jmvae.masks import modalities_of, observed_matrix
from jmvae.objectives import LossTerms, gaussian_kl


def _gaussian(loc: Tensor, scale: Tensor) -> Independent:
    return Independent(Normal(loc, scale, validate_args=False), 1)


def masked_product_of_experts(experts: list[Independent], seen: Tensor,
                              prior_corrected: bool = False) -> tuple[Tensor, Tensor]:
    """(loc, scale) per datum of the product of the observed experts (``seen`` (B, M) bool):
    precisions add, means precision-weighted; ``prior_corrected``: divided by p(z) = N(0, I)
    |S|-1 times, each precision floored at the prior's 1 (``subsets.prior_corrected_product``).
    A datum with one expert gets that expert exactly; a datum with none gets (0, 1) (it
    contributes nothing)."""
    weights = seen.to(experts[0].base_dist.loc.dtype)
    locs = torch.stack([e.base_dist.loc for e in experts], dim=1)  # (B, M, L)
    scales = torch.stack([e.base_dist.scale for e in experts], dim=1)
    w = weights[..., None]
    precisions = scales.pow(-2)
    if prior_corrected:
        precisions = precisions.clamp(min=1.0)
    precision = (w * precisions).sum(1)
    if prior_corrected:
        precision = precision - (weights.sum(1, keepdim=True) - 1).clamp(min=0)
    safe = torch.where(precision > 0, precision, torch.ones_like(precision))  # no 0/0 in the unused branch
    product_loc = (w * precisions * locs).sum(1) / safe
    product_scale = safe.rsqrt()
    single = (seen.sum(1) == 1)[:, None]
    loc = torch.where(single, (w * locs).sum(1), product_loc)
    scale = torch.where(single, (w * scales).sum(1), product_scale)
    return loc, scale


def masked_jmvae_bound(model, batch: dict[str, Tensor], kl_weight: float, alpha_weight: float,
                       noise: Tensor | None) -> tuple[LossTerms, Distribution]:
    """The negative partially paired bound of a JMVAE (the module docstring), batched with masks;
    with the per-datum posterior its sample was drawn from."""
    names = model.config.names
    n_batch = batch[names[0]].shape[0]
    seen = observed_matrix(batch, names, n_batch)  # (B, M)
    contributes = seen.any(1)
    weight = contributes.to(torch.float32)
    n = weight.sum().clamp(min=1.0)
    inputs = model.encoder_inputs(batch, names)
    inputs = {m: x * seen[:, j, None].to(x.dtype) for j, (m, x) in enumerate(inputs.items())}  # zero-filled
    joint = model.joint_encoder(inputs)
    if model.config.kind == "jmvae-kl":
        experts = [model.unimodal_encoders[m](inputs[m]) for m in names]
        loc, scale = masked_product_of_experts(experts, seen, model.config.subset_inference == "prior-product")
        complete = seen.all(1)[:, None]
        posterior = _gaussian(torch.where(complete, joint.base_dist.loc, loc),
                              torch.where(complete, joint.base_dist.scale, scale))
    else:
        posterior = joint
    z = posterior.rsample() if noise is None else at_noise(posterior, noise)
    log_likelihoods = model.log_likelihoods(z, batch, names)
    reconstruction = {m: (ll * seen[:, j]).sum() / n for j, (m, ll) in enumerate(log_likelihoods.items())}
    kl_prior = (gaussian_kl(posterior, model.prior(batch)).float() * weight).sum() / n
    total = kl_weight * kl_prior - sum(reconstruction.values())
    terms = LossTerms(total, reconstruction, kl_prior)
    if model.config.kind == "jmvae-kl":
        full = seen.all(1).to(torch.float32)
        terms.kl_unimodal = {m: (gaussian_kl(joint, q).float() * full).sum() / n for m, q in zip(names, experts)}
        terms.total = terms.total + model.config.alpha * alpha_weight * sum(terms.kl_unimodal.values())
    return terms, posterior


def complete_rows_bound(model, batch: dict[str, Tensor], kl_weight: float,
                        noise: Tensor | None) -> tuple[LossTerms, Distribution]:
    """The model's ELBO (``negative_elbo``'s terms) averaged over the data of ``batch`` that have
    every modality the model reads; the others weigh zero (their stored zeros are valid inputs, so
    no datum is dropped by indexing, and the same code runs under ``vmap``). A batch with none of
    them gives a zero loss that still reaches every parameter."""
    needed = tuple(dict.fromkeys(model.inputs + model.generated + model.conditions))
    values = modalities_of(batch)
    weight = observed_matrix(batch, needed, values[needed[0]].shape[0]).all(1).to(torch.float32)
    n = weight.sum().clamp(min=1.0)
    posterior = model.posterior(values, model.inputs)
    z = posterior.rsample() if noise is None else at_noise(posterior, noise)
    log_likelihoods = model.log_likelihoods(z, values, model.generated)
    reconstruction = {name: (ll * weight).sum() / n for name, ll in log_likelihoods.items()}
    kl_prior = (gaussian_kl(posterior, model.prior(values)).float() * weight).sum() / n
    return LossTerms(kl_weight * kl_prior - sum(reconstruction.values()), reconstruction, kl_prior), posterior
