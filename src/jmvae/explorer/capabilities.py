"""What each panel of the explorer can do with a run's kind of model, and which distributions it
uses: found by trying each computation once on zeros (a model that cannot do it raises), so the
page states what it shows (e.g. "z ~ q(z|w); images: the mean of p(x|z)") or why a panel is off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from jmvae.generation import generate
from jmvae.models import MultimodalModel


def symbols(names: tuple[str, ...], image: str, label: str | None) -> str:
    """Modality names as the page writes them: the image x, the label w (``x,w``)."""
    short = {image: "x", **({label: "w"} if label else {})}
    return ",".join(short.get(n, n) for n in names)


def works(fn: Callable[[], object]) -> str | None:
    """None when ``fn()`` runs on this model, else the error's message."""
    try:
        with torch.inference_mode():
            fn()
    except (ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def probe(model: MultimodalModel, image: str, label: str | None, attributes: str | None,
          attributes_off: Tensor | None, data_note: str) -> dict[str, dict[str, Any]]:
    """What each panel can do with this kind of model, which distributions it uses, or why not.

    ``image``, ``label``, ``attributes``: the modalities the page shows and reads (None: none);
    ``attributes_off``: an attribute batch of one with every attribute off; ``data_note``: why
    the test data are missing ("" when they are there)."""
    kind = model.config.kind
    image_shape = model.config.modality(image).shape
    device = next(model.parameters()).device
    name = "The " + {"vae": "VAE", "cvae": "CVAE", "cmma": "CMMA"}.get(kind, model.config.display_name)
    x = torch.zeros(1, *image_shape, device=device)
    w = torch.zeros(1, dtype=torch.long, device=device)
    z = torch.zeros(1, model.config.latent_dim, device=device)
    joint = symbols(tuple(model.inputs), image, label)
    decoder = "p(x|z,w)" if label in model.conditions and kind == "cvae" else "p(x|z)"
    caps: dict[str, dict[str, Any]] = {}

    # Samples given a label.
    if label is None and attributes:
        caps["sample_label"] = {"ok": False, "why": "this run has attributes, not a label: tick attributes to sample from"}
    elif label is None:
        caps["sample_label"] = {"ok": False, "why": f"{name} models the image alone; it has no label to generate from (use the p(z) samples)"}
    else:
        err = works(lambda: generate(model, {label: w[:1]}, 1))
        latent = {
            "jmvae-kl": "z ~ q(z|w), the label's encoder",
            "jmvae-zero": "z ~ q(z|w), the joint encoder with the image zero-filled",
            "cvae": "z ~ p(z) = N(0, I); the decoder also reads w",
            "cmma": "z ~ p(z|w), the label-conditioned prior",
        }.get(kind, "z ~ the model's generation latent given w")
        caps["sample_label"] = {"ok": err is None, "why": err, "uses": f"{latent}; images: the mean of {decoder}"}
    # Samples given attributes (face runs only).
    if attributes is not None:
        given = {attributes: attributes_off}
        err = works(lambda: generate(model, given, 1))
        latent = {"jmvae-kl": "z ~ q(z|w), the attributes' encoder",
                  "jmvae-zero": "z ~ q(z|w), the joint encoder with the image zero-filled",
                  "cvae": "z ~ p(z) = N(0, I); the decoder also reads w",
                  "cmma": "z ~ p(z|w), the attribute-conditioned prior"}.get(kind, "z ~ the model's generation latent given w")
        caps["sample_attributes"] = {"ok": err is None, "why": err,
                                     "uses": f"{latent} (w: the ticked attributes on, the others off); images: the mean of {decoder}"}
    # Samples from the prior.
    err = works(lambda: model.decode(model.prior({}).sample((1,)), {}))
    if err and kind in ("cvae", "cmma"):
        err = f"{name}'s " + ("decoder needs a label" if kind == "cvae" else "prior p(z|w) needs a label") + "; pick one above"
    caps["sample_prior"] = {"ok": err is None, "why": err, "uses": "z ~ p(z) = N(0, I); images: the mean of p(x|z)"}
    # From an image alone: predicting the label and reconstructing.
    image_alone = works(lambda: model.posterior({image: x}, (image,)))
    if image_alone and kind in ("cvae", "cmma"):
        image_alone = f"{name} has no encoder for the image alone: its q(z|x,w) needs the label too"
    q_x = "q(z|x), the image's encoder" if kind != "jmvae-zero" else "q(z|x), the joint encoder with the label zero-filled"
    target = label or attributes
    if target is None:
        caps["predict"] = {"ok": False, "why": f"{name} models the image alone; it has no label to predict"}
    elif target not in model.generated:
        caps["predict"] = {"ok": False, "why": f"{name} generates the image given the label, not the label: it has no p(w|z)"
                           + (", and its encoder q(z|x,w) needs the label too" if image_alone else "")}
    else:
        what = "p(w_j = 1|z) for each attribute" if attributes and not label else "p(w|z)"
        caps["predict"] = {"ok": image_alone is None, "why": image_alone, "uses": f"{what} at z = the mean of {q_x}"}
    recon_joint = None if image_alone is None else f"test images only: the mean of {decoder} at z = the mean of q(z|{joint}) (their true label given)"
    caps["reconstruct"] = {
        "ok": image_alone is None,
        "why": None if image_alone is None else image_alone + "; uploads cannot be reconstructed",
        "uses": f"the mean of {decoder} at z = the mean of {q_x}" if image_alone is None else recon_joint,
    }
    # The latent map and decoding.
    if data_note:
        caps["latent_map"] = {"ok": False, "why": data_note}
    else:
        caps["latent_map"] = {
            "ok": True,
            "why": None,
            "posterior": f"q(z|{joint})",
            "uses": f"2-D PCA of the means of q(z|{joint}) of test points; decoded: the mean of {decoder} at a latent mean",
        }
    err = works(lambda: model.decode(z, {}))
    if err and kind == "cvae":
        err = f"{name}'s decoder p(x|z,w) also needs a label, so a bare map position cannot be decoded"
    caps["decode_position"] = {"ok": err is None and not data_note, "why": err or (None if not data_note else data_note)}
    return caps
