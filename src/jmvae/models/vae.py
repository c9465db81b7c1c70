r"""VAE (Kingma & Welling 2014): one modality x, q(z | x), p(x | z), p(z) = N(0, I).

Trained on the ELBO E_q[log p(x|z)] - KL(q(z|x) || p(z)). Further modalities in the config
are ignored: the VAE is the paper's baseline for the marginal log p(x).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.distributions import Distribution

from jmvae.config import ModelConfig
from jmvae.models.base import Batch, MultimodalModel
from jmvae.networks import modality_decoder, modality_encoder


class VAE(MultimodalModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        x = config.modalities[0]
        self.inputs = self.generated = (x.name,)
        self.encoder = modality_encoder(x, config.hidden_dim, config.latent_dim, config.min_variance)
        self.decoders[x.name] = modality_decoder(x, config.hidden_dim, config.latent_dim)

    def posterior(self, batch: Batch, given: Sequence[str]) -> Distribution:
        given = self.check_given(given, [self.inputs])
        return self.encoder(self.encoder_inputs(batch, given)[self.inputs[0]])

    def generation_latent(self, batch: Batch, given: Sequence[str]) -> Distribution:
        if given:
            return self.posterior(batch, given)
        return self.prior(batch)
