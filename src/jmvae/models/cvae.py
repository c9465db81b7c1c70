r"""CVAE (Kingma et al. 2014; Sohn et al. 2015): x generated from z and the condition w.

q(z | x, w) (the JMVAE's joint encoder architecture), p(x | z, w) (decoder input [z, w]),
p(z) = N(0, I). Trained on the conditional bound
E_q[log p(x | z, w)] - KL(q(z | x, w) || p(z)) <= log p(x | w). It models p(x | w) only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from jmvae.config import ModelConfig
from jmvae.models.base import Batch, MultimodalModel
from jmvae.networks import JointEncoder, modality_decoder


class CVAE(MultimodalModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.generate_first_from_the_rest()
        x, *ws = config.modalities
        self.encoder = JointEncoder(config.modalities, config.hidden_dim, config.latent_dim, config.min_variance)
        width = config.latent_dim + sum(w.features for w in ws)
        self.decoders[x.name] = modality_decoder(x, config.hidden_dim, width)

    def posterior(self, batch: Batch, given: Sequence[str]) -> Distribution:
        given = self.check_given(given, [self.inputs])
        return self.encoder(self.encoder_inputs(batch, given))

    def decoder_input(self, z: Tensor, batch: Batch) -> Tensor:
        """[z, w] with w broadcast over z's leading sample axes."""
        missing = [c for c in self.conditions if c not in batch]
        if missing:
            raise ValueError(f"the CVAE decodes given {list(self.conditions)}; missing {missing}")
        w = torch.cat(list(self.encoder_inputs(batch, self.conditions).values()), dim=-1).to(z.dtype)
        return torch.cat([z, w.expand(*z.shape[:-1], w.shape[-1])], dim=-1)

    def generation_latent(self, batch: Batch, given: Sequence[str]) -> Distribution:
        self.check_given(given, [self.conditions])
        return self.prior(batch)
