r"""Training objectives: the (negative) evidence lower bounds each model minimises.

For a model with posterior q(z | inputs), prior p(z | c) (c: the conditions, empty except for the
CMMA) and decoders p(x_m | z[, w]) for the modalities it generates,

    ELBO = E_q[ sum_m log p(x_m | z[, w]) ] - KL(q(z | inputs) || p(z | c)),

estimated with one reparameterised sample per datum and the KL in closed form (Gaussians).
This is Eq. 1 of Suzuki et al. (2016) for the VAE, the CVAE bound of Sohn et al. (2015), the
CMMA bound of Pandey & Dukkipati (2016) and the joint bound L_JM (Eq. 3) for the JMVAE.
JMVAE-kl (Eq. 4) subtracts alpha * sum_m KL(q(z | x_1..x_M) || q(z | x_m)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from jmvae.distributions import at_noise


@dataclass
class LossTerms:
    """Per-batch means of the terms of a negative bound; ``total`` is what is minimised.

    ``total = -sum(reconstruction) + kl_weight * kl_prior + alpha_weight * sum(kl_unimodal)``.
    """

    total: Tensor
    reconstruction: dict[str, Tensor]
    kl_prior: Tensor
    kl_unimodal: dict[str, Tensor] = field(default_factory=dict)

    def named(self) -> dict[str, Tensor]:
        """Flat name -> tensor view for logs: ``loss``, ``kl_prior``, ``recon/<m>``, ``kl/<m>``."""
        out = {"loss": self.total, "kl_prior": self.kl_prior}
        out.update({f"recon/{k}": v for k, v in self.reconstruction.items()})
        out.update({f"kl/{k}": v for k, v in self.kl_unimodal.items()})
        return out


def kl_weight(step: int, steps_per_epoch: int, warmup_epochs: float) -> float:
    """Linear KL warm-up as a pure function of the optimisation step: min(1, step / warm-up steps)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, step / (warmup_epochs * steps_per_epoch))


def gaussian_kl(q: Distribution, p: Distribution) -> Tensor:
    r"""KL(q || p) per datum, in closed form for diagonal Gaussians (every posterior and prior here):

        KL = sum_l 1/2 [ r_l + ((mu_q,l - mu_p,l) / s_p,l)^2 - 1 - log r_l ],   r_l = (s_q,l / s_p,l)^2,

    the same operations in the same order as ``torch.distributions.kl_divergence`` (so the same
    numbers), written out so that ``torch.compile`` traces the loss in one graph (the registry
    lookup of ``kl_divergence`` breaks it). Other distributions go to ``kl_divergence``.
    """
    if (isinstance(q, Independent) and isinstance(p, Independent) and isinstance(q.base_dist, Normal)
            and isinstance(p.base_dist, Normal) and q.reinterpreted_batch_ndims == p.reinterpreted_batch_ndims == 1):
        q_n, p_n = q.base_dist, p.base_dist
        var_ratio = (q_n.scale / p_n.scale).pow(2)
        t1 = ((q_n.loc - p_n.loc) / p_n.scale).pow(2)
        return (0.5 * (var_ratio + t1 - 1 - var_ratio.log())).sum(-1)
    return kl_divergence(q, p)


def negative_elbo(
    model, batch: dict[str, Tensor], kl_weight: float = 1.0, noise: Tensor | None = None, posterior=None
) -> tuple[LossTerms, object]:
    r"""-E_q[sum_m log p(x_m|z)] + kl_weight * KL(q || prior), batch mean; one z per datum.

    z = mean + std * noise (reparameterisation); ``noise`` (B, L) standard normal, drawn here
    from torch's global generator when not given (the training loop gives it, so that data-
    parallel ranks use the rows of one global draw). Returns the terms and the posterior q (so
    JMVAE-kl can add its KL terms to it). ``posterior``: q(z | inputs) when the caller has it already.
    """
    if posterior is None:
        posterior = model.posterior(batch, model.inputs)
    if noise is None:
        z = posterior.rsample()  # (B, L)
    else:
        z = at_noise(posterior, noise)
    log_likelihoods = model.log_likelihoods(z, batch, model.generated)
    reconstruction = {name: ll.mean() for name, ll in log_likelihoods.items()}
    kl_prior = gaussian_kl(posterior, model.prior(batch)).mean()
    total = kl_weight * kl_prior - sum(reconstruction.values())
    return LossTerms(total, reconstruction, kl_prior), posterior


def unimodal_kl(joint_posterior, unimodal_posteriors: dict[str, object]) -> dict[str, Tensor]:
    """KL(q(z | x_1..x_M) || q(z | x_m)) for every modality m, batch means (JMVAE-kl, Eq. 4)."""
    return {name: gaussian_kl(joint_posterior, q).mean() for name, q in unimodal_posteriors.items()}
