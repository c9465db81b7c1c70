"""Which modalities each datum has: the masks of partially paired data.

A data set with missing values keeps every modality's tensor at full length (a missing value is
stored as zeros, never NaN) and adds, beside it in the same ``train`` / ``test`` dict, a bool
tensor of shape (N,) under ``observed_key(name)``: True where datum i has modality ``name``.
A modality without a mask is observed for every datum. Because the masks are ordinary entries of
the split's dict, batching, device moves and data-parallel rows index them with the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

SUFFIX = ":observed"


def observed_key(name: str) -> str:
    """The key of modality ``name``'s mask in a split's dict (``"label:observed"``)."""
    return name + SUFFIX


def is_mask_key(key: str) -> bool:
    return key.endswith(SUFFIX)


def observed(batch: Mapping[str, Tensor], name: str) -> Tensor | None:
    """Modality ``name``'s mask (bool (B,)) in ``batch``, or None when every datum has it."""
    return batch.get(observed_key(name))


def has_masks(batch: Mapping[str, Tensor]) -> bool:
    return any(is_mask_key(k) for k in batch)


def observed_matrix(batch: Mapping[str, Tensor], names: Sequence[str], n: int) -> Tensor:
    """Bool (n, len(names)): column j says which data have modality ``names[j]``."""
    device = next(iter(batch.values())).device
    columns = [observed(batch, name) for name in names]
    return torch.stack([c.to(device=device, dtype=torch.bool) if c is not None
                        else torch.ones(n, dtype=torch.bool, device=device) for c in columns], dim=1)


def modalities_of(data: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``data`` without its masks."""
    return {k: v for k, v in data.items() if not is_mask_key(k)}


def modalities_and_masks(split: Mapping[str, Tensor], names: Sequence[str]) -> dict[str, Tensor]:
    """The entries of ``split`` for the modalities ``names``, with their masks where there are any."""
    keys = [*names, *(observed_key(n) for n in names if observed_key(n) in split)]
    return {key: split[key] for key in keys}
