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
the data, so a model's log p(x) moves with how many it keeps (measured in docs/benchmarks.md,
"Does bf16 training give the same model?").

log p(w) = log (1/N_w) sum_i p(w | z_i), z_i ~ p(z), with N_w = ``n_prior``: a stochastic lower
bound on log p(w) (Jensen), so the JMVAE's x|w cells, a bound minus it, are *estimates* that sit
above a lower bound by that bias. The bias shrinks as N_w grows (its size at Table 2's N_w = 10:
docs/bounds.md); ``EvalConfig.n_prior_check`` measures it for a run, re-estimating log p(w) with
more prior draws (``Evaluation.n_prior_check``). ``Evaluation.log_p_w`` is its mean. Accuracy w|x: the
most probable class of p(w | z) at the mean of q(z | x); for binary attributes (CelebA), the
share of attributes predicted right, p(w_j = 1 | z) > 1/2 (a tanh-Gaussian's mean > 0), averaged
over attributes and test points. Cells a model cannot compute are None. Test data with missing
values (masks, ``jmvae.masks``): a cell is the mean over the data that have its modalities
(``cell_modalities``), and ``Evaluation.n_per_cell`` says how many those are.
All cells sharing a proposal share its k samples (one decoder pass per proposal).

Test batch i draws its samples from a generator seeded by (seed, i): the estimates do not depend
on which process evaluates which batch, so evaluation sharded across ranks (``torchrun``)
gathers exactly the single-process numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from jmvae import distributed
from jmvae.config import EvalConfig
from jmvae.data.checks import check_paired
from jmvae.estimators import iw_log_likelihoods, log_marginal_by_prior, mean_and_sem
from jmvae.masks import SUFFIX, is_mask_key
from jmvae.models import MultimodalModel
from jmvae.precision import autocast_for
from jmvae.progress import progress_bar


ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x(E_q[z_u]) exceeds this


@dataclass(frozen=True)
class Bounds:
    """A log-likelihood's two importance-weighted bounds: ``multiple`` draws z from the joint
    proposal q(z | x, w), ``single`` from the one given fewer modalities (see the module's table)."""

    multiple: float | None = None
    single: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"multiple": self.multiple, "single": self.single}

    @classmethod
    def from_dict(cls, cell: dict[str, Any] | None) -> Bounds:
        return cls(**(cell or {}))


@dataclass(frozen=True)
class Cells:
    """Table 1's cells for one model: log p(x) and log p(x | w) by both bounds, and log p(x, w);
    each the mean over test points, or its standard error (``Evaluation.stderr``)."""

    x: Bounds
    x_given_w: Bounds
    joint: float | None

    def to_dict(self, keys: TableKeys) -> dict[str, Any]:
        return {keys.x: self.x.to_dict(), keys.x_given_w: self.x_given_w.to_dict(), "joint": self.joint}

    @classmethod
    def from_dict(cls, table: dict[str, Any] | None) -> Cells:
        """The cells of a ``log_likelihood`` (or ``stderr``) entry: ``to_dict`` writes x first,
        x|w second, then "joint"; None (an entry written before it existed) gives empty cells."""
        if table is None:
            return cls(Bounds(), Bounds(), None)
        keys = TableKeys.of(table)
        return cls(Bounds.from_dict(table[keys.x]), Bounds.from_dict(table[keys.x_given_w]), table.get("joint"))


@dataclass(frozen=True)
class TableKeys:
    """The JSON keys of a model's cells: x is its first modality, ws the rest."""

    x: str
    ws: tuple[str, ...]

    @classmethod
    def of_model(cls, model: MultimodalModel) -> TableKeys:
        x, *ws = model.config.names
        return cls(x, tuple(ws))

    @classmethod
    def of(cls, table: dict[str, Any]) -> TableKeys:
        """The keys of a ``log_likelihood`` entry (see ``Cells.to_dict``)."""
        x, x_given_w = [key for key in table if key != "joint"][:2]
        ws = x_given_w.split("|", 1)[1]
        return cls(x, tuple(ws.split("+")) if ws else ())

    @property
    def x_given_w(self) -> str:
        return f"{self.x}|{'+'.join(self.ws)}"

    @property
    def accuracy(self) -> str | None:
        """w|x: the first other modality predicted from x (None for a model of x alone)."""
        return f"{self.ws[0]}|{self.x}" if self.ws else None


def posterior_inputs(model: MultimodalModel) -> list[tuple[str, ...]]:
    """The modalities each of the model's proposals is given: the VAE's q(z|x); the CVAE's and
    CMMA's q(z|x,w); JMVAE's joint q(z|x,w) and its unimodal q(z|x) and q(z|w)."""
    keys = TableKeys.of_model(model)
    if model.config.kind == "vae":
        return [(keys.x,)]
    if model.config.kind in ("cvae", "cmma"):
        return [model.config.names]
    return [model.config.names, (keys.x,), keys.ws]


@dataclass(frozen=True)
class PriorCheck:
    """log p(w) re-estimated from ``n_prior`` prior draws (``EvalConfig.n_prior_check``) and the
    x|w cells with it: how far the protocol's N_w biases them."""

    n_prior: int
    log_p_w: float | None
    x_given_w: Bounds

    def to_dict(self, keys: TableKeys) -> dict[str, Any]:
        return {"n_prior": self.n_prior, "log_p_w": self.log_p_w, keys.x_given_w: self.x_given_w.to_dict()}


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` measured on one model (``to_dict``: the ``jmvae evaluate --json`` object)."""

    model: str
    keys: TableKeys
    k: int
    n_prior: int
    n_test: int
    log_likelihood: Cells
    stderr: Cells
    accuracy: float | None  # w|x (``keys.accuracy``); None where undefined
    log_p_w: float | None
    n_prior_check: PriorCheck | None
    active_units: dict[str, int]  # per proposal, named by the modalities it is given ("image+label")
    eval_seconds: float
    n_per_cell: dict[str, int] | None = None  # test data with a cell's modalities, when some are missing

    def to_dict(self) -> dict[str, Any]:
        accuracy = self.keys.accuracy
        return {
            "model": self.model,
            "k": self.k,
            "n_prior": self.n_prior,
            "n_test": self.n_test,
            "log_likelihood": self.log_likelihood.to_dict(self.keys),
            "stderr": self.stderr.to_dict(self.keys),
            "accuracy": {accuracy: self.accuracy} if accuracy else {},
            "log_p_w": self.log_p_w,
            "n_prior_check": self.n_prior_check.to_dict(self.keys) if self.n_prior_check else None,
            "active_units": self.active_units,
            "eval_seconds": self.eval_seconds,
            **({"n_per_cell": self.n_per_cell} if self.n_per_cell is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@torch.inference_mode()
def evaluate(
    model: MultimodalModel,
    test: dict[str, Tensor],
    config: EvalConfig = EvalConfig(),
    progress: bool = False,
    name: str | None = None,
) -> Evaluation:
    """Every cell's mean and standard error over the test points of one model on ``test``;
    ``name``: the model's row name (default its config's; a GAN run's is ``Run.display_name``)."""
    name = name or model.config.display_name
    started = time.perf_counter()
    check_paired(model.config.modalities, test, "test data")
    model.eval()
    keys = TableKeys.of_model(model)
    names = model.config.names
    n_total = next(iter(test.values())).shape[0]
    n = min(n_total, config.limit) if config.limit else n_total
    device = next(model.parameters()).device
    world = distributed.current()
    per_point: dict[str, dict[int, Tensor]] = {}
    precision = autocast_for(device, config.precision)
    starts = list(enumerate(range(0, n, config.batch_size)))[world.rank :: world.size]
    for index, start in progress_bar(starts, enabled=progress and world.is_main, unit="batch", desc=f"evaluate {name}"):
        rows = slice(start, min(n, start + config.batch_size))
        batch = {k: v[rows].to(device) for k, v in test.items() if k in names}
        seen = {k.removesuffix(SUFFIX): v[rows].to(device) for k, v in test.items() if is_mask_key(k)}
        generator = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + index)
        with precision:
            for cell, values in batch_cells(model, batch, config, generator).items():
                per_point.setdefault(cell, {})[index] = with_modalities(values, cell_modalities(model, cell), seen)
            for given in posterior_inputs(model):
                means = model.posterior(batch, given).mean
                per_point.setdefault("means/" + "+".join(given), {})[index] = with_modalities(means, given, seen)

    merged: dict[str, dict[int, Tensor]] = {}
    for shard in distributed.gather_objects(per_point, world):
        for cell, values in shard.items():
            merged.setdefault(cell, {}).update(values)
    cells = {cell: torch.cat([values[i] for i in sorted(values)]) for cell, values in merged.items()}
    active = {cell.removeprefix("means/"): int((cells.pop(cell).var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())
              for cell in [c for c in cells if c.startswith("means/")]}
    stats = {cell: mean_and_sem(values) for cell, values in cells.items() if len(values)}
    masked = any(is_mask_key(k) for k in test)

    def mean(cell: str) -> float | None:
        return stats[cell][0] if cell in stats else None

    def sem(cell: str) -> float | None:
        return stats[cell][1] if cell in stats else None

    def table(pick) -> Cells:
        return Cells(Bounds(pick("x/multiple"), pick("x/single")), Bounds(pick("x|w/multiple"), pick("x|w/single")),
                     pick("joint"))

    prior_check = None
    if "check/log p(w)" in stats:
        prior_check = PriorCheck(config.n_prior_check, mean("check/log p(w)"),
                                 Bounds(mean("check/x|w/multiple"), mean("check/x|w/single")))
    return Evaluation(
        model=name,
        keys=keys,
        k=config.k,
        n_prior=config.n_prior,
        n_test=n,
        log_likelihood=table(mean),
        stderr=table(sem),
        accuracy=mean("accuracy") if keys.ws else None,
        log_p_w=mean("log p(w)"),
        n_prior_check=prior_check,
        active_units=active,
        eval_seconds=round(time.perf_counter() - started, 2),
        n_per_cell={cell: len(values) for cell, values in cells.items()} if masked else None,
    )


def cell_modalities(model: MultimodalModel, cell: str) -> tuple[str, ...]:
    """The modalities a cell reads (its target and its proposal's inputs): log p(w) reads w,
    x: single reads x, every other cell reads x and w."""
    keys = TableKeys.of_model(model)
    if cell in ("log p(w)", "check/log p(w)"):
        return keys.ws
    if cell == "x/single":
        return (keys.x,)
    return model.config.names


def with_modalities(values: Tensor, names: Sequence[str], seen: dict[str, Tensor]) -> Tensor:
    """The per-point ``values`` (float64, on the CPU) of the data that have every modality in
    ``names`` (all of them when the test data has no masks, ``jmvae.masks``)."""
    masks = [seen[name] for name in names if name in seen]
    if masks:
        values = values[torch.stack(masks).all(0)]
    return values.double().cpu()


def batch_cells(model: MultimodalModel, batch: dict[str, Tensor], config: EvalConfig,
                generator: torch.Generator) -> dict[str, Tensor]:
    """Every cell the model defines, per test point of ``batch`` (see the module's table)."""
    keys = TableKeys.of_model(model)
    x, ws, names = keys.x, keys.ws, model.config.names
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
