r"""Predicting the other modality of one image, and editing an image through it (Figure 6).

For a trained JMVAE and an image x, with w the other modality (CelebA's 40 attributes, or a
label):

- prediction (``predict_w_from_image``): z = mean of q(z | x) (JMVAE-kl: the image encoder;
  JMVAE-zero: the joint encoder with w zero-filled), then p(w | z). Each binary attribute's
  probability is p(w_j = 1 | z) for Bernoulli attributes and P(w_j > 0 | z) = Phi(mean_j / scale_j)
  for the paper's tanh-Gaussian ones; a label gets its class probabilities.
- editing: the predicted w is made definite (each attribute on or off, the most probable
  class) and the chosen values are changed, giving w'. Two ways to decode the change:

  * ``shift`` (default): z' = mean q(z | x, w) + [mean q(z | w') - mean q(z | w)], the
    reconstruction's latent moved by the difference the change makes to the w-encoder's mean;
  * ``joint``: z' = mean q(z | x, w'), the joint encoder given the image and the edited w (our
    reading of Figure 6).

  Why shift is the default: the joint encoder is dominated by the image, which has far more
  dimensions than w, so changing w' barely moves z' (measured in docs/editing.md with
  ``scripts/measure_editing.py``). The reconstruction at mean q(z | x, w) with the unedited w is
  returned beside the edits, for comparison.

Image files are read by ``jmvae.imageio``; the changes are written in the grammar of
``jmvae.conditions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Normal

from jmvae.errors import JMVAEError
from jmvae.models import MultimodalModel


@dataclass
class Prediction:
    """The probabilities of w given one image: ``names[i]`` has ``probabilities[i]``.

    ``kind``: "attributes" (independent, each in [0, 1]) or "classes" (they sum to 1)."""

    names: tuple[str, ...]
    probabilities: Tensor
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "probabilities": {n: float(p) for n, p in zip(self.names, self.probabilities)}}


def other_modality(model: MultimodalModel) -> str:
    """The w of a JMVAE with an image x and one other modality; a clear error for other models."""
    if model.config.kind not in ("jmvae-zero", "jmvae-kl") or len(model.config.names) != 2:
        raise JMVAEError(
            f"{model.config.display_name} cannot predict or edit through w: that needs a JMVAE (jmvae-zero, jmvae-kl "
            "or jmvae-gan) of an image and one other modality, which generates w from the image"
        )
    return model.config.names[1]


@torch.inference_mode()
def predict_w_from_image(model: MultimodalModel, image: Tensor, names: Sequence[str]) -> Prediction:
    """p(w | z) at z = mean of q(z | x) for one image (1, *shape); see the module docstring."""
    x, w = model.config.names[0], other_modality(model)
    modality = model.config.modality(w)
    z = model.posterior({x: image}, (x,)).mean
    dist = model.decode(z)[w]
    if modality.likelihood == "categorical":
        return Prediction(tuple(names), dist.probs[0], "classes")
    if modality.likelihood == "bernoulli":
        return Prediction(tuple(names), dist.mean[0], "attributes")
    base: Normal = dist.base_dist
    return Prediction(tuple(names), Normal(0.0, 1.0).cdf(base.loc[0] / base.scale[0]), "attributes")


def definite(model: MultimodalModel, prediction: Prediction) -> Tensor:
    """The predicted w made definite, as a batch of one: the most probable class, or each
    attribute on (1) or off (0 for Bernoulli, -1 for tanh-Gaussian attributes)."""
    modality = model.config.modality(other_modality(model))
    if modality.likelihood == "categorical":
        return prediction.probabilities.argmax().reshape(1)
    off = 0.0 if modality.likelihood == "bernoulli" else -1.0
    return torch.where(prediction.probabilities > 0.5, 1.0, off).reshape(1, -1)


def apply_changes(model: MultimodalModel, w: Tensor, change: int | Mapping[str, float], names: Sequence[str]) -> Tensor:
    """A copy of the definite w (batch of one) with ``change`` applied: a class index for a label,
    {attribute name: 1 or 0} for attributes (``jmvae.conditions``)."""
    modality = model.config.modality(other_modality(model))
    if modality.likelihood == "categorical":
        return torch.tensor([int(change)], device=w.device)
    off = 0.0 if modality.likelihood == "bernoulli" else -1.0
    edited = w.clone()
    for name, value in change.items():
        edited[0, list(names).index(name)] = 1.0 if value else off
    return edited


EDIT_METHODS = ("shift", "joint")


@torch.inference_mode()
def edit_image(model: MultimodalModel, image: Tensor, edits: Sequence[int | Mapping[str, float]],
               names: Sequence[str], method: str = "shift") -> tuple[Prediction, Tensor, list[Tensor]]:
    """(the prediction, the reconstruction with the predicted w, one edited image per entry of
    ``edits``); ``method``: ``shift`` or ``joint`` (see the module docstring)."""
    if method not in EDIT_METHODS:
        raise JMVAEError(f"edit method {method!r} is not one of {', '.join(EDIT_METHODS)}")
    prediction = predict_w_from_image(model, image, names)
    w = definite(model, prediction).to(image.device)
    reconstruction = None
    edited = []
    for change in edits:
        reconstruction, image_new = edit_batch(model, image, w, apply_changes(model, w, change, names), method)
        edited.append(image_new)
    if reconstruction is None:
        reconstruction = edit_batch(model, image, w, w, method)[0]
    return prediction, reconstruction, edited


@torch.inference_mode()
def edit_batch(model: MultimodalModel, images: Tensor, w: Tensor, w_new: Tensor, method: str = "shift") -> tuple[Tensor, Tensor]:
    """(reconstructions at mean q(z | x, w), images edited to ``w_new``) for a batch."""
    x, name = model.config.names[0], other_modality(model)
    z = model.posterior({x: images, name: w}, model.config.names).mean
    if method == "joint":
        z_new = model.posterior({x: images, name: w_new}, model.config.names).mean
    else:
        z_new = z + model.posterior({name: w_new}, (name,)).mean - model.posterior({name: w}, (name,)).mean
    return model.decode(z)[x].mean, model.decode(z_new)[x].mean


@torch.inference_mode()
def label_edit_success(model: MultimodalModel, judge, images: Tensor, method: str = "shift") -> float:
    """The share of ``images`` whose label, changed to the next class ((c + 1) mod C from the
    model's own prediction c), gives an image the independent ``judge`` (``jmvae.coherence``)
    reads as that next class: how well an edit carries a label change."""
    x, name = model.config.names[0], other_modality(model)
    classes = model.config.modality(name).shape[0]
    predicted = model.decode(model.posterior({x: images}, (x,)).mean)[name].probs.argmax(-1)
    target = (predicted + 1) % classes
    _, edited = edit_batch(model, images, predicted, target, method)
    return float((judge.classify(edited.cpu()) == target.cpu()).float().mean())
