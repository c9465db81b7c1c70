"""What one optimisation step minimises: a ``Step`` turns a batch into an objective.

The loop (``loop.py``) owns the data, the optimiser, the checkpoints and the clock; a step owns
the objective, the parameters it trains beside the model and the metrics it reports:

- ``ELBOStep``: the model's negative training bound (``MultimodalModel.bound``), one
  reparameterised sample per datum at the loop's noise;
- ``jmvae.adversarial.AdversarialStep``: the bound plus a discriminator's game (the GAN variants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from jmvae.errors import JMVAEError
from jmvae.models import MultimodalModel
from jmvae.training.optim import clip_gradients


@dataclass
class StepInput:
    """One batch as a step reads it.

    ``batch``: what the model reads (binarised where the data set says so); ``raw``: the same rows
    as stored (intensities); ``noise``: ``Step.noise_draws`` standard-normal (B, L) draws;
    ``kl_weight`` and ``alpha_weight``: the warm-up's weights of KL(q || p) and of the alpha terms.
    """

    batch: dict[str, Tensor]
    raw: dict[str, Tensor]
    noise: list[Tensor]
    kl_weight: float
    alpha_weight: float


class Step(Protocol):
    noise_draws: int
    """How many standard-normal (B, L) draws the step reads per batch."""

    def modules(self) -> dict[str, nn.Module]:
        """What the step trains beside the model, by name: saved in the model's weights file under
        ``<name>.`` and restored on resume."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: the model's first, then the step's own."""

    def objective(self, inputs: StepInput) -> tuple[Tensor, dict[str, Tensor]]:
        """(the scalar to minimise, its named terms for the metrics: ``loss``, ``kl_prior``, ...)."""

    def clip(self, optimizer: torch.optim.Optimizer, max_norm: float | None) -> Tensor:
        """Clip the gradients that are clipped; return the norm the divergence check reads."""


class ELBOStep:
    """The model's negative training bound, ``-ELBO`` (Eq. 3 / Eq. 4 for the JMVAE), minimised
    over all the model's parameters, their gradients clipped to a total 2-norm."""

    noise_draws = 1

    def __init__(self, model: MultimodalModel, compile: bool = False) -> None:
        self.model = model
        self.parameters = list(model.parameters())  # listed once: clip reads them every step
        self.loss = compiled(model.loss) if compile else model.loss

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": self.parameters}]

    def objective(self, inputs: StepInput) -> tuple[Tensor, dict[str, Tensor]]:
        terms = self.loss(inputs.batch, inputs.kl_weight, inputs.alpha_weight, inputs.noise[0])
        return terms.total, terms.named()

    def clip(self, optimizer: torch.optim.Optimizer, max_norm: float | None) -> Tensor:
        return clip_gradients(optimizer, self.parameters, max_norm)


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a model's loss) through ``torch.compile`` (inductor's default mode). Every
    model's loss traces as one graph (Gaussian KLs in closed form, label ranges checked before the
    loop); the KL weights are Python floats that dynamo keeps symbolic, so a KL warm-up does not
    recompile. A failure to compile (no C++ compiler for inductor's CPU kernels, say) becomes a
    one-line ``JMVAEError``."""
    compiled_function = torch.compile(function)

    def run(*args: Any) -> Any:
        try:
            return compiled_function(*args)
        except Exception as exc:  # dynamo and inductor raise many types; none is ours to handle
            if not type(exc).__module__.startswith("torch._"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JMVAEError(f"torch.compile failed ({first[:200]}); train without compiling", ("compile",)) from exc

    return run
