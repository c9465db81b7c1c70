r"""Predicting the other modality of one image, and editing an image through it (Figure 6).

For a trained JMVAE and an image x, with w the other modality (CelebA's 40 attributes, or a
label):

- prediction: z = mean of q(z | x) (JMVAE-kl: the image encoder; JMVAE-zero: the joint encoder
  with w zero-filled), then p(w | z). Each binary attribute's probability is p(w_j = 1 | z) for
  Bernoulli attributes and P(w_j > 0 | z) = Phi(mean_j / scale_j) for the paper's tanh-Gaussian
  ones; a label gets its class probabilities.
- editing: the predicted w is made definite (each attribute on or off, the most probable
  class) and the chosen values are changed, giving w'. Two ways to decode the change:

  * ``shift`` (default): z' = mean q(z | x, w) + [mean q(z | w') - mean q(z | w)], the
    reconstruction's latent moved by the difference the change makes to the w-encoder's mean;
  * ``joint``: z' = mean q(z | x, w'), the joint encoder given the image and the edited w (our
    reading of Figure 6).

  The joint encoder is dominated by the image: on the committed MNIST JMVAE-kl(0.01), changing
  the label of 500 test digits to the next digit gives images an independent classifier reads
  as the new digit 1.0% of the time with ``joint`` and 77.6% with ``shift``
  (docs/editing.md). The reconstruction at mean q(z | x, w) with the unedited w is returned
  beside the edits, for comparison.

Images come from a file: a face through the run's own crop, size and standardization (an image
that is not an aligned 178x218 CelebA face is centre-cropped to a square), a digit through the
explorer's upload preparation (grayscale, inverted when needed, padded, resized, binarized).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Normal

from jmvae.errors import DataError, JMVAEError
from jmvae.generation import class_index
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


def feature_names(model: MultimodalModel, run_data: Mapping[str, Any], classes: Sequence[str] | None = None) -> tuple[str, ...]:
    """Names of w's elements: the run's attribute names, the class names, or indices."""
    w = model.config.modality(other_modality(model))
    names = run_data.get("feature_names", {}).get(w.name)
    if names:
        return tuple(names)
    return tuple(classes) if classes else tuple(str(i) for i in range(w.shape[0]))


@torch.inference_mode()
def predict_other(model: MultimodalModel, image: Tensor, names: Sequence[str]) -> Prediction:
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


def parse_changes(model: MultimodalModel, text: str, names: Sequence[str]) -> dict[str, float]:
    """``"Smiling=1,Male=0"`` (attributes) or, for a label, ``"label=3"`` / ``"3"`` / ``"label=Sneaker"``
    (a class index or name; the key, if given, must be the label's modality name)."""
    modality = model.config.modality(other_modality(model))
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise JMVAEError("--set is empty; give e.g. --set Smiling=1,Male=0 (attributes) or --set label=3")
    if modality.likelihood == "categorical":
        if len(items) != 1:
            raise JMVAEError(f"--set {text!r}: a label takes one value, e.g. --set {modality.name}=3")
        key, sep, value = items[0].rpartition("=")
        if sep and key.strip() != modality.name:
            raise JMVAEError(f"--set {text!r}: this run's label is {modality.name!r}; give e.g. --set {modality.name}=3")
        indices = tuple(str(i) for i in range(len(names)))
        index = class_index(value, len(names), None if tuple(names) == indices else names, f"--set {modality.name}")
        return {names[index]: 1.0}
    changes: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or value not in ("0", "1"):
            raise JMVAEError(f"--set {item!r}: expected ATTRIBUTE=1 or ATTRIBUTE=0, e.g. Smiling=1")
        if name not in names:
            raise JMVAEError(f"--set {item!r}: unknown attribute {name!r}; the run's are {', '.join(names)}")
        changes[name] = float(value)
    return changes


def apply_changes(model: MultimodalModel, w: Tensor, changes: Mapping[str, float], names: Sequence[str]) -> Tensor:
    """A copy of the definite w (batch of one) with ``changes`` applied."""
    modality = model.config.modality(other_modality(model))
    if modality.likelihood == "categorical":
        (name,) = changes
        return torch.tensor([list(names).index(name)], device=w.device)
    off = 0.0 if modality.likelihood == "bernoulli" else -1.0
    edited = w.clone()
    for name, value in changes.items():
        edited[0, list(names).index(name)] = 1.0 if value else off
    return edited


EDIT_METHODS = ("shift", "joint")


@torch.inference_mode()
def edit_image(model: MultimodalModel, image: Tensor, edits: Sequence[Mapping[str, float]],
               names: Sequence[str], method: str = "shift") -> tuple[Prediction, Tensor, list[Tensor]]:
    """(the prediction, the reconstruction with the predicted w, one edited image per entry of
    ``edits``); ``method``: ``shift`` or ``joint`` (see the module docstring)."""
    if method not in EDIT_METHODS:
        raise JMVAEError(f"edit method {method!r} is not one of {', '.join(EDIT_METHODS)}")
    prediction = predict_other(model, image, names)
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


# -- images from files ---------------------------------------------------------------------------


def load_image(path: str | Path, model: MultimodalModel, run_data: Mapping[str, Any]) -> tuple[Tensor, list[str]]:
    """An image file -> the batch of one the model reads, and notes on what was done to it."""
    x = model.config.modality(model.config.names[0])
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    standardization = run_data.get("standardization", {}).get(x.name)
    if standardization is not None:  # a face: the run's crop and size, then its standardization
        return _face(path, x.shape, run_data.get("options", {}), standardization)
    from jmvae.explorer import UploadError, prepare_upload

    if len(x.shape) not in (1, 2):
        raise JMVAEError(f"{x.name} of shape {x.shape}: reading it from a file is supported for faces and digits only")
    side = x.shape if len(x.shape) == 2 else (int(x.shape[0] ** 0.5),) * 2
    if len(x.shape) == 1 and side[0] * side[1] != x.shape[0]:
        raise JMVAEError(f"{x.name} of {x.shape[0]} values is not a square image; it cannot be read from a file")
    try:
        pixels, notes = prepare_upload(path.read_bytes(), side, source="the file")
    except UploadError as exc:
        raise DataError(f"{path}: {exc}") from None
    return pixels.reshape(1, *x.shape), notes


def _face(path: Path, shape: tuple[int, ...], options: Mapping[str, Any], standardization: Mapping[str, Any]) -> tuple[Tensor, list[str]]:
    """A face file, checked like the explorer's uploads (PNG or JPEG, size limits, EXIF
    orientation), converted to RGB when it is not (with a note), then ``face_tensor``."""
    from jmvae.explorer import UploadError, open_upload

    try:
        image = open_upload(path.read_bytes(), source="the file")
    except UploadError as exc:
        raise DataError(f"{path}: {exc}") from None
    notes = []
    if image.mode != "RGB":
        notes.append(f"converted from mode {image.mode} to RGB")
        image = image.convert("RGB")
    face, more = face_tensor(image, shape, options, standardization)
    return face, notes + more


def face_tensor(image, shape: tuple[int, ...], options: Mapping[str, Any], standardization: Mapping[str, Any]) -> tuple[Tensor, list[str]]:
    """A Pillow RGB face -> the standardised batch of one a face run reads, and notes: the run's
    crop (an image that is not a 178x218 aligned face: its centre square; ``detect``: the face
    detector's box), resized to the model's side with Lanczos, as the CelebA cache was made."""
    import numpy as np
    from PIL import Image

    from jmvae.data import Standardization
    from jmvae.data.celeba import ALIGNED_CROP, ALIGNED_SIZE, detect_face

    crop, size, notes = options.get("crop", "aligned"), shape[-1], []
    width, height = image.size
    if crop == "detect":
        box = detect_face(np.asarray(image))
        if box is None:
            raise DataError("the face detector found no face; crop the face yourself and try again")
    elif crop == "aligned" and (width, height) == ALIGNED_SIZE:
        box = ALIGNED_CROP
    elif crop == "aligned" or box_outside(crop, width, height):
        side = min(width, height)
        box = ((width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2)
        notes.append(f"not an aligned {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} CelebA face: centre square {side}x{side} used")
    else:
        box = tuple(crop)
    pixels = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS, box=tuple(box)), dtype=np.uint8)
    tensor = torch.from_numpy(pixels.transpose(2, 0, 1).copy())
    return Standardization.from_dict(standardization).apply(tensor).unsqueeze(0), notes


def box_outside(crop: Any, width: int, height: int) -> bool:
    """Whether a (left, top, right, bottom) crop box does not fit an image of this size."""
    return isinstance(crop, (list, tuple)) and (crop[0] < 0 or crop[1] < 0 or crop[2] > width or crop[3] > height)


def displayable(images: Tensor, model: MultimodalModel, run_data: Mapping[str, Any]) -> Tensor:
    """Images as [0, 1] intensities (faces: standardization undone), shape (N, *image shape)."""
    x = model.config.modality(model.config.names[0])
    images = images.reshape(len(images), *x.shape).float().cpu()
    standardization = run_data.get("standardization", {}).get(x.name)
    if standardization is None:
        return images.clamp(0, 1)
    from jmvae.data import Standardization

    return Standardization.from_dict(standardization).undo(images)
