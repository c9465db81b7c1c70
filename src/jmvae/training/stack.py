"""M models of one architecture as one: parameters stacked, one vmapped loss, one fused Adam.

What is stacked: every parameter and buffer of the M members' models, as one (M, ...) tensor per
name (``torch.func.stack_module_state``). Each member's own model keeps its parameters as views of
row i of those tensors, so its ``state_dict`` is member i's weights now, and loading weights into
it writes row i.

The loss is the library's own ``model.loss`` under ``torch.func.vmap`` of ``functional_call``
over the rows (its matrix products become batched ones): member i's terms are its own model's at
its batch and its noise. JMVAE-kl's alpha differs between members: the vmapped loss is the
model's with alpha 1, given an alpha weight of alpha_i x the warm-up's weight, which is the
float32 factor a single run multiplies its KL terms by.

Adam: one fused Adam over the stacked tensors. Adam is elementwise, so its update of row i is the
update a single run's Adam makes of member i's parameters; every member's gradients are clipped
to their own total 2-norm first (``clip_members``: ``clip_gradients``' rule, per member). The
optimiser's state of one member is read and written in a single run's format
(``member_optimizer_state``, ``MemberOptimizer``), so a member's checkpoint is a single run's.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from jmvae.config import TrainConfig
from jmvae.models import MultimodalModel
from jmvae.training.optim import make_optimizer
from jmvae.training.state import load_optimizer_state
from jmvae.training.step import compiled


class MemberTerms(nn.Module):
    """A model's loss terms (``LossTerms.named``) as ``forward``, which ``functional_call`` calls."""

    def __init__(self, model: MultimodalModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor], kl_weight: float, alpha_weight: Tensor,
                noise: Tensor) -> dict[str, Tensor]:
        return self.model.loss(batch, kl_weight, alpha_weight, noise).named()


class StackedLoss:
    """The members' loss terms in one call: ``terms(params, buffers, batch, kl_weight, alpha_weights,
    noise)``, every tensor argument with the members along dim 0 (``kl_weight`` a float they share),
    giving each term as an (M,) tensor."""

    def __init__(self, model: MultimodalModel, compile: bool = False) -> None:
        base = copy.deepcopy(model).to("meta")  # the architecture only: the weights come from the stack
        if base.config.kind == "jmvae-kl":
            base.config = dataclasses.replace(base.config, alpha=1.0)  # the alpha weight carries each member's alpha
        self.base = base
        self.module = MemberTerms(base)

        def member(params: dict[str, Tensor], buffers: dict[str, Tensor], batch: dict[str, Tensor],
                   kl_weight: float, alpha_weight: Tensor, noise: Tensor) -> dict[str, Tensor]:
            return functional_call(self.module, (params, buffers), (batch, kl_weight, alpha_weight, noise))

        terms = vmap(member, in_dims=(0, 0, 0, None, 0, 0))
        self.terms: Callable[..., dict[str, Tensor]] = tensor_kl_weight(compiled(terms)) if compile else terms


def tensor_kl_weight(terms: Callable[..., dict[str, Tensor]]) -> Callable[..., dict[str, Tensor]]:
    """``terms`` given the shared KL weight as a 0-dim tensor of the alpha weights' dtype and device:
    inductor cannot lower a symbolic Python float multiplied inside ``vmap`` (a KL warm-up's weight
    changes every step); a tensor input of fixed shape does not recompile as its value changes."""

    def call(params: dict[str, Tensor], buffers: dict[str, Tensor], batch: dict[str, Tensor], kl_weight: float,
             alpha_weights: Tensor, noise: Tensor) -> dict[str, Tensor]:
        weight = torch.tensor(kl_weight, dtype=alpha_weights.dtype, device=alpha_weights.device)
        return terms(params, buffers, batch, weight, alpha_weights, noise)

    return call


def member_optimizer_state(optimizer: torch.optim.Optimizer, index: int) -> dict[str, Any]:
    """Row ``index`` of a stacked Adam's state as a single run's Adam state dict (the step count,
    a scalar, is the members' shared one)."""
    saved = optimizer.state_dict()
    state = {pid: {key: value if key == "step" else value[index] for key, value in per.items()}
             for pid, per in saved["state"].items()}
    return {"state": state, "param_groups": saved["param_groups"]}


def stacked_optimizer_state(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Single runs' Adam state dicts (one per member, all at the same step) stacked along dim 0."""
    first = states[0]
    state = {pid: {key: value if key == "step" else torch.stack([s["state"][pid][key] for s in states])
                   for key, value in per.items()}
             for pid, per in first["state"].items()}
    return {"state": state, "param_groups": first["param_groups"]}


class MemberOptimizer:
    """One member's Adam as a run folder reads and writes it (``RunFolder``): a single run's state
    dict, read from the group's stack; a loaded one is kept until the stack is built from it."""

    def __init__(self, parameters: list[nn.Parameter]) -> None:
        self.param_groups = [{"params": parameters, "fused": None, "foreach": None}]
        self.stack: Stack | None = None
        self.index = 0
        self.loaded: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        assert self.stack is not None, "the member is not in a stack"
        return member_optimizer_state(self.stack.optimizer, self.index)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = state


class Stack:
    """The members' parameters stacked, their fused Adam, and each member's model pointed at its row.

    ``states``: the members' Adam states in a single run's format (resumed, or kept from a stack
    that some members left); None or empty: a fresh Adam."""

    def __init__(self, models: Sequence[MultimodalModel], optimizers: Sequence[MemberOptimizer],
                 config: TrainConfig, states: Sequence[dict[str, Any] | None] | None = None) -> None:
        self.models, self.size = list(models), len(models)
        params, buffers = stack_module_state(list(models))
        self.params = {f"model.{name}": value for name, value in params.items()}  # MemberTerms' names
        self.buffers = {f"model.{name}": value for name, value in buffers.items()}
        for row, model in enumerate(models):
            for name, parameter in model.named_parameters():
                parameter.data = params[name].data[row]
            for name, buffer in model.named_buffers():
                buffer.data = buffers[name].data[row]
        self.parameters = list(self.params.values())
        self.optimizer = make_optimizer([{"params": self.parameters}], config)
        if states and all(s is not None and s["state"] for s in states):
            load_optimizer_state(self.optimizer, stacked_optimizer_state(states))  # type: ignore[arg-type]
        for row, optimizer in enumerate(optimizers):
            optimizer.stack, optimizer.index = self, row
        self.member_optimizers = list(optimizers)

    def keep(self, rows: Sequence[int], config: TrainConfig) -> Stack:
        """A stack of the members in ``rows`` only, with their Adam states and current gradients;
        the others' models keep their rows of this stack as they are now (frozen)."""
        kept = Stack([self.models[r] for r in rows], [self.member_optimizers[r] for r in rows], config,
                     [member_optimizer_state(self.optimizer, r) for r in rows])
        index = torch.tensor(list(rows), device=self.parameters[0].device)
        for old, new in zip(self.parameters, kept.parameters):
            if old.grad is not None:
                new.grad = old.grad.index_select(0, index)
        return kept

    def clip_members(self, max_norm: float | None) -> Tensor:
        """Every member's total gradient 2-norm, (M,); each member's gradients scaled by
        min(1, max_norm / (norm + 1e-6)) as ``clip_gradients`` scales a single run's (None or 0:
        no clipping)."""
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if not grads:
            return torch.zeros(self.size, device=self.parameters[0].device)
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(self.size, -1), dim=1) for g in grads])
        total = torch.linalg.vector_norm(norms, dim=0)
        if max_norm:
            factor = torch.clamp((total + 1e-6) / max_norm, min=1.0)
            for g in grads:
                g.div_(factor.reshape(self.size, *([1] * (g.dim() - 1))))
        return total
