"""The GAN variants' training step: the bound plus the discriminator's game (``jmvae.adversarial``).

The step owns the discriminator (saved in the run's weights under ``discriminator.``), its
optimiser group and its metrics (``gan/generator``, ``gan/discriminator``, ``gan/d_real``). The
objective of one batch is  -bound + weight * L_G + L_D : L_G reaches only the image decoder,
L_D only the discriminator, so one backward pass and one Adam step serve both players.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from jmvae.adversarial.discriminator import Discriminator
from jmvae.adversarial.losses import gan_losses
from jmvae.config import AdversarialConfig
from jmvae.distributions import at_noise
from jmvae.models import MultimodalModel
from jmvae.training.optim import clip_gradients, gradient_norm
from jmvae.training.step import StepInput, compiled


class AdversarialStep:
    """-bound + weight * L_G + L_D per batch; the model's gradients clipped, the discriminator's not
    (its norm still joins the divergence check)."""

    noise_draws = 2  # the bound's posterior sample, and the prior draw the decoder must make real

    def __init__(self, model: MultimodalModel, config: AdversarialConfig, compile: bool = False) -> None:
        config.check(model.config)
        self.model, self.config = model, config
        self.discriminator = Discriminator(model.config.modalities[0], model.config.hidden_dim)
        self.parameters = list(model.parameters())  # listed once: clip reads them every step
        self.critic_parameters = list(self.discriminator.parameters())
        self.image = model.config.names[0]
        self.bound = compiled(self.bound_and_sample) if compile else self.bound_and_sample

    def bound_and_sample(self, batch: dict[str, Tensor], kl_weight: float, alpha_weight: float,
                         noise: Tensor) -> tuple[Any, Tensor]:
        """The model's negative bound and its posterior sample z (detached: L_G trains the decoder only)."""
        terms, posterior = self.model.bound(batch, kl_weight, alpha_weight, noise)
        return terms, at_noise(posterior, noise).detach()

    def modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def parameter_groups(self) -> list[dict[str, Any]]:
        betas = self.config.betas
        return [{"params": self.parameters, "betas": betas}, {"params": self.critic_parameters, "betas": betas}]

    def objective(self, inputs: StepInput) -> tuple[Tensor, dict[str, Tensor]]:
        terms, z = self.bound(inputs.batch, inputs.kl_weight, inputs.alpha_weight, inputs.noise[0])
        generator, discriminator, d_real = gan_losses(self.model, self.discriminator, inputs.batch, z, inputs.noise[1],
                                                      self.config.real_label, inputs.raw[self.image])  # D sees intensities
        objective = terms.total + self.config.weight * generator + discriminator
        metrics = {**terms.named(), "gan/generator": generator, "gan/discriminator": discriminator, "gan/d_real": d_real}
        return objective, metrics

    def clip(self, optimizer: torch.optim.Optimizer, max_norm: float | None) -> Tensor:
        norm = clip_gradients(optimizer, self.parameters, max_norm)
        return norm + gradient_norm(self.critic_parameters)
