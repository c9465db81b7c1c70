"""The paper's recipe per data set: architecture, optimisation and evaluation protocol.

One place for them, so that ``jmvae train`` and the Python API give the same run:

    model, game = presets.model_config("mnist", "jmvae-kl", data.modalities)
    train(model, presets.train_config("mnist"), data, "runs/x", adversarial=game)

is what ``jmvae train --data mnist --out runs/x`` trains. MNIST (Table 1, the authors' code):
z 64, 512 hidden units, Adam 1e-3, 100 epochs, no warm-up, k = 1000 and N_w = 5000. CelebA
(Table 2): the convolutional model of ``paper_model_config``, Adam 1e-4 with beta1 0.5, 20
epochs of KL warm-up, k = 10 and N_w = 10 (with the x|w cells also at N_w = 1000). A user's data
folder (``jmvae.data.folder``) takes ``FOLDER``'s generic recipe whatever its name
(``recipe_name``): MNIST's MLP sizes and optimisation, the model's modalities from its spec; so
does any other data set without a recipe of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jmvae.config import AdversarialConfig, EvalConfig, Modality, ModelConfig, TrainConfig, model_kind
from jmvae.data.paired import DataInfo


@dataclass(frozen=True)
class Recipe:
    """A data set's defaults: what ``train`` and ``evaluate`` use where a setting is not given."""

    # optimisation
    epochs: int = 100
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = 0.0
    # architecture
    latent_dim: int = 64
    hidden_dim: int = 512
    convolutional: bool = False  # the paper's CelebA architecture (paper_model_config)
    # evaluation protocol
    k: int = 1000
    n_prior: int = 5000
    n_prior_check: int | None = None


RECIPES: dict[str, Recipe] = {
    "digits": Recipe(epochs=50),
    "mnist": Recipe(),
    "fashion-mnist": Recipe(),
    "mnist-fashion": Recipe(),  # MNIST's architecture per image, a three-branch joint encoder
    "celeba": Recipe(lr=1e-4, betas=(0.5, 0.999), warmup_epochs=20.0, latent_dim=128, hidden_dim=1024,
                     k=10, n_prior=10, n_prior_check=1000, convolutional=True),
}

FOLDER = "folder"
"""The recipe of a user's data folder: the generic one (MNIST's settings; the spec's modalities)."""
RECIPES[FOLDER] = Recipe()


def recipe(dataset: str) -> Recipe:
    """The recipe of ``dataset`` (MNIST's for a data set without one)."""
    return RECIPES.get(dataset, RECIPES["mnist"])


def recipe_name(data: DataInfo) -> str:
    """The recipe that data (a ``DataInfo``) is trained and evaluated with: ``FOLDER`` for a data
    folder (its spec may call it anything, "celeba" included), else the data set's name."""
    return FOLDER if data.folder is not None else data.name


def model_config(dataset: str, model: str, modalities: Sequence[Modality], alpha: float | None = None,
                 latent_dim: int | None = None, hidden_dim: int | None = None,
                 gan_weight: float = 1.0, gan_real_label: float = 1.0) -> tuple[ModelConfig, AdversarialConfig | None]:
    """The model named ``model`` (``jmvae-kl``, ``cvae``, ``jmvae-gan``, ...) in the data set's
    architecture, with its GAN game for the ``*-gan`` names. ``alpha``: JMVAE-kl's weight
    (default 0.1); sizes default to the recipe's."""
    kind, adversarial = model_kind(model)
    if kind != "jmvae-kl" and alpha:
        raise ValueError(f"alpha applies to jmvae-kl and jmvae-gan only, not {model}")
    alpha = (0.1 if alpha is None else alpha) if kind == "jmvae-kl" else 0.0
    chosen = recipe(dataset)
    if chosen.convolutional:
        config = paper_model_config(kind, modalities, alpha)
        sizes = {k: v for k, v in (("latent_dim", latent_dim), ("hidden_dim", hidden_dim)) if v is not None}
        config = dataclasses.replace(config, **sizes)
    else:
        config = ModelConfig(kind, tuple(modalities), latent_dim or chosen.latent_dim, hidden_dim or chosen.hidden_dim,
                             alpha=alpha)
    game = AdversarialConfig(gan_weight, gan_real_label) if adversarial else None
    if game is not None:
        game.check(config)
    return config, game


def train_config(dataset: str, **overrides: Any) -> TrainConfig:
    """The data set's optimisation with ``overrides`` (TrainConfig fields); an override of a
    recipe field (epochs, lr, betas, warmup_epochs) that is None keeps the recipe's."""
    chosen = recipe(dataset)
    settings: dict[str, Any] = {"epochs": chosen.epochs, "lr": chosen.lr, "betas": chosen.betas,
                                "warmup_epochs": chosen.warmup_epochs}
    settings.update({k: v for k, v in overrides.items() if v is not None or k not in settings})
    return TrainConfig(**settings)


def eval_config(dataset: str, **overrides: Any) -> EvalConfig:
    """The data set's evaluation protocol (Table 1's or Table 2's); None overrides keep it."""
    chosen = recipe(dataset)
    settings: dict[str, Any] = {"k": chosen.k, "n_prior": chosen.n_prior, "n_prior_check": chosen.n_prior_check}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return EvalConfig(**settings)


def paper_model_config(kind: str, modalities: Sequence[Modality], alpha: float = 0.1) -> ModelConfig:
    """The paper's CelebA architecture (the authors' code): z 128; image: convolutions
    64-128-256-256, 1024 dense units after them in q(z|x), mirrored transposed convolutions;
    attributes: 512 -> 512 branch in the joint encoder, 512-unit MLPs elsewhere; joint layer 1024."""
    mods = tuple(m if m.network == "conv" else dataclasses.replace(m, hidden_dim=512, branch_layers=2) for m in modalities)
    return ModelConfig(kind, mods, latent_dim=128, hidden_dim=1024, alpha=alpha if kind == "jmvae-kl" else 0.0)


def paper_train_config(**overrides: Any) -> TrainConfig:
    """The paper's CelebA optimisation: Adam lr 1e-4, beta1 0.5, 100 epochs, 20 epochs of KL warm-up."""
    return train_config("celeba", **overrides)
