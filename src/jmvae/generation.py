"""Generating modalities from others, and predicting a label from an image.

``generate(model, given, n)`` draws z from the model's generation latent given the modalities
in ``given`` (JMVAE: q(z | given); CVAE and CMMA: their prior given w; nothing given: p(z))
and returns the decoders' distributions. ``predict`` gives p(w | z) at the mean of q(z | x).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from jmvae.config import ModelConfig
from jmvae.errors import JMVAEError
from jmvae.models import MultimodalModel


def class_index(text: str, n_classes: int, classes: Sequence[str] | None, flag: str) -> int:
    """A class given by index (``"3"``) or name (``"Sneaker"``) -> its index. ``sample --given``
    and ``edit --set`` both read labels through this, so a bad one gets the same message."""
    value = text.strip()
    if classes and value in classes:
        return list(classes).index(value)
    try:
        index = int(value)
    except ValueError:
        index = -1
    if not 0 <= index < n_classes:
        names = f" or a class name ({', '.join(classes)})" if classes else ""
        raise JMVAEError(f"{flag} {text!r}: {value!r} is not a class; give an index 0..{n_classes - 1}{names}")
    return index


def split_condition(config: ModelConfig, item: str) -> tuple[str, str]:
    """``"label=3"`` -> ("label", "3"); a bare value (``"3"``) belongs to the model's only
    condition (every modality but the first, the image), as ``edit --set 7`` does."""
    name, sep, value = item.partition("=")
    name = name.strip()
    if sep:
        if name not in config.names:
            raise JMVAEError(f"--given {item!r}: unknown modality {name!r}; this model has {', '.join(config.names)}")
        return name, value
    conditions = config.names[1:]
    if item.strip() in config.names:
        raise JMVAEError(f"--given {item!r}: give it a value, e.g. {item.strip()}=3")
    if len(conditions) != 1:
        raise JMVAEError(f"--given {item!r}: expected NAME=VALUE, e.g. {conditions[0] if conditions else 'label'}=3")
    return conditions[0], item


def parse_given(config: ModelConfig, items: list[str], classes: tuple[str, ...] | None = None,
                feature_names: Mapping[str, Sequence[str]] | None = None) -> dict[str, Tensor]:
    """``["label=3"]`` (or ``["3"]``) -> {"label": tensor([3])}; a categorical value may be a
    class index or name (``class_index``). Each modality may be given once: a second value for it
    is an error, never silently the one that wins.

    A modality with ``feature_names`` (CelebA's attributes) takes the names of the features that
    are on, comma-separated: ``attributes=Male,Smiling`` (the others off; ``attributes=`` all off)."""
    given: dict[str, Tensor] = {}
    for item in items:
        if not isinstance(item, str):  # argparse turns "--given=--" into an empty list
            item = "".join(map(str, item))
        name, value = split_condition(config, item)
        if name in given:
            raise JMVAEError(f"--given {name} appears twice; give each condition once"
                             + (" (attributes: one comma-separated list)" if (feature_names or {}).get(name) else ""))
        modality = config.modality(name)
        names = (feature_names or {}).get(modality.name)
        if names:
            from jmvae.data.celeba import attribute_vector

            on = [v.strip() for v in value.split(",") if v.strip()]
            given[modality.name] = attribute_vector(tuple(names), on, modality)
        elif modality.likelihood == "categorical":
            given[modality.name] = torch.tensor([class_index(value, modality.shape[0], classes, f"--given {name}")])
        else:
            raise JMVAEError(f"--given {name}: only categorical modalities can be given on the command line")
    return given


@torch.inference_mode()
def generate(model: MultimodalModel, given: Mapping[str, Tensor], n: int, generator: torch.Generator | None = None) -> dict[str, Distribution]:
    """p(x_m | z) for n draws of z given ``given`` (each given value is a batch of one)."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in given.items()}
    latent = model.generation_latent(batch, tuple(batch))  # nothing given: the prior p(z)
    latent_dim = model.config.latent_dim
    loc = latent.base_dist.loc.reshape(-1, latent_dim).expand(n, -1)  # (n, L)
    scale = latent.base_dist.scale.reshape(-1, latent_dim).expand(n, -1)
    z = loc + scale * torch.randn(loc.shape, generator=generator, device=device, dtype=loc.dtype)
    decode_batch = {k: v.expand(n, *v.shape[1:]) for k, v in batch.items()}
    return model.decode(z, decode_batch)


@torch.inference_mode()
def predict(model: MultimodalModel, batch: Mapping[str, Tensor], target: str, given: tuple[str, ...]) -> Tensor:
    """Class probabilities of ``target`` from the modalities ``given``: p(w | z = mean of q(z | given))."""
    if target not in model.generated:
        raise JMVAEError(f"{model.config.display_name} cannot predict {target!r}; it generates {model.generated}")
    z = model.posterior(batch, given).mean
    return model.decode(z, batch)[target].probs
