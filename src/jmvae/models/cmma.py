r"""CMMA (Pandey & Dukkipati 2016): a conditional prior p(z | w) and a decoder p(x | z).

q(z | x, w) (the JMVAE's joint encoder architecture), p(z | w) (w -> H -> H -> Gaussian),
p(x | z). Trained on E_q[log p(x | z)] - KL(q(z | x, w) || p(z | w)) <= log p(x | w).
It models p(x | w) only, in one direction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution

from jmvae.config import ModelConfig
from jmvae.models.base import Batch, MultimodalModel
from jmvae.networks import GaussianEncoder, JointEncoder, modality_decoder


class CMMA(MultimodalModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.generate_first_from_the_rest()
        x, *ws = config.modalities
        h, latent, min_var = config.hidden_dim, config.latent_dim, config.min_variance
        self.encoder = JointEncoder(config.modalities, h, latent, min_var)
        self.prior_network = GaussianEncoder(sum(w.features for w in ws), h, latent, min_var)
        self.decoders[x.name] = modality_decoder(x, h, latent)

    def posterior(self, batch: Batch, given: Sequence[str]) -> Distribution:
        given = self.check_given(given, [self.inputs])
        return self.encoder(self.encoder_inputs(batch, given))

    def prior(self, batch: Batch) -> Distribution:
        """p(z | w), batch shape (B,)."""
        w = torch.cat(list(self.encoder_inputs(batch, self.conditions).values()), dim=-1)
        return self.prior_network(w)

    def generation_latent(self, batch: Batch, given: Sequence[str]) -> Distribution:
        self.check_given(given, [self.conditions])
        return self.prior(batch)
