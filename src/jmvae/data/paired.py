"""``PairedData``: the train and test tensors of every modality of one data set, paired by row.

Row i of every modality is the same example (an image and its label or attributes), which is
what a joint model p(x, w) is trained on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from jmvae.config import Modality
from jmvae.data.transforms import Standardization

FOLDER_OPTION = "folder"
"""The loader option that names a data folder (``jmvae.data.folder``): its absolute path."""


@dataclass
class PairedData:
    """Train and test tensors keyed by modality name.

    MNIST-like sets: ``train["image"]``: intensities in [0, 1], float32 (N, H, W);
    ``test["image"]``: {0, 1}; ``train["label"]``, ``test["label"]``: int64 (N,); ``classes``:
    the label names.

    CelebA: ``image`` float32 (N, 3, 64, 64), standardised; ``attributes`` float32 (N, 40) in
    {0, 1} (or {-1, 1}); ``classes`` is empty. A large image set is a ``StandardizedImages``
    (indexable like a tensor, decoded per batch from a memory-mapped cache) instead of a tensor.

    A data folder (``jmvae.data.folder``): the modalities its ``jmvae.json`` declares, with masks
    beside the values where some are missing (``jmvae.masks``), ``options`` {"folder": its path}.

    ``feature_names[m]``: names of the elements of a flat modality m (CelebA: the 40 attribute
    names for ``attributes``). ``standardization[m]``: how an image modality's pixels were
    standardised (``.undo(x)`` gives displayable [0, 1] intensities). ``options``: the loader's
    keyword arguments that load the same data again (``load_dataset(name, dir, **options)``).
    ``run_info()``: what a run folder remembers of the data (``DataInfo``).

    ``binarized``: the training transform, the modalities whose values are intensities in [0, 1]
    that training binarises afresh at every step (x_b ~ Bernoulli(x), the stochastic binarisation of
    the paper's MNIST protocol); None: every Bernoulli modality (``binarized_modalities``). A
    modality stored as 0/1 needs none: MNIST-like sets name their image, CelebA names nothing.
    """

    name: str
    modalities: tuple[Modality, ...]
    classes: tuple[str, ...]
    train: dict[str, Tensor]
    test: dict[str, Tensor]
    feature_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    standardization: dict[str, Standardization] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    binarized: tuple[str, ...] | None = None

    def binarized_modalities(self, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The modalities (of ``names``, default all) that training binarises, in model order."""
        chosen = self.binarized if self.binarized is not None else tuple(
            m.name for m in self.modalities if m.likelihood == "bernoulli")
        return tuple(name for name in (names if names is not None else tuple(m.name for m in self.modalities))
                     if name in chosen)

    def to(self, device: str | torch.device) -> PairedData:
        return dataclasses.replace(
            self,
            train={k: v.to(device) for k, v in self.train.items()},
            test={k: v.to(device) for k, v in self.test.items()},
        )

    def run_info(self) -> DataInfo:
        """What a run folder remembers of this data (``DataInfo``)."""
        return DataInfo(self.name, dict(self.options), dict(self.feature_names), dict(self.standardization))


@dataclass(frozen=True)
class DataInfo:
    """What a run folder remembers of its data (``config.json``'s ``data``): the data set's name
    and the loader options that load it again (``load_dataset(name, dir, **options)``), the names
    of flat modalities' elements (CelebA's 40 attributes), and how image modalities were
    standardised (to show its images and to read a user's image as the model's input)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    feature_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    standardization: dict[str, Standardization] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_names", {k: tuple(v) for k, v in self.feature_names.items()})

    @property
    def folder(self) -> str | None:
        """The data folder (absolute path) of data read from one (``jmvae.data.folder``), else None."""
        return self.options.get(FOLDER_OPTION)

    def to_dict(self) -> dict[str, Any]:
        """JSON: ``{"name": ...}``, plus ``options``, ``feature_names``, ``standardization`` where present."""
        info: dict[str, Any] = {"name": self.name}
        if self.options:
            info["options"] = dict(self.options)
        if self.feature_names:
            info["feature_names"] = {k: list(v) for k, v in self.feature_names.items()}
        if self.standardization:
            info["standardization"] = {k: v.to_dict() for k, v in self.standardization.items()}
        return info

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DataInfo:
        return cls(str(raw["name"]), dict(raw.get("options", {})), dict(raw.get("feature_names", {})),
                   {k: Standardization.from_dict(v) for k, v in raw.get("standardization", {}).items()})
