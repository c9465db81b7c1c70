"""The optimiser and what guards it: fused Adam, gradient clipping, the divergence check."""

from __future__ import annotations

from typing import Any

import torch

from jmvae.config import TrainConfig
from jmvae.errors import JMVAEError


class DivergenceError(JMVAEError):
    """The loss or a gradient became NaN or infinite."""


DIVERGENCE_SETTINGS = ("lr", "warmup_epochs", "clip_grad_norm")
"""The settings that can keep a run from diverging (``JMVAEError.settings``)."""

DIVERGENCE_CHECK_EVERY = 50
"""Steps between reads of the divergence flag on the host (where the flag stays on the device)."""


class DivergenceWatch:
    """Notes the first step whose loss or gradient norm is not finite, without waiting on the device.

    Reading ``isfinite(loss)`` on the host every step makes a GPU finish the step before the next
    one can be queued. With fused Adam the test stays on the device instead: the flag goes to the
    optimizer as ``found_inf`` (the fused kernel then leaves the parameters and Adam's moments
    untouched for that step, as with AMP's gradient scaler), the first bad step's number, loss and
    gradient norm are kept in device tensors, and the host reads them every
    ``DIVERGENCE_CHECK_EVERY`` steps and before any metrics or checkpoint are written. Training
    still stops with ``DivergenceError`` naming the first bad step, and nothing from after it is
    saved. Without fused Adam (or across processes, whose flags are exchanged every step anyway)
    ``deferred`` is False and each step is checked at once.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device, deferred: bool) -> None:
        self.optimizer = optimizer
        self.deferred = deferred and all(g.get("fused") for g in optimizer.param_groups)
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.values = torch.zeros(2, device=device)  # loss and gradient norm at that step

    def note(self, step: int, objective: torch.Tensor, grad_norm: torch.Tensor) -> bool:
        """Deferred: record this step's finiteness on the device and return False. Otherwise:
        return whether this step is bad (the caller then ``mark``s it, maybe after asking the
        other ranks)."""
        bad = ~(torch.isfinite(objective.detach()) & torch.isfinite(grad_norm))
        if not self.deferred:
            return bool(bad)
        self.optimizer.found_inf = bad.float()  # type: ignore[attr-defined]
        first = bad & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.values = torch.where(first, self.observed(objective, grad_norm), self.values)
        return False

    def mark(self, step: int, objective: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Record ``step`` as the bad one (this process's loss and gradient norm)."""
        self.first_step.fill_(step)
        self.values.copy_(self.observed(objective, grad_norm))

    @staticmethod
    def observed(objective: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
        return torch.stack([objective.detach().float(), grad_norm.float()])

    def error(self, steps_per_epoch: int) -> DivergenceError | None:
        """The error to raise if a step has diverged (reads the device); steps and epochs are
        counted from 1, as the progress bar and the summary count them."""
        step = int(self.first_step)
        if step < 0:
            return None
        loss, norm = self.values.tolist()
        return divergence_error(step, steps_per_epoch, loss, norm)


def divergence_error(step: int, steps_per_epoch: int, loss: float, norm: float, who: str = "training") -> DivergenceError:
    """What a divergence at (0-based) ``step`` says: step and epoch counted from 1, as the progress
    bar and the summary count them; ``who`` diverged (a group's member names itself)."""
    return DivergenceError(
        f"{who} diverged at step {step + 1} (epoch {step // steps_per_epoch + 1}): loss {loss:.4g}, "
        f"gradient norm {norm:.4g}; try a lower learning rate, a KL warm-up or gradient clipping.",
        DIVERGENCE_SETTINGS,
    )


def make_optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Adam:
    """Adam over ``groups`` (a step's parameter groups; a group's own betas override the config's)
    with its fused kernel (one pass over all parameters) where torch has one for the device: the
    same update rule as the default multi-tensor Adam, faster (docs/benchmarks.md: the `optimizer` ablation)."""
    try:
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, eps=config.eps, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device or torch version
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def gradient_norm(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """The 2-norm of all the parameters' gradients taken together (0 when none has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads, foreach=True) if grads else torch.zeros(())


def clip_gradients(optimizer: torch.optim.Optimizer, parameters: list[torch.nn.Parameter],
                   max_norm: float | None) -> torch.Tensor:
    """Return the total 2-norm of the gradients of ``parameters`` and clip them to ``max_norm``.

    The rule is ``torch.nn.utils.clip_grad_norm_``'s: every gradient is multiplied by
    min(1, max_norm / (norm + 1e-6)). When the optimizer is fused Adam over exactly these
    parameters, the factor is handed to it as its ``grad_scale`` (the fused kernel divides each
    gradient by it in the same pass that updates the parameters) instead of a separate pass over
    all the gradients: the same update, fewer passes (benchmarks/ablations.py clip-adam).
    Otherwise (a second, unclipped group such as a GAN's discriminator; a non-fused Adam) the
    gradients are scaled in place. ``max_norm`` None or 0: no clipping, the norm is still returned
    (the divergence check reads it).
    """
    norm = gradient_norm(parameters)
    fused_over_these = (len(optimizer.param_groups) == 1 and optimizer.param_groups[0].get("fused")
                        and len(optimizer.param_groups[0]["params"]) == len(parameters))
    if fused_over_these:
        optimizer.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0) if max_norm else None  # type: ignore[attr-defined]
    elif max_norm:
        torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, norm, foreach=True)
    return norm
