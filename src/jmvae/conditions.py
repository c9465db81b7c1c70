"""One grammar for the conditions a user writes: ``jmvae sample --given``, ``jmvae edit --set``,
the labels and attributes the explorer is sent, and the names ``jmvae predict`` prints.

A condition text is a comma-separated list of terms:

    label=3   label=Sneaker   3   Sneaker     a label: a class index, or a class name where the
                                              data set names its classes (Fashion-MNIST)
    Smiling=1,Male=0                          attributes by name (CelebA's), each 1 (on) or 0 (off)
    attributes=Male,Smiling   Male,Smiling    the attributes listed, on (the older form)

A term without ``NAME=`` belongs to the run's only condition (every modality but the first, the
image). A text means a partial assignment w_S of the condition w: a class index per label and
{attribute: 1 or 0} per attribute modality. ``sample`` draws z from the generation latent given
w, with the attributes not named off (w_j = 0, or -1 for tanh-Gaussian attributes); ``edit``
changes in the image's predicted w only what is named. One parser for all of them, so that what
works in one command works in the others and a mistake gets one message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from jmvae.config import ModelConfig
from jmvae.data import DataInfo
from jmvae.data.celeba import attribute_vector
from jmvae.errors import JMVAEError

Assignment = dict[str, int | dict[str, int]]
"""Modality -> its class index (a label) or {attribute name: 1 or 0} (attributes)."""


@dataclass(frozen=True)
class Vocabulary:
    """The names a run's conditions are written in: its modalities, its label's classes
    (``classes``: names by index, where the data set has them) and its attribute names
    (``features``: attribute modality -> names, the run's ``feature_names``)."""

    config: ModelConfig
    classes: tuple[str, ...] | None = None
    features: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of_run(cls, config: ModelConfig, run_data: DataInfo, classes: Sequence[str] | None = None) -> Vocabulary:
        return cls(config, tuple(classes) if classes else None, dict(run_data.feature_names))

    # -- names --------------------------------------------------------------------------------
    def names(self, modality: str) -> tuple[str, ...]:
        """The names of ``modality``'s elements: its attribute names, its class names or indices."""
        if self.features.get(modality):
            return self.features[modality]
        return self.classes or tuple(str(i) for i in range(self.config.modality(modality).shape[0]))

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The classes' names when they say more than their indices (else None: indices only)."""
        if self.classes is None or self.classes == tuple(str(i) for i in range(len(self.classes))):
            return None
        return self.classes

    def class_index(self, value: str | int, modality: str, what: str) -> int:
        """A class given by index (``3``, ``"3"``) or name (``"Sneaker"``) -> its index; ``what``
        starts the message of a bad one (``--given label``, ``label``)."""
        text = str(value).strip()
        n_classes = self.config.modality(modality).shape[0]
        names = self.class_names
        if names and text in names:
            return names.index(text)
        try:
            index = int(text)
        except ValueError:
            index = -1
        if not 0 <= index < n_classes:
            listed = f" or a class name ({', '.join(names)})" if names else ""
            raise JMVAEError(f"{what} {value!r}: {text!r} is not a class; give an index 0..{n_classes - 1}{listed}")
        return index

    def attribute_modality(self, attribute: str) -> str | None:
        """The attribute modality that has an attribute of this name, if any."""
        return next((m for m, names in self.features.items() if attribute in names), None)

    def check_attributes(self, names: Iterable[str], modality: str, what: str) -> None:
        """An error naming the first of ``names`` that is not one of ``modality``'s attributes."""
        unknown = [n for n in names if n not in self.features[modality]]
        if unknown:
            raise unknown_attribute(unknown[0], self.features[modality], what)

    # -- parsing ------------------------------------------------------------------------------
    def parse(self, text: str, flag: str, into: Assignment | None = None) -> Assignment:
        """A condition text (module docstring) -> its assignment, added to ``into`` (each label
        and each attribute once); ``flag`` (``--given``, ``--set``) names it in messages."""
        out: Assignment = {} if into is None else into
        listing: str | None = None  # the attribute modality whose list the bare terms continue
        terms = [term.strip() for term in text.split(",")]
        if not any(terms):
            raise JMVAEError(f"{flag} is empty; give e.g. {flag} {self.example()}")
        for term in filter(None, terms):
            key, sep, value = (part.strip() for part in term.partition("="))
            if not sep and listing is not None:
                key, value = listing, term
            elif not sep:
                key, value = self.bare(term, flag), term
                listing = key if key in self.features else None
            elif key in self.features:
                out.setdefault(key, {})
                listing = key
                if not value:
                    continue
            else:
                listing = None
            self.assign(out, key, value, term, flag)
        return out

    def parse_all(self, texts: Iterable[str], flag: str) -> Assignment:
        """Several condition texts (repeated ``--given``) -> one assignment."""
        out: Assignment = {}
        for text in texts:
            if not isinstance(text, str):  # argparse turns "--given=--" into an empty list
                text = "".join(map(str, text))
            self.parse(text, flag, out)
        return out

    def bare(self, term: str, flag: str) -> str:
        """The modality a term without ``NAME=`` belongs to: the run's only condition."""
        conditions = self.config.names[1:]
        if term in self.config.names:
            raise JMVAEError(f"{flag} {term!r}: give it a value, e.g. {'Smiling=1' if term in self.features else term + '=3'}")
        if len(conditions) != 1:
            raise JMVAEError(f"{flag} {term!r}: expected NAME=VALUE, e.g. {conditions[0] if conditions else 'label'}=3")
        return conditions[0]

    def assign(self, out: Assignment, key: str, value: str, term: str, flag: str) -> None:
        """Set ``key`` (a modality or an attribute) to ``value`` in ``out``, refusing a repeat."""
        if key in self.features:  # an attribute listed on: attributes=Male,Smiling
            self.check_attributes([value], key, f"{flag} {term!r}")
            key, value, modality = value, "1", key
        elif key in self.config.names:
            if self.config.modality(key).likelihood != "categorical":
                raise JMVAEError(f"{flag} {key}: only a label or attributes can be given on the command line")
            if key in out:
                raise JMVAEError(f"{flag} {key} appears twice; give each condition once")
            out[key] = self.class_index(value, key, f"{flag} {key}")
            return
        else:
            modality = self.attribute_modality(key)
            if modality is None:
                raise self.unknown(key, term, flag)
            if value not in ("0", "1"):
                raise JMVAEError(f"{flag} {term!r}: expected ATTRIBUTE=1 or ATTRIBUTE=0, e.g. Smiling=1")
        values = out.setdefault(modality, {})
        if key in values:
            raise JMVAEError(f"{flag} {key} appears twice; give each attribute once")
        values[key] = int(value)

    def unknown(self, key: str, term: str, flag: str) -> JMVAEError:
        """The error for a name that is neither a modality nor an attribute: what to write instead."""
        if self.features:
            return unknown_attribute(key, next(iter(self.features.values())), f"{flag} {term!r}")
        labels = [m.name for m in self.config.modalities[1:] if m.likelihood == "categorical"]
        if len(labels) == 1:
            label = labels[0]
            return JMVAEError(f"{flag} {term!r}: unknown modality {key!r}; this run's label is {label!r}, e.g. {flag} {label}=3")
        return JMVAEError(f"{flag} {term!r}: unknown modality {key!r}; this model has {', '.join(self.config.names)}")

    def example(self) -> str:
        """A condition this run takes, for messages."""
        if self.features:
            return "Smiling=1,Male=0"
        conditions = self.config.names[1:]
        return f"{conditions[0] if conditions else 'label'}=3"

    # -- values the model reads ---------------------------------------------------------------
    def tensors(self, assignment: Assignment) -> dict[str, Tensor]:
        """A batch of one per modality of ``assignment``: the class index, or the attribute
        vector with the attributes set to 1 on and the others off (what ``generate`` reads)."""
        out = {}
        for name, value in assignment.items():
            if isinstance(value, dict):
                on = [attribute for attribute, v in value.items() if v]
                out[name] = attribute_vector(self.features[name], on, self.config.modality(name))
            else:
                out[name] = torch.tensor([value])
        return out


def unknown_attribute(name: str, attributes: Sequence[str], what: str) -> JMVAEError:
    """The error for an attribute name a run does not have, with the names it has."""
    return JMVAEError(f"{what}: unknown attribute {name!r}; the run's attributes are {', '.join(attributes)}")
