"""What every model shares: modalities in dicts, decoders keyed by name, distributions out.

A model exposes the pieces of its generative story and its inference network, so one objective
(``objectives.py``) and one importance-weighted estimator (``estimators.py``) serve all of them:

- ``posterior(batch, given)``: q(z | the modalities in ``given``), batch shape (B,), event (L,);
- ``prior(batch)``: p(z) = N(0, I), or p(z | w) for the CMMA;
- ``decode(z, batch)``: p(x_m | z[, w]) for every modality the model generates;
- ``log_likelihoods(z, batch, names)``: log p(x_m | z[, w]) of the data, shape (S, B) or (B,);
- ``bound(batch, kl_weight, alpha_weight, noise)``: the negative training bound as ``LossTerms``,
  with the posterior q(z | inputs) its one sample per datum was drawn from; ``loss`` is its terms.

A batch is ``dict[str, Tensor]``: images (B, *shape) floats, labels (B,) int64.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from jmvae import likelihoods
from jmvae.config import ModelConfig
from jmvae.masks import has_masks
from jmvae.objectives import LossTerms, negative_elbo
from jmvae.partial import complete_rows_bound

Batch = Mapping[str, Tensor]


class MultimodalModel(nn.Module):
    """Base of every model: config, decoders in an ``nn.ModuleDict``, shared evaluation helpers.

    Subclasses set ``inputs`` (what the training posterior reads), ``generated`` (the modalities
    with a decoder) and ``conditions`` (what the prior or decoders condition on), and implement
    ``posterior``.
    """

    inputs: tuple[str, ...]
    generated: tuple[str, ...]
    conditions: tuple[str, ...] = ()

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.decoders = nn.ModuleDict()
        self.check_label_range = True  # see labels_checked

    # -- the generative model -------------------------------------------------------------
    def prior(self, batch: Batch) -> Distribution:
        """p(z) = N(0, I), batch shape (), event shape (L,)."""
        ref = next(iter(self.parameters()))
        zeros = torch.zeros(self.config.latent_dim, device=ref.device, dtype=ref.dtype)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)

    def decoder_input(self, z: Tensor, batch: Batch) -> Tensor:
        """What the decoders read: z itself (the CVAE appends the condition)."""
        return z

    def decode(self, z: Tensor, batch: Batch | None = None) -> dict[str, Distribution]:
        """p(x_m | z) for every generated modality; z is (..., L) and so are the batch shapes."""
        h = self.decoder_input(z, batch or {})
        return {
            name: likelihoods.distribution(self.config.modality(name), self.decoders[name](h))
            for name in self.generated
        }

    def log_likelihoods(self, z: Tensor, batch: Batch, names: Sequence[str]) -> dict[str, Tensor]:
        """log p(x_m | z) of ``batch[m]`` for each m in ``names``; z (S, B, L) -> (S, B), or (B, L) -> (B,)."""
        missing = [n for n in names if n not in self.generated]
        if missing:
            raise ValueError(f"{self.config.display_name} has no decoder for {missing}; it generates {self.generated}")
        h = self.decoder_input(z, batch)
        out = {}
        for name in names:
            params = self.decoders[name](h).float()  # likelihoods in float32, even under bf16 autocast
            out[name] = likelihoods.log_prob(self.config.modality(name), params, batch[name])
        return out

    # -- inference --------------------------------------------------------------------------
    def posterior(self, batch: Batch, given: Sequence[str]) -> Distribution:
        raise NotImplementedError

    def generation_latent(self, batch: Batch, given: Sequence[str]) -> Distribution:
        """The distribution z is drawn from to generate the other modalities from ``given``.

        JMVAE: the posterior q(z | given). CVAE and CMMA: their prior given the condition.
        Nothing given: the prior p(z) (the CVAE and CMMA, which need their condition, refuse).
        """
        if not tuple(given):
            return self.prior(batch)
        return self.posterior(batch, given)

    def bound(self, batch: Batch, kl_weight: float = 1.0, alpha_weight: float = 1.0,
              noise: Tensor | None = None) -> tuple[LossTerms, Distribution]:
        """The negative training bound (the ELBO for the baselines and JMVAE-zero) and the posterior
        q(z | inputs) whose sample z = mean + std * ``noise`` it was estimated at (``negative_elbo``).
        With masks (partially paired data), over the data that have every modality it reads."""
        if has_masks(batch):
            return complete_rows_bound(self, batch, kl_weight, noise)
        return negative_elbo(self, batch, kl_weight, noise)

    def loss(self, batch: Batch, kl_weight: float = 1.0, alpha_weight: float = 1.0, noise: Tensor | None = None) -> LossTerms:
        """The terms of ``bound``: what the optimiser minimises."""
        return self.bound(batch, kl_weight, alpha_weight, noise)[0]

    @contextmanager
    def labels_checked(self) -> Iterator[None]:
        """While open, encoder inputs skip the range test of class labels (``check_batch_value``),
        whose read of the labels' extremes makes a GPU wait at every batch: the training loop opens
        it once every training label has been checked. Shapes and dtypes are still checked."""
        previous, self.check_label_range = self.check_label_range, False
        try:
            yield
        finally:
            self.check_label_range = previous

    # -- helpers ----------------------------------------------------------------------------
    def generate_first_from_the_rest(self) -> None:
        """The baselines' roles (CVAE, CMMA): the first modality x is generated, the others are
        the condition w, and training reads both."""
        self.inputs = self.config.names
        self.generated = self.config.names[:1]
        self.conditions = self.config.names[1:]

    def encoder_inputs(self, batch: Batch, given: Sequence[str]) -> dict[str, Tensor]:
        """The flat encoder inputs of the modalities in ``given`` (checking their shapes)."""
        out = {}
        for name in given:
            if name not in batch:
                raise ValueError(f"modality {name!r} is missing from the batch (it has {sorted(batch)})")
            modality = self.config.modality(name)
            likelihoods.check_batch_value(modality, batch[name], self.check_label_range)
            out[name] = likelihoods.encoder_input(modality, batch[name])
        return out

    def check_given(self, given: Sequence[str], allowed: Sequence[Sequence[str]]) -> tuple[str, ...]:
        given = tuple(given)
        for option in allowed:
            if set(given) == set(option):
                return given
        raise ValueError(
            f"{self.config.display_name} cannot infer z from {list(given)}; it can from "
            + " or ".join(str(list(a)) for a in allowed)
        )
