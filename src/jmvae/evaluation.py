r"""Test log-likelihoods and accuracy of Table 1 (Suzuki et al. 2016, Appendix B).

With x the first modality (the image) and w the others (the label), every cell is the one
importance-weighted estimator of ``estimators.py`` with a stated target and proposal:

=====================  ===========================  ==========================================
cell                   target (bound on)            proposal
=====================  ===========================  ==========================================
x: multiple            log p(x)                     q(z | x, w)
x: single              log p(x)                     q(z | x) (JMVAE-zero: w zero-filled; VAE)
x|w: multiple          log p(x, w) - log p(w)       q(z | x, w)
x|w: single            log p(x, w) - log p(w)       q(z | w) (JMVAE-zero: x zero-filled)
x|w (CVAE, CMMA)       log p(x | w), own bound      q(z | x, w), prior p(z) or p(z | w)
joint                  log p(x, w)                  q(z | x, w)
=====================  ===========================  ==========================================

Active units (Burda, Grosse & Salakhutdinov 2016): the latent dimensions u whose posterior mean moves
with the data, Cov_x(E_q(z|x)[z_u]) > 0.01 over the test points, for each proposal the model has
(the joint encoder, and JMVAE's unimodal ones). Units below it carry next to no information about
the data. On MNIST, 100-epoch JMVAE-kl runs that kept 12, 11 or 10 active units landed about
0.9 nats of log p(x) apart per unit (docs/benchmarks.md).

log p(w) = log (1/N_w) sum_i p(w | z_i), z_i ~ p(z), with N_w = ``n_prior``: a stochastic lower
bound on log p(w) (Jensen), so the JMVAE's x|w cells, a bound minus it, are *estimates* that sit
above a lower bound by that bias. It shrinks with N_w: about 1.5 nats at Table 2's N_w = 10 with
Bernoulli CelebA attributes (docs/bounds.md); at Table 1's N_w = 5000 over ten labels it is far
smaller but unmeasured on a trained model; ``EvalConfig.n_prior_check`` measures it for a run. The output's ``log_p_w`` is its mean. Accuracy w|x: the
most probable class of p(w | z) at the mean of q(z | x); for binary attributes (CelebA), the
share of attributes predicted right, p(w_j = 1 | z) > 1/2 (a tanh-Gaussian's mean > 0), averaged
over attributes and test points. Cells a model cannot compute are None.
All cells sharing a proposal share its k samples (one decoder pass per proposal).

Test batch i draws its samples from a generator seeded by (seed, i): the estimates do not depend
on which process evaluates which batch, so evaluation sharded across ranks (``torchrun``)
gathers exactly the single-process numbers.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from jmvae import distributed
from jmvae.config import EvalConfig
from jmvae.data.checks import check_paired
from jmvae.estimators import iw_log_likelihoods, log_marginal_by_prior, mean_and_sem
from jmvae.models import MultimodalModel


ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x(E_q[z_u]) exceeds this


def posterior_inputs(model: MultimodalModel) -> list[tuple[str, ...]]:
    """The modalities each of the model's proposals is given: the VAE's q(z|x); the CVAE's and
    CMMA's q(z|x,w); JMVAE's joint q(z|x,w) and its unimodal q(z|x) and q(z|w)."""
    x, ws, _, _ = table_keys(model)
    if model.config.kind == "vae":
        return [(x,)]
    if model.config.kind in ("cvae", "cmma"):
        return [model.config.names]
    return [model.config.names, (x,), ws]


def table_keys(model: MultimodalModel) -> tuple[str, tuple[str, ...], str, str]:
    """(x, ws, "x", "x|w") names: x is the first modality, w the rest."""
    x, *ws = model.config.names
    return x, tuple(ws), x, f"{x}|{'+'.join(ws)}"


@torch.inference_mode()
def evaluate(
    model: MultimodalModel,
    test: dict[str, Tensor],
    config: EvalConfig = EvalConfig(),
    progress: bool = False,
) -> dict[str, Any]:
    """The evaluation JSON of one model on ``test`` (every cell's mean over test points)."""
    started = time.perf_counter()
    check_paired(model.config.modalities, test, "test data")
    model.eval()
    x, ws, key_x, key_xw = table_keys(model)
    names = model.config.names
    n_total = next(iter(test.values())).shape[0]
    n = min(n_total, config.limit) if config.limit else n_total
    device = next(model.parameters()).device
    world = distributed.current()
    per_point: dict[str, dict[int, Tensor]] = {}
    precision = torch.autocast(device.type, dtype=torch.bfloat16) if config.precision == "bf16" else nullcontext()
    starts = list(enumerate(range(0, n, config.batch_size)))[world.rank :: world.size]
    for index, start in tqdm(starts, disable=not (progress and world.is_main), unit="batch",
                             desc=f"evaluate {model.config.display_name}"):
        batch = {k: v[start : min(n, start + config.batch_size)].to(device) for k, v in test.items() if k in names}
        generator = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + index)
        with precision:
            for cell, values in batch_cells(model, batch, config, generator).items():
                per_point.setdefault(cell, {})[index] = values.double().cpu()
            for given in posterior_inputs(model):
                per_point.setdefault("means/" + "+".join(given), {})[index] = model.posterior(batch, given).mean.double().cpu()

    merged: dict[str, dict[int, Tensor]] = {}
    for shard in distributed.gather_objects(per_point, world):
        for cell, values in shard.items():
            merged.setdefault(cell, {}).update(values)
    cells = {cell: torch.cat([values[i] for i in sorted(values)]) for cell, values in merged.items()}
    active = {cell.removeprefix("means/"): int((cells.pop(cell).var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())
              for cell in [c for c in cells if c.startswith("means/")]}
    stats = {cell: mean_and_sem(values) for cell, values in cells.items()}

    def mean(cell: str) -> float | None:
        return stats[cell][0] if cell in stats else None

    def sem(cell: str) -> float | None:
        return stats[cell][1] if cell in stats else None

    def table(pick) -> dict[str, Any]:
        return {
            key_x: {"multiple": pick("x/multiple"), "single": pick("x/single")},
            key_xw: {"multiple": pick("x|w/multiple"), "single": pick("x|w/single")},
            "joint": pick("joint"),
        }

    accuracy_key = f"{ws[0]}|{x}" if ws else None
    prior_check = None
    if "check/log p(w)" in stats:
        prior_check = {"n_prior": config.n_prior_check, "log_p_w": mean("check/log p(w)"),
                       key_xw: {"multiple": mean("check/x|w/multiple"), "single": mean("check/x|w/single")}}
    return {
        "model": model.config.display_name,
        "k": config.k,
        "n_prior": config.n_prior,
        "n_test": n,
        "log_likelihood": table(mean),
        "stderr": table(sem),
        "accuracy": {accuracy_key: mean("accuracy")} if accuracy_key else {},
        "log_p_w": mean("log p(w)"),
        "n_prior_check": prior_check,
        "active_units": active,
        "eval_seconds": round(time.perf_counter() - started, 2),
    }


def batch_cells(model: MultimodalModel, batch: dict[str, Tensor], config: EvalConfig,
                generator: torch.Generator) -> dict[str, Tensor]:
    """Every cell the model defines, per test point of ``batch`` (see the module's table)."""
    x, ws, _, _ = table_keys(model)
    names = model.config.names
    out: dict[str, Tensor] = {}

    def bounds(targets: Sequence[Sequence[str]], given: Sequence[str]) -> dict[tuple[str, ...], Tensor]:
        proposal = model.posterior(batch, given)
        return iw_log_likelihoods(model, batch, targets, proposal, config.k, config.chunk, generator)

    if model.config.kind == "vae":
        out["x/single"] = bounds([(x,)], (x,))[(x,)]
    elif model.config.kind in ("cvae", "cmma"):
        out["x|w/multiple"] = bounds([(x,)], names)[(x,)]
    else:
        both = bounds([(x,), names], names)
        log_pw = log_marginal_by_prior(model, batch, ws, config.n_prior, config.chunk, generator)
        out["x/multiple"] = both[(x,)]
        out["joint"] = both[names]
        out["x|w/multiple"] = both[names] - log_pw
        out["x/single"] = bounds([(x,)], (x,))[(x,)]
        joint_from_w = bounds([names], ws)[names]
        out["x|w/single"] = joint_from_w - log_pw
        out["log p(w)"] = log_pw
        if config.n_prior_check:  # drawn after the protocol's cells, which stay as they were
            log_pw_check = log_marginal_by_prior(model, batch, ws, config.n_prior_check, config.chunk, generator)
            out["check/log p(w)"] = log_pw_check
            out["check/x|w/multiple"] = both[names] - log_pw_check
            out["check/x|w/single"] = joint_from_w - log_pw_check
        if len(ws) == 1:
            out.update(prediction_accuracy(model, batch, x, ws[0]))
    return out


def prediction_accuracy(model: MultimodalModel, batch: dict[str, Tensor], x: str, w: str) -> dict[str, Tensor]:
    """{"accuracy": per test point} for w predicted from x alone (see the module docstring);
    empty for a continuous w that is not a -1/1 attribute vector."""
    modality = model.config.modality(w)
    if modality.likelihood == "gaussian" and modality.mean_activation != "tanh":
        return {}
    predicted = model.decode(model.posterior(batch, (x,)).mean)[w]
    if modality.likelihood == "categorical":
        return {"accuracy": (predicted.logits.argmax(-1) == batch[w]).double()}
    threshold = 0.5 if modality.likelihood == "bernoulli" else 0.0
    right = (predicted.mean > threshold) == (batch[w] > threshold)
    return {"accuracy": right.double().reshape(len(right), -1).mean(-1)}
