"""Likelihoods p(x_m | z): a modality's name of likelihood -> a ``torch.distributions`` object.

Decoders output unconstrained parameters (logits, means, log-scales); this module is the only
place that turns them into distributions (squashing a Gaussian's mean with tanh where the
modality asks for it), so every loss and estimator agrees on log p(x_m | z).
Every distribution returned has event shape ``modality.shape`` (categorical: event shape ()),
so ``log_prob`` sums over a datum's elements and keeps the sample and batch axes.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from jmvae.config import Modality


def decoder_width(modality: Modality) -> int:
    """How many numbers a decoder outputs per datum for this modality."""
    if modality.likelihood == "gaussian" and modality.scale is None:
        return 2 * modality.features  # mean and log-scale
    return modality.features


def distribution(modality: Modality, params: Tensor) -> Distribution:
    """Likelihood of ``modality`` from decoder output ``params`` of shape (..., decoder_width)."""
    lead = params.shape[:-1]
    if modality.likelihood == "bernoulli":
        logits = params.reshape(*lead, *modality.shape)
        return Independent(Bernoulli(logits=logits, validate_args=False), len(modality.shape))
    if modality.likelihood == "categorical":
        return Categorical(logits=params, validate_args=False)
    if modality.scale is None:
        mean, log_scale = params.chunk(2, dim=-1)
        scale = F.softplus(log_scale) + 1e-4
    else:
        mean, scale = params, torch.full_like(params, modality.scale)
    if modality.mean_activation == "tanh":
        mean = torch.tanh(mean)
    return Independent(
        Normal(mean.reshape(*lead, *modality.shape), scale.reshape(*lead, *modality.shape), validate_args=False),
        len(modality.shape),
    )


def log_prob(modality: Modality, params: Tensor, value: Tensor) -> Tensor:
    """log p(value | params), summed over the modality's elements; shape ``params.shape[:-1]``.

    Same number as ``distribution(modality, params).log_prob(value)``. For Bernoulli data with
    logits l and values x in [0, 1] it is sum_d x_d l_d - softplus(l_d) (minus the binary cross-
    entropy: the Bernoulli log-probability for binary x, the cross-entropy for [0, 1]
    intensities). It is linear in x, so it is computed as its value at the nearest binary
    b = round(x) plus the slope times the rest,

        x l - softplus(l) = log sigmoid((2b - 1) l) + (x - b) l,

    which has no cancellation for confident logits and is bit for bit log sigmoid((2x - 1) l),
    the binary-only form used before, when x is binary (its cost beside that form and beside
    binary cross-entropy: ``benchmarks/bernoulli_log_prob.py``, docs/benchmarks.md).
    """
    if modality.likelihood == "bernoulli":
        flat = value.reshape(*value.shape[: value.dim() - len(modality.shape)], -1)
        nearest = flat.round()  # the nearest of {0, 1}
        return F.logsigmoid(params * (2 * nearest - 1)).sum(-1) + (params * (flat - nearest)).sum(-1)
    return distribution(modality, params).log_prob(value)


def mean(modality: Modality, dist: Distribution) -> Tensor:
    """The expected value of a datum under ``dist``: pixel probabilities, class probabilities, means."""
    if modality.likelihood == "categorical":
        return dist.probs
    return dist.mean


def encoder_input(modality: Modality, value: Tensor) -> Tensor:
    """A datum as the flat float vector an encoder reads: one-hot for classes, flattened otherwise.

    The one-hot vectors are scattered ones rather than ``F.one_hot``, which on the CPU reads the
    labels' minimum and maximum back to the host first; label ranges are ``check_batch_value``'s job.
    """
    if modality.likelihood == "categorical":
        labels = value.long().unsqueeze(-1)
        zeros = torch.zeros(*value.shape, modality.shape[0], dtype=torch.get_default_dtype(), device=value.device)
        return zeros.scatter(-1, labels, 1.0)  # out of place: torch.func.vmap over models can batch it
    return value.reshape(value.shape[0], -1).to(torch.get_default_dtype())


def check_batch_value(modality: Modality, value: Tensor, label_range: bool = True) -> None:
    """Raise ``ValueError`` naming the modality if ``value`` does not have this modality's shape
    (and, for class labels, an integer dtype and, with ``label_range``, values in range).

    The range test reads the labels' minimum and maximum back to the host (on a GPU, a wait for
    the device): a caller that has checked every label once (the training loop, through
    ``MultimodalModel.labels_checked``) skips it; shapes and dtypes are always checked."""
    expected = () if modality.likelihood == "categorical" else modality.shape
    if value.dim() < 1 or tuple(value.shape[1:]) != expected:
        raise ValueError(
            f"modality {modality.name!r}: expected a batch of shape (batch, {', '.join(map(str, expected))})"
            .replace(", )", ")")
            + f", got {tuple(value.shape)}"
        )
    if modality.likelihood == "categorical":
        if value.is_floating_point():
            raise ValueError(f"modality {modality.name!r}: class labels must be integers, got {value.dtype}")
        if value.numel() and label_range and (int(value.min()) < 0 or int(value.max()) >= modality.shape[0]):
            raise ValueError(
                f"modality {modality.name!r}: labels must lie in [0, {modality.shape[0] - 1}], "
                f"got [{int(value.min())}, {int(value.max())}]"
            )
