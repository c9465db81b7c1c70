"""``jmvae serve RUN_DIR``: a small local web page to explore one trained run.

One page (``explorer_static/``: HTML, CSS and JavaScript, no external assets) and a JSON API,
served by Flask:

- ``GET  /api/info``: the run, the model's capabilities and, for each panel, the distributions it
  uses (or why the panel is off for this kind of model);
- ``POST /api/sample``: fresh images given a label (JMVAE: z ~ q(z|w); CVAE: z ~ p(z) and p(x|z,w);
  CMMA: z ~ p(z|w)) or from the prior p(z); the images are the means of p(x|z);
- ``POST /api/analyze``: an uploaded PNG/JPEG (multipart field ``image``) or a test image
  (JSON ``{"test_index": i}``) -> the label predicted by p(w|z) at the mean of q(z|x), with the
  probabilities, and the reconstruction, the mean of p(x|z) at the same z;
- ``GET  /api/latent``: a 2-D PCA of the latent means of up to 2,000 test points under the
  training posterior (q(z|x,w); the VAE's q(z|x)), with their labels;
- ``GET  /api/point/<k>``: map point k: its test image, the decoding of its own latent mean and
  its nearest neighbour in the full latent space (image and decoding);
- ``POST /api/decode``: the decoding of the latent at a map position (the PCA's inverse).

Uploads are read by Pillow, never written to disk, and checked: PNG or JPEG only, at most
``MAX_UPLOAD_BYTES`` and ``MAX_SIDE`` pixels a side. They are turned into the model's input like
the training images: grayscale, inverted when the data set is light-on-dark and the upload is
mostly light (mean > 0.5), padded to the model's aspect ratio, resized to its image shape and
binarized at 0.5. A bad upload gets a JSON error (HTTP 400, or 413 when too large) that the page
shows; the server keeps serving.

Face runs (colour (3, H, W) images with named attributes, e.g. CelebA) get the same panels with
attributes in place of labels: ``/api/sample`` takes ``{"attributes": [names]}`` (those on, the
others off), ``/api/analyze`` answers every attribute's probability p(w_j = 1 | z), most probable
first, an uploaded face is cropped, resized and standardised like the training faces
(``jmvae.editing.face_tensor``), images are shown with the standardisation undone, and the map
is coloured by ``MAP_ATTRIBUTE``.

``create_app(run_dir)`` builds the Flask app (the tests use it directly); ``serve(run_dir)``
runs it on werkzeug's threaded server, bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import io
import math
import secrets
import socket
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flask import Flask, jsonify, request
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from jmvae.data import Standardization, load_dataset
from jmvae.errors import DataError, JMVAEError
from jmvae.generation import generate, predict
from jmvae.images import image_grid
from jmvae.runs import load_model

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # an uploaded file's size limit
MAX_SIDE = 4096  # an uploaded image's width and height limit, in pixels
MIN_SIDE = 4  # smaller than this cannot show a digit
UPLOAD_FORMATS = ("PNG", "JPEG")
MAP_POINTS = 2000  # test points on the latent map
MAP_ATTRIBUTE = "Male"  # what colours a face run's latent map
MAX_SAMPLES = 64
DEFAULT_SAMPLES = 16
STATIC = Path(__file__).with_name("explorer_static")


class UploadError(JMVAEError):
    """An upload that is not a usable image; the message is shown on the page."""

    status = 400


class RequestError(JMVAEError):
    """A malformed API request (bad label, index, JSON)."""

    status = 400


# -- images ---------------------------------------------------------------------------------
def png_data_url(pixels: np.ndarray | Tensor) -> str:
    """An (H, W) grayscale or colour (3, H, W) / (H, W, 3) array, uint8 or floats in [0, 1], as a
    ``data:image/png`` URL."""
    if isinstance(pixels, Tensor):
        pixels = pixels.detach().float().cpu().numpy()
    if pixels.ndim == 3 and pixels.shape[0] == 3 and pixels.shape[-1] != 3:
        pixels = pixels.transpose(1, 2, 0)
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode="RGB" if pixels.ndim == 3 else "L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def open_upload(data: bytes, source: str = "the upload") -> Image.Image:
    """The bytes of an uploaded PNG/JPEG -> a loaded Pillow image, checked (format, size, pixels,
    damage) before and while decoding; ``UploadError`` with a message for the user otherwise, which
    calls the bytes ``source`` (the command line reads files: "the file")."""
    if not data:
        raise UploadError(f"{source} is empty; choose a PNG or JPEG image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{source} is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError, OSError, ValueError):
        raise UploadError(f"{source} is not an image that can be read; choose a PNG or JPEG file") from None
    if image.format not in UPLOAD_FORMATS:
        raise UploadError(f"{image.format} images are not accepted; choose a PNG or JPEG file")
    w, h = image.size
    if max(w, h) > MAX_SIDE:
        raise UploadError(f"the image is {w}x{h} pixels; the limit is {MAX_SIDE} pixels a side")
    if min(w, h) < MIN_SIDE:
        raise UploadError(f"the image is {w}x{h} pixels; it needs at least {MIN_SIDE} pixels a side")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadError(f"the {image.format} file is damaged or truncated; choose another image") from None
    return image


def prepare_upload(data: bytes, shape: tuple[int, int], light_on_dark: bool = True,
                   source: str = "the upload") -> tuple[Tensor, list[str]]:
    """The bytes of an uploaded PNG/JPEG -> a binary (H, W) float tensor, and notes on what was done.

    Raises ``UploadError`` with a message for the user when the upload is not usable.
    """
    height, width = shape
    image = open_upload(data, source)
    w, h = image.size
    notes = []
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
        notes.append("transparent pixels shown as white")
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if gray.mean() > 0.5 and light_on_dark:
        gray = 1.0 - gray
        notes.append(f"inverted: dark-on-light (mean {1 - gray.mean():.2f} > 0.5), the data are light-on-dark")
    elif gray.mean() <= 0.5 and not light_on_dark:
        gray = 1.0 - gray
        notes.append(f"inverted: light-on-dark (mean {1 - gray.mean():.2f} <= 0.5), the data are dark-on-light")

    # Pad (centred, with the background: 0 after the inversion) to the model's aspect ratio, then resize.
    rows, cols = gray.shape
    target_cols = max(cols, round(rows * width / height))
    target_rows = max(rows, round(cols * height / width))
    if (target_rows, target_cols) != (rows, cols):
        padded = np.zeros((target_rows, target_cols), dtype=np.float32)
        top, left = (target_rows - rows) // 2, (target_cols - cols) // 2
        padded[top : top + rows, left : left + cols] = gray
        gray = padded
        notes.append(f"padded to {target_cols}x{target_rows} to keep the aspect ratio")
    if gray.shape != (height, width):
        resized = Image.fromarray((gray * 255).round().astype(np.uint8), mode="L").resize((width, height), Image.BOX)
        gray = np.asarray(resized, dtype=np.float32) / 255.0
        notes.append(f"resized from {w}x{h} to {width}x{height}")
    binary = torch.from_numpy((gray > 0.5).astype(np.float32))
    notes.append("binarized at 0.5")
    if binary.sum() == 0:
        notes.append("the binarized image is blank: strokes too thin or too faint at this size")
    return binary, notes


# -- the model side ---------------------------------------------------------------------------
def _symbols(names: tuple[str, ...], image: str, label: str | None) -> str:
    short = {image: "x", **({label: "w"} if label else {})}
    return ",".join(short.get(n, n) for n in names)


class Explorer:
    """A trained run, its test data and the computations behind each panel of the page."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", data_dir: str | Path | None = None, map_points: int = MAP_POINTS) -> None:
        self.run_dir = Path(run_dir)
        self.model, self.run, self.state = load_model(self.run_dir, device)
        self.config = self.run.model
        self.device = next(self.model.parameters()).device
        self.lock = threading.Lock()  # one model computation at a time
        self._find_modalities()
        self.data_name = str(self.run.data.get("name", "?"))
        self.test: dict[str, Tensor] | None = None
        self.data_note = ""
        try:
            data = load_dataset(self.data_name, data_dir, **self.run.data.get("options", {}))
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
        self.capabilities = self._probe()
        self.latent = self._latent_map(map_points) if self.test is not None else None

    # -- set-up ---------------------------------------------------------------------------------
    def _find_modalities(self) -> None:
        images = [m for m in self.config.modalities if m.likelihood != "categorical"
                  and (len(m.shape) == 2 or (len(m.shape) == 3 and m.shape[0] == 3))]
        if not images:
            raise JMVAEError(f"{self.run_dir}: the explorer shows grayscale (H, W) or colour (3, H, W) images, and this "
                             f"model's modalities are {list(self.config.names)}")
        self.image = images[0].name
        self.image_shape: tuple[int, ...] = tuple(images[0].shape)
        self.colour = len(self.image_shape) == 3
        standardization = self.run.data.get("standardization", {}).get(self.image)
        self.standardization = Standardization.from_dict(standardization) if standardization else None
        feature_names = self.run.data.get("feature_names", {})
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

    def _works(self, fn) -> str | None:
        """None when ``fn()`` runs on this model, else the error's message."""
        try:
            with torch.inference_mode():
                fn()
        except (ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
            return " ".join(str(exc).split()) or type(exc).__name__
        return None

    def _probe(self) -> dict[str, dict[str, Any]]:
        """What each panel can do with this kind of model, which distributions it uses, or why not."""
        kind = self.config.kind
        name = "The " + {"vae": "VAE", "cvae": "CVAE", "cmma": "CMMA"}.get(kind, self.config.display_name)
        x = torch.zeros(1, *self.image_shape, device=self.device)
        w = torch.zeros(1, dtype=torch.long, device=self.device)
        z = torch.zeros(1, self.config.latent_dim, device=self.device)
        joint = _symbols(tuple(self.model.inputs), self.image, self.label)
        decoder = "p(x|z,w)" if self.label in self.model.conditions and kind == "cvae" else "p(x|z)"
        caps: dict[str, dict[str, Any]] = {}

        # Samples given a label.
        if self.label is None and self.attributes:
            caps["sample_label"] = {"ok": False, "why": "this run has attributes, not a label: tick attributes to sample from"}
        elif self.label is None:
            caps["sample_label"] = {"ok": False, "why": f"{name} models the image alone; it has no label to generate from (use the p(z) samples)"}
        else:
            err = self._works(lambda: generate(self.model, {self.label: w[:1]}, 1))
            latent = {
                "jmvae-kl": "z ~ q(z|w), the label's encoder",
                "jmvae-zero": "z ~ q(z|w), the joint encoder with the image zero-filled",
                "cvae": "z ~ p(z) = N(0, I); the decoder also reads w",
                "cmma": "z ~ p(z|w), the label-conditioned prior",
            }.get(kind, "z ~ the model's generation latent given w")
            caps["sample_label"] = {"ok": err is None, "why": err, "uses": f"{latent}; images: the mean of {decoder}"}
        # Samples given attributes (face runs only).
        if self.attributes is not None:
            given = {self.attributes: self.attribute_vector([])}
            err = self._works(lambda: generate(self.model, given, 1))
            latent = {"jmvae-kl": "z ~ q(z|w), the attributes' encoder",
                      "jmvae-zero": "z ~ q(z|w), the joint encoder with the image zero-filled",
                      "cvae": "z ~ p(z) = N(0, I); the decoder also reads w",
                      "cmma": "z ~ p(z|w), the attribute-conditioned prior"}.get(kind, "z ~ the model's generation latent given w")
            caps["sample_attributes"] = {"ok": err is None, "why": err,
                                         "uses": f"{latent} (w: the ticked attributes on, the others off); images: the mean of {decoder}"}
        # Samples from the prior.
        err = self._works(lambda: self.model.decode(self.model.prior({}).sample((1,)), {}))
        if err and kind in ("cvae", "cmma"):
            err = f"{name}'s " + ("decoder needs a label" if kind == "cvae" else "prior p(z|w) needs a label") + "; pick one above"
        caps["sample_prior"] = {"ok": err is None, "why": err, "uses": "z ~ p(z) = N(0, I); images: the mean of p(x|z)"}
        # From an image alone: predicting the label and reconstructing.
        image_alone = self._works(lambda: self.model.posterior({self.image: x}, (self.image,)))
        if image_alone and kind in ("cvae", "cmma"):
            image_alone = f"{name} has no encoder for the image alone: its q(z|x,w) needs the label too"
        q_x = "q(z|x), the image's encoder" if kind != "jmvae-zero" else "q(z|x), the joint encoder with the label zero-filled"
        target = self.label or self.attributes
        if target is None:
            caps["predict"] = {"ok": False, "why": f"{name} models the image alone; it has no label to predict"}
        elif target not in self.model.generated:
            caps["predict"] = {"ok": False, "why": f"{name} generates the image given the label, not the label: it has no p(w|z)"
                               + (", and its encoder q(z|x,w) needs the label too" if image_alone else "")}
        else:
            what = "p(w_j = 1|z) for each attribute" if self.attributes and not self.label else "p(w|z)"
            caps["predict"] = {"ok": image_alone is None, "why": image_alone, "uses": f"{what} at z = the mean of {q_x}"}
        recon_joint = None if image_alone is None else f"test images only: the mean of {decoder} at z = the mean of q(z|{joint}) (their true label given)"
        caps["reconstruct"] = {
            "ok": image_alone is None,
            "why": None if image_alone is None else image_alone + "; uploads cannot be reconstructed",
            "uses": f"the mean of {decoder} at z = the mean of {q_x}" if image_alone is None else recon_joint,
        }
        # The latent map and decoding.
        if self.test is None:
            caps["latent_map"] = {"ok": False, "why": self.data_note}
        else:
            caps["latent_map"] = {
                "ok": True,
                "why": None,
                "posterior": f"q(z|{joint})",
                "uses": f"2-D PCA of the means of q(z|{joint}) of test points; decoded: the mean of {decoder} at a latent mean",
            }
        err = self._works(lambda: self.model.decode(z, {}))
        if err and kind == "cvae":
            err = f"{name}'s decoder p(x|z,w) also needs a label, so a bare map position cannot be decoded"
        caps["decode_position"] = {"ok": err is None and self.test is not None, "why": err or (None if self.test is not None else self.data_note)}
        return caps

    @torch.inference_mode()
    def _latent_map(self, limit: int) -> dict[str, Any]:
        from sklearn.decomposition import PCA

        assert self.test is not None
        n_test = len(self.test[self.image])
        n = min(limit, n_test)
        generator = torch.Generator().manual_seed(0)
        indices = torch.randperm(n_test, generator=generator)[:n].sort().values
        names = tuple(self.model.inputs)
        means = []
        for start in range(0, n, 500):
            chunk = indices[start : start + 500]
            batch = {k: self.test[k][chunk].to(self.device) for k in names}
            means.append(self.model.posterior(batch, names).mean.float().cpu())
        z = torch.cat(means)
        components = min(2, z.shape[1], n)
        pca = PCA(n_components=components).fit(z.numpy())
        xy = pca.transform(z.numpy())
        if components < 2:
            xy = np.concatenate([xy, np.zeros((n, 2 - components))], axis=1)
        explained = list(pca.explained_variance_ratio_) + [0.0] * (2 - components)
        if self.label:
            labels = self.test[self.label][indices]
        elif MAP_ATTRIBUTE in self.attribute_names:  # faces: coloured by one attribute, on or off
            labels = (self.test[self.attributes][indices, self.attribute_names.index(MAP_ATTRIBUTE)] > 0.5).long()
        else:
            labels = None
        return {"indices": indices, "z": z, "xy": xy, "pca": pca, "explained": explained, "labels": labels}

    # -- what the API returns ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "model": self.config.display_name,
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
        if isinstance(value, str) and value in self.classes:
            return self.classes.index(value)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RequestError(f"label must be a class index 0..{self.n_classes - 1} or a class name, got {value!r}")
        try:
            index = int(value)
        except ValueError:
            raise RequestError(f"unknown label {value!r}; the classes are {', '.join(self.classes)}") from None
        if not 0 <= index < self.n_classes:
            raise RequestError(f"label {index} is outside 0..{self.n_classes - 1}")
        return index

    def attribute_vector(self, on: list[Any]) -> Tensor:
        """The attributes in ``on`` set, the others unset, as a batch of one on the model's device."""
        from jmvae.data.celeba import attribute_vector

        if not isinstance(on, list) or not all(isinstance(a, str) for a in on):
            raise RequestError(f"attributes must be a list of attribute names, got {on!r}")
        unknown = [a for a in on if a not in self.attribute_names]
        if unknown:
            raise RequestError(f"unknown attribute(s) {', '.join(unknown)}; this run's are {', '.join(self.attribute_names)}")
        return attribute_vector(self.attribute_names, on, self.config.modality(self.attributes)).to(self.device)

    def picture(self, images: Tensor) -> Tensor:
        """Model-space images as displayable [0, 1] intensities (a face run's standardization undone)."""
        images = images.detach().float().cpu()
        return self.standardization.undo(images) if self.standardization is not None else images

    def prepare_face(self, data: bytes) -> tuple[Tensor, list[str]]:
        """An uploaded face -> the (3, H, W) standardised image the model reads, and notes."""
        from jmvae.editing import face_tensor

        image = open_upload(data)
        notes = []
        if image.mode != "RGB":
            notes.append(f"converted from mode {image.mode} to RGB")
            image = image.convert("RGB")
        face, more = face_tensor(image, self.image_shape, self.run.data.get("options", {}),
                                 self.run.data["standardization"][self.image])
        return face[0], notes + more + [f"resized to {self.image_shape[-1]}x{self.image_shape[-1]} and standardised as the training faces"]

    def sample(self, label: Any = None, n: int = DEFAULT_SAMPLES, seed: int | None = None,
               attributes: list[Any] | None = None) -> dict[str, Any]:
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
            elif label is None:
                prior = self.model.prior({})
                loc = prior.base_dist.loc.reshape(-1, self.config.latent_dim).expand(n, -1)
                scale = prior.base_dist.scale.reshape(-1, self.config.latent_dim).expand(n, -1)
                z = loc + scale * torch.randn(loc.shape, generator=generator, device=self.device, dtype=loc.dtype)
                images = self.model.decode(z, {})[self.image].mean
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
                from jmvae.editing import predict_other

                probs = predict_other(self.model, x, self.attribute_names).probabilities.float().cpu()
                order = probs.argsort(descending=True).tolist()
                out["prediction"] = {"attributes": [{"name": self.attribute_names[i], "probability": round(float(probs[i]), 6)}
                                                    for i in order], "uses": caps["predict"]["uses"]}
            elif caps["predict"]["ok"]:
                probs = predict(self.model, {self.image: x}, self.label, (self.image,))[0].float().cpu()
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


# -- the web app ----------------------------------------------------------------------------
def create_app(run_dir: str | Path, device: str = "cpu", data_dir: str | Path | None = None, map_points: int = MAP_POINTS) -> Flask:
    """The Flask app of the explorer for one run folder (loads the model and test data now)."""
    explorer = Explorer(run_dir, device, data_dir, map_points)
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024  # the file plus its multipart envelope
    app.json.sort_keys = False  # keep the API's key order
    app.extensions["jmvae_explorer"] = explorer

    def error(message: str, status: int):
        response = jsonify(error=message)
        response.status_code = status
        return response

    @app.errorhandler(JMVAEError)
    def user_error(exc: JMVAEError):
        return error(" ".join(str(exc).split()), getattr(exc, "status", 400))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        return error(f"the upload is too large; the limit is {MAX_UPLOAD_BYTES // 2**20} MB", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return error(f"{exc.code} {exc.name}: {exc.description}", exc.code or 500)
        return exc

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        app.logger.exception("error in %s", request.path)
        return error(f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())})", 500)

    @app.after_request
    def no_cache(response):
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def json_body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if body is None and request.content_length:
            raise RequestError("the request body is not valid JSON")
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        return body

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/info")
    def info():
        return jsonify(explorer.info())

    @app.post("/api/sample")
    def sample():
        body = json_body()
        return jsonify(explorer.sample(body.get("label"), body.get("n", DEFAULT_SAMPLES), body.get("seed"), body.get("attributes")))

    @app.post("/api/analyze")
    def analyze():
        if request.mimetype == "multipart/form-data" or request.files:
            upload = request.files.get("image")
            if upload is None:
                raise UploadError("no file in the upload; send it as the form field 'image'")
            data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
            if explorer.colour:
                image, notes = explorer.prepare_face(data)
            else:
                image, notes = prepare_upload(data, explorer.image_shape, explorer.light_on_dark)
            return jsonify(explorer.analyze(image, None, f"upload {upload.filename or ''}".strip(), notes))
        body = json_body()
        if "test_index" not in body:
            raise RequestError("send an image (multipart field 'image') or JSON {\"test_index\": i}")
        image, label = explorer.test_image(body["test_index"])
        return jsonify(explorer.analyze(image, label, f"test image {body['test_index']}"))

    @app.get("/api/latent")
    def latent():
        return jsonify(explorer.latent_points())

    @app.get("/api/point/<int:k>")
    def point(k: int):
        return jsonify(explorer.point(k))

    @app.post("/api/decode")
    def decode():
        body = json_body()
        return jsonify(explorer.decode_position(body.get("x"), body.get("y")))

    return app


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    shown = "[::1]" if shown == "::" else (f"[{shown}]" if ":" in shown else shown)
    return f"http://{shown}:{port}/"


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu", data_dir: str | Path | None = None) -> None:
    """Serve the explorer of ``run_dir`` until Ctrl-C; prints the URL. Port 0 picks a free port."""
    from werkzeug.serving import make_server, select_address_family

    if not 0 <= port <= 65535:
        raise JMVAEError(f"--port {port}: a port is 0..65535 (0: any free port)")
    app = create_app(run_dir, device=device, data_dir=data_dir)
    # Bind here, not in werkzeug (which prints and exits on a busy port), to report one line.
    try:
        listener = socket.create_server((host, port), family=select_address_family(host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise JMVAEError(f"cannot listen on {host}:{port}: {reason}; pick another port with --port (0: any free port)") from None
    try:
        server = make_server(host, listener.getsockname()[1], app, threaded=True, fd=listener.fileno())
    finally:
        listener.close()  # the server holds its own duplicate of the socket
    explorer: Explorer = app.extensions["jmvae_explorer"]
    print(f"jmvae serve: exploring {explorer.config.display_name} on {explorer.data_name} at {_url(host, server.port)} (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"jmvae serve: listening on {host}: anyone who can reach this machine can use the page", file=sys.stderr, flush=True)
    # Ctrl-C and SIGTERM stop the loop through shutdown() (from a helper thread: it waits for the
    # loop), installed explicitly so that a SIGINT disposition inherited as "ignored" (as from
    # some launchers and test runners) cannot leave the server deaf to Ctrl-C.
    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
    print("jmvae serve: stopped", flush=True)


__all__ = ["Explorer", "MAX_SIDE", "MAX_UPLOAD_BYTES", "UploadError", "create_app", "prepare_upload", "serve"]
