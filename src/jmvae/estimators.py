r"""The importance-weighted estimator of log-likelihoods (Burda, Grosse & Salakhutdinov 2016).

For target modalities T, conditions c (the CMMA's and CVAE's w; empty otherwise) and any
proposal q(z) (an encoder given some modalities, or the prior),

    log p(x_T | c) >= L_k = E[ log (1/k) sum_{i=1..k} p(x_T | z_i, c) p(z_i | c) / q(z_i) ],
    z_i ~ q,

a bound that tightens monotonically as k grows and reaches log p(x_T | c) when q is the exact
posterior (then every weight equals p(x_T | c), for any k). The k samples are streamed in
chunks of ``chunk`` samples and merged with ``logaddexp``, so memory is O(batch * chunk * D) for
any k, and the result is the same as one pass over all k.

Axis legend: S samples in a chunk, B batch, L latent dims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from jmvae.distributions import draw
from jmvae.models.base import Batch, MultimodalModel

TargetSets = Sequence[Sequence[str]]


CHUNK_ROWS = {"cpu": 2_500, "cuda": 200_000}


def default_chunk(batch_size: int, device: torch.device | str = "cpu") -> int:
    """Samples per chunk so that one chunk decodes about ``CHUNK_ROWS[device]`` latent vectors.

    On the CPU small chunks keep the decoder's activations in cache (measured: docs/benchmarks.md,
    ``benchmarks/ablations.py chunk``); a GPU wants large ones.
    """
    rows = CHUNK_ROWS.get(torch.device(device).type, CHUNK_ROWS["cuda"])
    return max(1, rows // max(1, batch_size))


@torch.inference_mode()
def iw_log_likelihoods(
    model: MultimodalModel,
    batch: Batch,
    target_sets: TargetSets,
    proposal: Distribution,
    k: int = 1000,
    chunk: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[tuple[str, ...], Tensor]:
    r"""L_k for several target sets from the same k samples of one proposal.

    ``proposal`` has batch shape (B,) (or () to share it across the batch, as the prior) and
    event shape (L,). Returns {tuple(targets): (B,) tensor}. Sharing the samples between target
    sets (e.g. log p(x) and log p(x, w) under q(z|x,w)) costs one decoder pass, not two.
    ``generator``: if given, samples are drawn with it (reproducible estimates).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    target_sets = [tuple(t) for t in target_sets]
    names = sorted({n for t in target_sets for n in t})
    first = next(iter(batch.values()))
    batch_size = first.shape[0]
    chunk = chunk or default_chunk(batch_size, first.device)
    totals = {t: None for t in target_sets}
    done = 0
    while done < k:
        s = min(chunk, k - done)
        z = sample(proposal, s, batch_size, generator)  # (S, B, L)
        log_ratio = model.prior(batch).log_prob(z) - proposal.log_prob(z)  # (S, B)
        log_lik = model.log_likelihoods(z, batch, names)
        for t in target_sets:
            log_w = log_ratio + sum(log_lik[n] for n in t)  # (S, B)
            part = torch.logsumexp(log_w, dim=0)
            totals[t] = part if totals[t] is None else torch.logaddexp(totals[t], part)
        done += s
    return {t: v - math.log(k) for t, v in totals.items()}


def iw_log_likelihood(
    model: MultimodalModel,
    batch: Batch,
    targets: Sequence[str],
    given: Sequence[str] | None = None,
    proposal: Distribution | None = None,
    k: int = 1000,
    chunk: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""L_k of log p(x_targets | conditions), (B,), with proposal q(z | given) or ``proposal``.

    ``given=None`` and no ``proposal``: the model's posterior from all its training inputs.
    """
    if proposal is None:
        with torch.inference_mode():
            proposal = model.posterior(batch, model.inputs if given is None else given)
    return iw_log_likelihoods(model, batch, [targets], proposal, k, chunk, generator)[tuple(targets)]


def sample(proposal: Distribution, s: int, batch_size: int, generator: torch.Generator | None) -> Tensor:
    """s samples of shape (S, B, L); a proposal without batch shape is drawn for every datum.

    With a ``generator`` the draw is ``distributions.draw``'s: exactly the proposal, reproducibly
    (a proposal it cannot draw that way is refused, never replaced by a Gaussian).
    """
    shape = (s,) if proposal.batch_shape else (s, batch_size)
    return proposal.sample(shape) if generator is None else draw(proposal, shape, generator)


@torch.inference_mode()
def log_marginal_by_prior(
    model: MultimodalModel,
    batch: Batch,
    targets: Sequence[str],
    n_prior: int = 5000,
    chunk: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""log p(x_T) ~= log (1/N) sum_i p(x_T | z_i), z_i ~ p(z) (Appendix B's log p(w), N = ``n_prior``).

    The estimate depends on the data only through x_T, so it is computed once per distinct value
    of x_T in the batch (10 at most for MNIST labels) with its own N prior samples, and shared by
    the data that have that value. Shape (B,).
    """
    keys = torch.cat([batch[n].reshape(batch[n].shape[0], -1).to(torch.float64) for n in targets], dim=1)
    unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
    first = torch.zeros(len(unique), dtype=torch.long, device=inverse.device)
    first.scatter_(0, inverse, torch.arange(len(inverse), device=inverse.device))
    distinct = {n: batch[n][first] for n in targets}
    estimates = iw_log_likelihoods(model, distinct, [targets], model.prior(distinct), n_prior, chunk, generator)
    return estimates[tuple(targets)][inverse]


def mean_and_sem(values: Tensor) -> tuple[float, float | None]:
    """Mean and its standard error over data points (None for a single point: JSON has no NaN)."""
    values = values.double()
    n = values.numel()
    sem = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else None
    return float(values.mean()), sem

