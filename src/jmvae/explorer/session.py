"""The explorer's domain: one trained run, its test data, and the computation behind each panel
of the page (``jmvae.explorer`` lists the API that serves them).

- samples: z ~ r(z | w) (the generation latent given a label or attributes; nothing given: the
  prior p(z)), shown as the means of p(x | z);
- analysis of one image: p(w | z) at z = the mean of q(z | x), and the reconstruction, the mean
  of p(x | z) at the same z;
- the latent map: a 2-D PCA of the means of the training posterior (q(z | x, w); the VAE's
  q(z | x)) over up to ``MAP_POINTS`` test points; a point's decoding is the mean of p(x | z) at
  its latent mean, a map position's at the PCA's inverse of it.

Images leave as displayable PNG data URLs (``jmvae.imageio``); labels and attributes are read by
the grammar of ``jmvae.conditions``, as on the command line.
"""

from __future__ import annotations

import math
import secrets
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmvae.conditions import Vocabulary
from jmvae.data import load_dataset
from jmvae.editing import predict_w_from_image
from jmvae.errors import DataError, JMVAEError
from jmvae.explorer.capabilities import probe
from jmvae.explorer.latent import latent_map
from jmvae.generation import class_probabilities, generate
from jmvae.imageio import (MAX_SIDE, MAX_UPLOAD_BYTES, MIN_SIDE, UPLOAD_FORMATS, displayable, image_grid, png_data_url,
                           read_face)
from jmvae.runs import load_run

MAP_POINTS = 2000  # test points on the latent map
MAP_ATTRIBUTE = "Male"  # what colours a face run's latent map
MAX_SAMPLES = 64
DEFAULT_SAMPLES = 16


class RequestError(JMVAEError):
    """A malformed API request (bad label, index, JSON)."""

    status = 400


class Explorer:
    """A trained run, its test data and the computations behind each panel of the page."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", data_dir: str | Path | None = None, map_points: int = MAP_POINTS) -> None:
        self.run_dir = Path(run_dir)
        loaded = load_run(self.run_dir, device)
        self.model, self.run, self.state = loaded.model, loaded.config, loaded.state
        self.config = self.run.model
        self.device = next(self.model.parameters()).device
        self.lock = threading.Lock()  # one model computation at a time
        self._find_modalities()
        self.data_name = self.run.data.name
        self.test: dict[str, Tensor] | None = None
        self.data_note = ""
        try:
            data = load_dataset(self.data_name, data_dir, **self.run.data.options)
        except (DataError, OSError) as exc:
            self.data_note = f"test images unavailable ({' '.join(str(exc).split())}); the latent map and test images are off"
            self.classes = tuple(str(i) for i in range(self.n_classes)) if self.label else ()
        else:
            self.test = {k: v for k, v in data.test.items() if k in (self.image, self.label, self.attributes)}
            if tuple(self.test[self.image].shape[1:]) != self.image_shape:
                raise JMVAEError(
                    f"{self.run_dir}: the model's images are {self.image_shape} but {self.data_name}'s test images are {tuple(self.test[self.image].shape[1:])}"
                )
            self.classes = tuple(data.classes) if self.label else ()
        self.light_on_dark = True if self.test is None or self.colour else bool(self.test[self.image].float().mean() < 0.5)
        self.map_classes = self.classes if self.label else (
            (f"not {MAP_ATTRIBUTE}", MAP_ATTRIBUTE) if MAP_ATTRIBUTE in self.attribute_names else ())
        self.vocabulary = Vocabulary.of_run(self.config, self.run.data, self.classes)
        attributes_off = self.attribute_vector([]) if self.attributes else None
        self.capabilities = probe(self.model, self.image, self.label, self.attributes, attributes_off, self.data_note)
        self.latent = self._latent_map(map_points) if self.test is not None else None

    # -- set-up ---------------------------------------------------------------------------------
    def _find_modalities(self) -> None:
        """Which modality the page shows (the first grayscale or colour image), and which it reads
        as a label or as attributes."""
        images = [m for m in self.config.modalities if m.likelihood != "categorical"
                  and (len(m.shape) == 2 or (len(m.shape) == 3 and m.shape[0] == 3))]
        if not images:
            raise JMVAEError(f"{self.run_dir}: the explorer shows grayscale (H, W) or colour (3, H, W) images, and this "
                             f"model's modalities are {list(self.config.names)}")
        self.image = images[0].name
        self.image_shape: tuple[int, ...] = tuple(images[0].shape)
        self.colour = len(self.image_shape) == 3
        self.standardization = self.run.data.standardization.get(self.image)
        feature_names = self.run.data.feature_names
        attributes = [m for m in self.config.modalities if m.name in feature_names and m.name != self.image]
        self.attributes: str | None = attributes[0].name if attributes else None
        self.attribute_names: tuple[str, ...] = tuple(feature_names[self.attributes]) if attributes else ()
        labels = [m for m in self.config.modalities if m.likelihood == "categorical"]
        self.label: str | None = labels[0].name if labels else None
        self.n_classes = labels[0].shape[0] if labels else 0
        # The VAE keeps the label in its config but never reads it.
        if self.label and self.label not in set(self.model.inputs) | set(self.model.generated) | set(self.model.conditions):
            self.label = None
            self.n_classes = 0
        if self.image not in self.model.generated:
            raise JMVAEError(f"{self.run_dir}: {self.config.display_name} does not generate {self.image!r}")

    def _latent_map(self, limit: int) -> dict[str, Any]:
        """The map (``latent_map``) with each point's colour: its label, or one attribute on or off."""
        latent = latent_map(self.model, self.test, self.image, limit)
        indices = latent["indices"]
        if self.label:
            latent["labels"] = self.test[self.label][indices]
        elif MAP_ATTRIBUTE in self.attribute_names:  # faces: coloured by one attribute, on or off
            latent["labels"] = (self.test[self.attributes][indices, self.attribute_names.index(MAP_ATTRIBUTE)] > 0.5).long()
        else:
            latent["labels"] = None
        return latent

    # -- what the API returns ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The run, its modalities, classes, limits and capabilities, as the page shows them."""
        return {
            "model": self.run.display_name,
            "kind": self.config.kind,
            "data": self.data_name,
            "run_dir": str(self.run_dir.resolve()),
            "run_name": self.run_dir.resolve().name,
            "epoch": self.state.get("epoch"),
            "step": self.state.get("step"),
            "latent_dim": self.config.latent_dim,
            "hidden_dim": self.config.hidden_dim,
            "image": self.image,
            "image_shape": list(self.image_shape),
            "label": self.label,
            "classes": list(self.classes),
            "colour": self.colour,
            "attributes": list(self.attribute_names) if self.attributes else None,
            "map_classes": list(self.map_classes),
            "light_on_dark": self.light_on_dark,
            "test_size": 0 if self.test is None else len(self.test[self.image]),
            "data_note": self.data_note,
            "capabilities": self.capabilities,
            "limits": {"max_upload_mb": MAX_UPLOAD_BYTES // 2**20, "max_side": MAX_SIDE, "min_side": MIN_SIDE, "formats": list(UPLOAD_FORMATS)},
        }

    def class_index(self, value: Any) -> int:
        """A label sent as a class index or name -> the index (``jmvae.conditions``)."""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RequestError(f"label must be a class index 0..{self.n_classes - 1} or a class name, got {value!r}")
        return self.vocabulary.class_index(value, self.label, "label")

    def attribute_vector(self, on: list[Any]) -> Tensor:
        """The attributes in ``on`` set, the others unset, as a batch of one on the model's device."""
        if not isinstance(on, list) or not all(isinstance(a, str) for a in on):
            raise RequestError(f"attributes must be a list of attribute names, got {on!r}")
        self.vocabulary.check_attributes(on, self.attributes, "attributes")
        return self.vocabulary.tensors({self.attributes: dict.fromkeys(on, 1)})[self.attributes].to(self.device)

    def picture(self, images: Tensor) -> Tensor:
        """Model-space images as displayable [0, 1] intensities (a face run's standardization undone)."""
        return displayable(images, self.standardization)

    def prepare_face(self, data: bytes) -> tuple[Tensor, list[str]]:
        """An uploaded face -> the (3, H, W) standardised image the model reads, and notes."""
        options, standardization = self.run.data.options, self.run.data.standardization[self.image]
        face, notes = read_face(data, self.image_shape, options, standardization)
        side = self.image_shape[-1]
        return face[0], notes + [f"resized to {side}x{side} and standardised as the training faces"]

    def sample(self, label: Any = None, n: int = DEFAULT_SAMPLES, seed: int | None = None,
               attributes: list[Any] | None = None) -> dict[str, Any]:
        """``n`` images, the means of p(x | z) with z drawn (seeded) given the label, the attributes or nothing (p(z))."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
            raise RequestError(f"n must be an integer from 1 to {MAX_SAMPLES}, got {n!r}")
        if seed is None:
            seed = secrets.randbelow(2**31)
        elif isinstance(seed, bool) or not isinstance(seed, int):
            raise RequestError(f"seed must be an integer, got {seed!r}")
        kind = "sample_attributes" if attributes is not None else "sample_label" if label is not None else "sample_prior"
        cap = self.capabilities.get(kind, {"ok": False, "why": "this run has a label, not attributes: send {\"label\": ...}"})
        if not cap["ok"]:
            raise RequestError(cap["why"])
        generator = torch.Generator(device=self.device).manual_seed(seed)
        with self.lock, torch.inference_mode():
            if attributes is not None:
                images = generate(self.model, {self.attributes: self.attribute_vector(attributes)}, n, generator)[self.image].mean
            elif label is None:  # z ~ p(z)
                images = generate(self.model, {}, n, generator)[self.image].mean
            else:
                index = self.class_index(label)
                given = {self.label: torch.tensor([index], device=self.device)}
                images = generate(self.model, given, n, generator)[self.image].mean
        columns = math.ceil(math.sqrt(n))
        out = {"grid": png_data_url(image_grid(self.picture(images), columns=columns)), "n": n, "columns": columns, "seed": seed, "uses": cap["uses"]}
        if attributes is not None:
            out["attributes"] = attributes
        elif label is not None:
            out.update(label=index, class_name=self.classes[index])
        return out

    def test_image(self, index: Any) -> tuple[Tensor, int | None]:
        """Test image ``index`` (model space) and its label, if the run has one."""
        if self.test is None:
            raise RequestError(self.data_note)
        size = len(self.test[self.image])
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise RequestError(f"test_index must be an integer from 0 to {size - 1}, got {index!r}")
        label = int(self.test[self.label][index]) if self.label else None
        return self.test[self.image][index], label

    def analyze(self, image: Tensor, label: int | None = None, source: str = "upload", notes: list[str] | None = None) -> dict[str, Any]:
        """Prediction and reconstruction of one image (the model's input space); ``label``: its true label, if known."""
        out: dict[str, Any] = {"source": source, "input": png_data_url(self.picture(image)), "notes": notes or []}
        if label is not None:
            out["true_label"] = label
            out["true_class"] = self.classes[label]
        x = image.reshape(1, *self.image_shape).to(self.device, torch.get_default_dtype())
        caps = self.capabilities
        with self.lock, torch.inference_mode():
            if caps["predict"]["ok"] and self.attributes and not self.label:
                probs = predict_w_from_image(self.model, x, self.attribute_names).probabilities.float().cpu()
                order = probs.argsort(descending=True).tolist()
                out["prediction"] = {"attributes": [{"name": self.attribute_names[i], "probability": round(float(probs[i]), 6)}
                                                    for i in order], "uses": caps["predict"]["uses"]}
            elif caps["predict"]["ok"]:
                probs = class_probabilities(self.model, {self.image: x}, self.label, (self.image,))[0].float().cpu()
                best = int(probs.argmax())
                out["prediction"] = {"label": best, "class_name": self.classes[best], "probability": float(probs[best]),
                                     "probabilities": [round(float(p), 6) for p in probs], "uses": caps["predict"]["uses"]}
            else:
                out["prediction_off"] = caps["predict"]["why"]
            if caps["reconstruct"]["ok"]:
                z = self.model.posterior({self.image: x}, (self.image,)).mean
                recon = self.model.decode(z, {})[self.image].mean[0]
                out["reconstruction"] = {"image": png_data_url(self.picture(recon)), "uses": caps["reconstruct"]["uses"]}
            elif label is not None:
                batch = {self.image: x, self.label: torch.tensor([label], device=self.device)}
                z = self.model.posterior(batch, tuple(self.model.inputs)).mean
                recon = self.model.decode(z, batch)[self.image].mean[0]
                out["reconstruction"] = {"image": png_data_url(self.picture(recon)), "uses": caps["reconstruct"]["uses"]}
            else:
                out["reconstruction_off"] = caps["reconstruct"]["why"]
        return out

    def latent_points(self) -> dict[str, Any]:
        """The map's 2-D points, their colours and test indices, and what they are."""
        if self.latent is None:
            raise RequestError(self.data_note)
        latent = self.latent
        return {
            "points": [[round(float(a), 5), round(float(b), 5)] for a, b in latent["xy"]],
            "labels": None if latent["labels"] is None else latent["labels"].tolist(),
            "classes": list(self.map_classes),
            "test_indices": latent["indices"].tolist(),
            "explained_variance": [round(float(v), 4) for v in latent["explained"]],
            "posterior": self.capabilities["latent_map"]["posterior"],
            "uses": self.capabilities["latent_map"]["uses"],
        }

    def _decode_mean(self, z: Tensor, label: int | None) -> str:
        """The mean of p(x | z) at one latent (with the label, for a decoder that reads it) as a data URL."""
        batch = {self.label: torch.tensor([label], device=self.device)} if self.label and label is not None else {}
        return png_data_url(self.picture(self.model.decode(z.reshape(1, -1).to(self.device), batch)[self.image].mean[0]))

    def point(self, k: int) -> dict[str, Any]:
        """Map point k: its test image, the decoding of its latent mean, and its nearest neighbour's."""
        if self.latent is None:
            raise RequestError(self.data_note)
        latent = self.latent
        n = len(latent["indices"])
        if not 0 <= k < n:
            raise RequestError(f"point must be from 0 to {n - 1}, got {k}")
        z = latent["z"]
        distances = (z - z[k]).pow(2).sum(-1)
        distances[k] = float("inf")
        j = int(distances.argmin())

        def describe(i: int) -> dict[str, Any]:
            test_index = int(latent["indices"][i])
            label = int(latent["labels"][i]) if latent["labels"] is not None else None
            with torch.inference_mode():
                decoded = self._decode_mean(z[i], label if self.label else None)
            return {"point": i, "test_index": test_index, "label": label,
                    "class_name": self.map_classes[label] if label is not None else None,
                    "xy": [float(v) for v in latent["xy"][i]],
                    "image": png_data_url(self.picture(self.test[self.image][test_index])), "decoded": decoded}

        with self.lock:
            out = describe(k)
            out["neighbour"] = describe(j)
        out["neighbour"]["distance"] = round(float(distances[j].sqrt()), 4)
        out["uses"] = f"decoded: the mean of p(x|z) at z = the mean of {self.capabilities['latent_map']['posterior']}; neighbour: the nearest other map point in the full {self.config.latent_dim}-D latent space"
        return out

    def decode_position(self, x: Any, y: Any) -> dict[str, Any]:
        """The decoding at map position (x, y): z = the PCA's inverse, the mean along the other directions."""
        cap = self.capabilities["decode_position"]
        if not cap["ok"]:
            raise RequestError(cap["why"])
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
            raise RequestError(f"x and y must be finite numbers, got {x!r}, {y!r}")
        pca = self.latent["pca"]
        xy = np.array([[x, y][: pca.n_components_]], dtype=np.float64)
        z = torch.from_numpy(pca.inverse_transform(xy)).to(torch.get_default_dtype())[0]
        with self.lock, torch.inference_mode():
            decoded = self._decode_mean(z, None)
        return {"xy": [x, y], "decoded": decoded,
                "uses": "the mean of p(x|z) at z = the PCA's inverse of the map position (the mean of the map's points along the other latent directions)"}
