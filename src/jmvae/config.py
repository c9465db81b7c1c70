"""Typed, frozen configuration: modalities, models, training and evaluation.

Configs are plain data. They round-trip through JSON (``to_dict`` / ``from_dict``) and are
saved beside the weights of every run; a model reads its config and never edits it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import Self

Likelihood = Literal["bernoulli", "categorical", "gaussian"]
ModelKind = Literal["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"]
Network = Literal["auto", "mlp", "conv"]
MeanActivation = Literal["linear", "tanh"]

LIKELIHOODS: tuple[str, ...] = ("bernoulli", "categorical", "gaussian")
MODEL_KINDS: tuple[str, ...] = ("vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl")
GAN_MODELS: dict[str, str] = {"vae-gan": "vae", "cvae-gan": "cvae", "cmma-gan": "cmma", "jmvae-gan": "jmvae-kl",
                               "jmvae-zero-gan": "jmvae-zero"}  # the GAN variants' names -> their base kinds
NETWORKS: tuple[str, ...] = ("auto", "mlp", "conv")
MEAN_ACTIVATIONS: tuple[str, ...] = ("linear", "tanh")
SubsetRule = Literal["product", "prior-product", "mixture"]
SUBSET_RULES: tuple[str, ...] = ("product", "prior-product", "mixture")  # jmvae.subsets
CONV_STRIDE = 16  # four stride-2 convolutions: image sides must be multiples of 16


def model_kind(name: str) -> tuple[str, bool]:
    """A model name of the command line -> (kind, adversarial): ``"cvae-gan"`` -> ("cvae", True)."""
    if name in GAN_MODELS:
        return GAN_MODELS[name], True
    if name in MODEL_KINDS:
        return name, False
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_KINDS + tuple(GAN_MODELS))}")


def conv_compatible(shape: tuple[int, ...]) -> bool:
    """Whether ``shape`` is an image (C, H, W) that the convolutional networks can read and
    write: 1 to 4 channels, sides that are positive multiples of 16 (four stride-2 layers)."""
    return (
        len(shape) == 3
        and 1 <= shape[0] <= 4
        and all(s >= CONV_STRIDE and s % CONV_STRIDE == 0 for s in shape[1:])
    )


@dataclass(frozen=True)
class Modality:
    """One named modality and the likelihood that models it.

    - ``bernoulli``: independent Bernoulli per element (binarized images, binary attributes);
      data are floats in {0, 1} (or [0, 1] intensities), shape ``shape``; log p(x | z) is
      sum_d x_d l_d - softplus(l_d) for logits l, the Bernoulli log-probability for binary data
      and the cross-entropy (not a normalised density over [0, 1]) for intensities.
    - ``categorical``: one class out of ``shape[0]``; data are int64 class indices, shape ().
    - ``gaussian``: independent Normal per element; ``scale`` is its fixed standard deviation,
      or ``None`` to let the decoder learn a per-element scale. ``mean_activation="tanh"`` squashes
      the decoder's mean into (-1, 1) (the paper's CelebA attributes: values -1/1, tanh mean,
      constant variance).

    ``network`` picks the encoder and decoder architecture (``jmvae.networks``): ``"mlp"``,
    ``"conv"`` (images (C, H, W), SETUP.md's CelebA convolutions) or ``"auto"``, resolved when
    the modality is made: ``"conv"`` for a shape that ``conv_compatible`` accepts and a
    non-categorical likelihood, else ``"mlp"``; the config stores the resolved choice, so a saved
    run rebuilds the same networks whatever later versions make of ``"auto"``.
    ``hidden_dim`` overrides the model's ``hidden_dim`` for this modality's own layers (its
    branch of the joint encoder, its unimodal encoder, its decoder); ``None``: the model's.
    ``branch_layers``: how many ReLU layers an MLP modality's branch of the joint encoder has
    (the MNIST architecture: 1; the paper's CelebA attributes: 2, "512 -> 512").
    """

    name: str
    shape: tuple[int, ...]
    likelihood: Likelihood
    scale: float | None = 1.0
    network: Network = "auto"
    mean_activation: MeanActivation = "linear"
    hidden_dim: int | None = None
    branch_layers: int = 1

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"modality name {self.name!r} must be a non-empty identifier")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if not self.shape or any(s <= 0 for s in self.shape):
            raise ValueError(f"modality {self.name!r}: shape {self.shape} must be non-empty and positive")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"modality {self.name!r}: likelihood {self.likelihood!r} is not one of {LIKELIHOODS}"
            )
        if self.likelihood == "categorical" and len(self.shape) != 1:
            raise ValueError(f"modality {self.name!r}: categorical shape must be (n_classes,), got {self.shape}")
        if self.likelihood == "gaussian" and self.scale is not None and not self.scale > 0:
            raise ValueError(f"modality {self.name!r}: gaussian scale must be > 0 or None (learned)")
        if self.mean_activation not in MEAN_ACTIVATIONS:
            raise ValueError(
                f"modality {self.name!r}: mean_activation {self.mean_activation!r} is not one of {MEAN_ACTIVATIONS}"
            )
        if self.mean_activation != "linear" and self.likelihood != "gaussian":
            raise ValueError(f"modality {self.name!r}: mean_activation applies to gaussian modalities only")
        if self.hidden_dim is not None and self.hidden_dim <= 0:
            raise ValueError(f"modality {self.name!r}: hidden_dim must be positive or None, got {self.hidden_dim}")
        if self.branch_layers < 1:
            raise ValueError(f"modality {self.name!r}: branch_layers must be >= 1, got {self.branch_layers}")
        if self.network not in NETWORKS:
            raise ValueError(f"modality {self.name!r}: network {self.network!r} is not one of {NETWORKS}")
        convolvable = conv_compatible(self.shape) and self.likelihood != "categorical"
        if self.network == "conv" and not convolvable:
            raise ValueError(
                f"modality {self.name!r}: a conv network needs an image shape (channels 1-4, height, width) "
                f"with sides that are multiples of {CONV_STRIDE} and a non-categorical likelihood, "
                f"got {self.shape} ({self.likelihood})"
            )
        if self.network == "auto":
            object.__setattr__(self, "network", "conv" if convolvable else "mlp")

    @property
    def features(self) -> int:
        """Width of the flat vector this modality becomes at an encoder's input."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class ModelConfig:
    """A model and its architecture.

    The first modality is ``x``, the one the baselines generate; for CVAE and CMMA the others are
    the condition ``w``. JMVAE models every modality jointly. Defaults are the paper's MNIST
    architecture (the authors' code): 64 latent dims, 512 hidden units, ReLU.

    ``subset_inference``: how JMVAE-kl infers z from a strict subset of two or more modalities
    (three or more modalities only) out of their unimodal encoders (``jmvae.subsets``):
    ``"prior-product"`` (the product divided by the prior |S|-1 times; the default for JMVAE-kl
    with three or more modalities, the best on the three-modality benchmark,
    docs/three-modalities.md), ``"product"`` (the plain product of experts: the only behaviour
    before the field existed, so a saved config without it reads as ``"product"``; the value of
    every other model and of two modalities, which have no such subset) or ``"mixture"`` (a
    uniform mixture of the experts). None: that default.
    """

    kind: ModelKind
    modalities: tuple[Modality, ...]
    latent_dim: int = 64
    hidden_dim: int = 512
    alpha: float = 0.0
    min_variance: float = 1e-6
    subset_inference: SubsetRule | None = None

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind {self.kind!r} is not one of {MODEL_KINDS}")
        mods = tuple(m if isinstance(m, Modality) else Modality(**m) for m in self.modalities)
        object.__setattr__(self, "modalities", mods)
        if self.subset_inference is None:
            default = "prior-product" if self.kind == "jmvae-kl" and len(mods) >= 3 else "product"
            object.__setattr__(self, "subset_inference", default)
        names = [m.name for m in mods]
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        needed = 1 if self.kind == "vae" else 2
        if len(mods) < needed:
            raise ValueError(f"model {self.kind!r} needs at least {needed} modalities, got {len(mods)}")
        if self.latent_dim <= 0 or self.hidden_dim <= 0:
            raise ValueError("latent_dim and hidden_dim must be positive")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.kind != "jmvae-kl" and self.alpha != 0:
            raise ValueError(f"alpha applies to jmvae-kl only, not {self.kind!r}")
        if self.subset_inference not in SUBSET_RULES:
            raise ValueError(f"subset_inference {self.subset_inference!r} is not one of {SUBSET_RULES}")
        if self.kind != "jmvae-kl" and self.subset_inference != "product":
            raise ValueError(f"subset_inference applies to jmvae-kl only, not {self.kind!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def modality(self, name: str) -> Modality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise ValueError(f"unknown modality {name!r}; this model has {self.names}")

    @property
    def display_name(self) -> str:
        """The row name used in tables, e.g. ``jmvae-kl(alpha=0.01)`` (a GAN variant's:
        ``AdversarialConfig.display_name``)."""
        return f"{self.kind}(alpha={self.alpha:g})" if self.kind == "jmvae-kl" else self.kind

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data["modalities"] = tuple(
            Modality(**{**m, "shape": tuple(m["shape"])}) for m in data["modalities"]
        )
        data.setdefault("subset_inference", "product")  # saved before the field existed: the plain product
        return cls(**data)


PRECISIONS = ("fp32", "bf16")


class PlainConfig:
    """A config whose fields are all JSON values: ``to_dict`` and ``from_dict`` round-trip it."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig(PlainConfig):
    """Optimisation settings. Defaults follow the authors' MNIST code (``jmvae.presets`` has each
    data set's recipe).

    ``warmup_epochs``: the KL weight rises linearly from 0 to 1 over this many epochs (0: off).
    ``warmup_all_kl``: False scales only KL(q || prior) (authors' code); True also scales the
    alpha-weighted unimodal KL terms (MultiVae).
    ``precision="bf16"``: bfloat16 autocast of the forward pass (matrix products with bfloat16
    inputs and float32 accumulation); weights, gradients, likelihoods, KL terms and Adam stay
    float32: faster where bfloat16 products are (CPUs with AMX or avx512_bf16, GPUs), with models
    of the same quality on MNIST (docs/benchmarks.md, "Does bf16 training give the same model?");
    the paper's table is trained in float32.
    ``compile``: the model's loss goes through ``torch.compile`` (inductor, its default mode:
    forward and backward each one fused graph; on a GPU no CUDA graphs). The first steps pay the
    compilation (tens of seconds on a CPU; cached for later runs); results equal eager's up to
    float rounding. What it buys on the CPUs measured is in docs/benchmarks.md.
    """

    epochs: int = 100
    max_steps: int | None = None
    batch_size: int = 100
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-4
    clip_grad_norm: float | None = 5.0
    warmup_epochs: float = 0.0
    warmup_all_kl: bool = False
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    precision: str = "fp32"
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a finite number > 0, got {self.lr}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warm-up must be >= 0 epochs, got {self.warmup_epochs}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError("clip_grad_norm must be > 0, or None to disable clipping")



@dataclass(frozen=True)
class AdversarialConfig(PlainConfig):
    """A GAN variant (VAE-GAN, CVAE-GAN, CMMA-GAN, JMVAE-GAN; ``jmvae.adversarial``): a
    discriminator on the model's first modality (an image), trained against its decoder.

    ``weight`` scales the decoder's generator loss (the paper: 1); ``real_label`` < 1 is one-sided
    label smoothing of the discriminator's targets on real images; ``betas`` are Adam's for both
    players (beta1 = 0.5: the paper's CelebA setting, as in DCGAN), whatever ``TrainConfig.betas``.
    """

    weight: float = 1.0
    real_label: float = 1.0
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.weight < 0:
            raise ValueError(f"the GAN weight must be >= 0, got {self.weight}")
        if not 0.5 < self.real_label <= 1:
            raise ValueError(f"the real label (one-sided label smoothing) must be in (0.5, 1], got {self.real_label}")

    def check(self, model: ModelConfig) -> None:
        """The discriminator reads the first modality, which must be an image."""
        first = model.modalities[0]
        if first.likelihood == "categorical":
            raise ValueError(f"the GAN variants put a discriminator on the first modality, which must be an image, "
                             f"not the categorical {first.name!r}")

    def display_name(self, model: ModelConfig) -> str:
        """``vae-gan``, ``cvae-gan``, ``cmma-gan``, ``jmvae-zero-gan``, ``jmvae-gan(alpha=0.1)``."""
        kind = ("jmvae" if model.kind == "jmvae-kl" else model.kind) + "-gan"
        return f"{kind}(alpha={model.alpha:g})" if model.kind == "jmvae-kl" else kind



@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (Appendix B): ``k`` importance samples per bound, ``n_prior`` prior
    samples for log p(w), ``limit`` test points (None: all), ``chunk`` samples per pass.

    ``n_prior_check``: a second, larger N_w. log p(w) = log (1/N) sum_i p(w | z_i) is a
    log-mean-exp of N prior draws, so it *underestimates* log p(w) by a bias that shrinks with N
    (Jensen), and log p(x | w) = L_k[log p(x, w)] - log p^(w) is inflated by that bias: with
    N_w = 10 (the paper's CelebA protocol) it is no longer a lower bound. With ``n_prior_check``
    the JMVAE's x|w cells are also reported with the larger N, beside the protocol's
    (``evaluate``'s ``n_prior_check`` entry), so a reader sees how much of a conditional figure
    is that bias. The protocol's numbers do not change: its draws come first.

    ``precision="bf16"`` runs the networks' matrix products in bfloat16 (autocast; likelihoods
    and weights stay float32): faster where bfloat16 products are, its estimates measured against
    float32's in docs/benchmarks.md. The paper's table is measured in float32.
    """

    k: int = 1000
    n_prior: int = 5000
    limit: int | None = None
    batch_size: int = 100
    chunk: int | None = None
    seed: int = 0
    precision: str = "fp32"
    n_prior_check: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if self.k < 1 or self.n_prior < 1:
            raise ValueError("k and n_prior must be >= 1")
        if self.n_prior_check is not None and self.n_prior_check < 1:
            raise ValueError(f"n_prior_check must be >= 1 or None, got {self.n_prior_check}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
