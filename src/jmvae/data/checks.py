"""Checks that paired tensors fit their modalities, before hours are spent on them.

Every modality must be present with the same number of examples, the shape and dtype its
likelihood expects, finite values, {0,1}/[0,1] values for Bernoulli data and labels in range.
Failures raise ``DataError`` with one line naming the split, the modality and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.errors import DataError
from jmvae.likelihoods import check_batch_value
from jmvae.masks import SUFFIX, is_mask_key, observed_matrix


def check_paired(modalities: Sequence[Modality], tensors: Mapping[str, Tensor], where: str) -> None:
    """Raise ``DataError`` unless ``tensors`` hold valid, equally long data for every modality."""
    missing = [m.name for m in modalities if m.name not in tensors]
    if missing:
        raise DataError(f"{where}: no data for modality {missing} (it has {sorted(tensors)})")
    counts = {m.name: int(tensors[m.name].shape[0]) if tensors[m.name].dim() else 0 for m in modalities}
    if len(set(counts.values())) != 1:
        raise DataError(f"{where}: modalities have different numbers of examples {counts}; they must be paired")
    if not next(iter(counts.values())):
        raise DataError(f"{where}: no examples")
    check_masks(modalities, tensors, next(iter(counts.values())), where)
    for m in modalities:
        value = tensors[m.name]
        if not isinstance(value, torch.Tensor):
            # a lazily decoded source (jmvae.data.celeba.StandardizedImages): check its shape on one
            # example; its values come from a uint8 cache, so they are finite by construction
            try:
                check_batch_value(m, value[:1])
            except ValueError as exc:
                raise DataError(f"{where}: {exc}") from None
            continue
        try:
            check_batch_value(m, value)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
        if value.is_floating_point():
            bad = ~torch.isfinite(value)
            if bad.any():
                first = int(bad.reshape(value.shape[0], -1).any(1).nonzero()[0])
                raise DataError(f"{where}: modality {m.name!r} has NaN or infinite values (first at example {first})")
            if m.likelihood == "bernoulli" and (value.min() < 0 or value.max() > 1):
                raise DataError(
                    f"{where}: modality {m.name!r} is Bernoulli but has values in "
                    f"[{float(value.min()):.3g}, {float(value.max()):.3g}]; scale it to [0, 1]"
                )
        elif m.likelihood != "categorical":
            raise DataError(f"{where}: modality {m.name!r} ({m.likelihood}) must be floating point, got {value.dtype}")


def check_masks(modalities: Sequence[Modality], tensors: Mapping[str, Tensor], n: int, where: str) -> None:
    """Masks of partially paired data (``jmvae.masks``): each names a modality, is bool (n,), and
    every datum has at least one modality."""
    names = {m.name for m in modalities}
    masks = {key: value for key, value in tensors.items() if is_mask_key(key)}
    for key, mask in masks.items():
        name = key.removesuffix(SUFFIX)
        if name not in names:
            raise DataError(f"{where}: a mask {key!r} for no modality (the modalities: {sorted(names)})")
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (n,):
            raise DataError(f"{where}: mask {key!r} must be a bool tensor of shape ({n},), "
                            f"got {getattr(mask, 'dtype', type(mask))} {tuple(getattr(mask, 'shape', ()))}")
    if masks:
        seen = observed_matrix(tensors, [m.name for m in modalities], n)
        empty = (~seen.any(1)).nonzero()
        if len(empty):
            raise DataError(f"{where}: example {int(empty[0])} has no modality at all "
                            f"({len(empty)} such); drop them or give them a value")

