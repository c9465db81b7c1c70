r"""JMVAE: a joint multimodal VAE (Suzuki, Nakayama & Matsuo 2016, arXiv:1611.01891).

Every modality is generated independently from one shared latent variable:
p(x_1..x_M, z) = p(z) prod_m p(x_m | z), p(z) = N(0, I); inference by a joint encoder
q(z | x_1..x_M). Training maximises the joint bound (Eq. 3)

    L_JM = E_{q(z|x_1..x_M)}[ sum_m log p(x_m | z) ] - KL(q(z | x_1..x_M) || p(z)).

JMVAE-zero (Sec. 3.3) infers z from a subset of modalities by zero-filling the missing inputs
of the joint encoder. JMVAE-kl (Eq. 4) adds one encoder q(z | x_m) per modality and maximises

    L_JM - alpha * sum_m KL(q(z | x_1..x_M) || q(z | x_m)),

so a single modality's encoder is trained to match the joint one. Inference from one modality
uses its own encoder; from a strict subset of two or more modalities (only possible with three or
more), the precision-weighted product of those modalities' unimodal Gaussians by default, or
another rule of ``jmvae.subsets`` (``ModelConfig.subset_inference``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from jmvae.config import ModelConfig
from jmvae.models.base import Batch, MultimodalModel
from jmvae.networks import JointEncoder, modality_decoder, modality_encoder
from jmvae.masks import has_masks
from jmvae.objectives import LossTerms, negative_elbo, unimodal_kl
from jmvae.partial import masked_jmvae_bound
from jmvae.subsets import subset_posterior


class JMVAE(MultimodalModel):
    """JMVAE-zero (``kind="jmvae-zero"``) or JMVAE-kl (``kind="jmvae-kl"``, weight ``alpha``)."""

    def __init__(self, config: ModelConfig) -> None:
        if config.kind not in ("jmvae-zero", "jmvae-kl"):
            raise ValueError(f"JMVAE needs kind 'jmvae-zero' or 'jmvae-kl', got {config.kind!r}")
        super().__init__(config)
        self.inputs = self.generated = config.names
        h, latent, min_var = config.hidden_dim, config.latent_dim, config.min_variance
        self.joint_encoder = JointEncoder(config.modalities, h, latent, min_var)
        for m in config.modalities:
            self.decoders[m.name] = modality_decoder(m, h, latent)
        self.unimodal_encoders = nn.ModuleDict()
        if config.kind == "jmvae-kl":
            for m in config.modalities:
                self.unimodal_encoders[m.name] = modality_encoder(m, h, latent, min_var)

    def posterior(self, batch: Batch, given: Sequence[str]) -> Distribution:
        given = tuple(given)
        if not given:
            raise ValueError("cannot infer z from no modality; give at least one of " + str(list(self.config.names)))
        return self._posterior_of_inputs(self.encoder_inputs(batch, given), given)

    def _posterior_of_inputs(self, inputs: dict[str, torch.Tensor], given: tuple[str, ...]) -> Distribution:
        if set(given) == set(self.config.names) or self.config.kind == "jmvae-zero":
            return self.joint_encoder(inputs)  # missing modalities are zero-filled
        experts = [self.unimodal_encoders[name](inputs[name]) for name in given]
        return subset_posterior(experts, self.config.subset_inference)  # one expert: itself

    def bound(self, batch: Batch, kl_weight: float = 1.0, alpha_weight: float = 1.0,
              noise: torch.Tensor | None = None) -> tuple[LossTerms, Distribution]:
        """The joint bound L_JM (Eq. 3), and for JMVAE-kl minus alpha * sum_m KL(q(z|x,w) || q(z|x_m))
        (Eq. 4); with the joint posterior its sample was drawn from. A batch with masks (partially
        paired data) gets each datum's bound of the modalities it has (``jmvae.partial``)."""
        if has_masks(batch):
            return masked_jmvae_bound(self, batch, kl_weight, alpha_weight, noise)
        names = self.config.names
        inputs = self.encoder_inputs(batch, names)  # checked and one-hot encoded once for all encoders
        terms, joint = negative_elbo(self, batch, kl_weight, noise, self._posterior_of_inputs(inputs, names))
        if self.config.kind == "jmvae-kl":
            terms.kl_unimodal = unimodal_kl(joint, {m: self._posterior_of_inputs(inputs, (m,)) for m in names})
            terms.total = terms.total + self.config.alpha * alpha_weight * sum(terms.kl_unimodal.values())
        return terms, joint
