r"""Linear-Gaussian JMVAE, CVAE and CMMA built from the library's own layers, with closed forms.

Every network of ``jmvae.networks`` is Linear/ReLU layers; a ReLU layer passes a value through
unchanged when its input is shifted into the positive half-line, so a network whose first layer
adds an OFFSET to its inputs, whose middle layers copy them and whose last layer subtracts the
offset again computes an exact affine map (for inputs above -OFFSET, which every datum and latent
sample here is by a wide margin). With x and w Gaussian modalities of fixed scales s_x, s_w:

    p(z) = N(0, I),   p(x | z) = N(W_x z + b_x, s_x^2 I),   p(w | z) = N(W_w z + b_w, s_w^2 I),

so p(x) = N(b_x, W_x W_x^T + s_x^2 I), p(w) likewise, p(x, w) is the Gaussian of the stacked
maps, and the posteriors are Gaussian: for a set S of observed modalities,

    p(z | x_S) = N(Lambda^{-1} sum_{m in S} W_m^T (x_m - b_m) / s_m^2, Lambda^{-1}),
    Lambda = I + sum_{m in S} W_m^T W_m / s_m^2.

The columns of each W_m are orthogonal, so every Lambda is diagonal and the encoders' diagonal
Gaussians can be the exact posteriors. The CVAE's decoder reads [z, w]: p(x | z, w) =
N(W_x z + V w + b_x, s_x^2 I); the CMMA's prior network is p(z | w) = N(A w + a, diag(P)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal

from jmvae import ModelConfig, build_model
from jmvae.config import Modality
from jmvae.models import MultimodalModel

OFFSET = 20.0  # added before every ReLU; inputs and latent samples stay far above -OFFSET
DX, DW, L, H = 4, 3, 3, 12  # image-like x, condition-like w, latent, hidden units (H >= DX + DW + L)
SX, SW = 0.6, 0.8  # the likelihoods' fixed standard deviations


def modalities() -> tuple[Modality, Modality]:
    return (Modality("x", (DX,), "gaussian", scale=SX, network="mlp"),
            Modality("w", (DW,), "gaussian", scale=SW, network="mlp"))


def orthogonal_columns(rows: int, gains: list[float], generator: torch.Generator) -> Tensor:
    """A (rows, len(gains)) matrix Q diag(gains) with orthonormal Q: W^T W = diag(gains^2)."""
    q, _ = torch.linalg.qr(torch.randn(rows, len(gains), generator=generator, dtype=torch.float64))
    return q * torch.tensor(gains, dtype=torch.float64)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [layer for layer in module.modules() if isinstance(layer, nn.Linear)]


def set_layer(layer: nn.Linear, weight: Tensor, bias: Tensor) -> None:
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[: weight.shape[0], : weight.shape[1]] = weight.to(layer.weight.dtype)
        layer.bias.zero_()
        layer.bias[: bias.shape[0]] = bias.to(layer.bias.dtype)


def pass_through(layers: list[nn.Linear], width: int) -> None:
    """The first ``width`` inputs leave these ReLU layers as input + OFFSET (the first adds it)."""
    eye = torch.eye(width, dtype=torch.float64)
    set_layer(layers[0], eye, torch.full((width,), OFFSET, dtype=torch.float64))
    for layer in layers[1:]:
        set_layer(layer, eye, torch.zeros(width, dtype=torch.float64))


def set_affine_output(layer: nn.Linear, matrix: Tensor, shift: Tensor) -> None:
    """A last layer computing matrix @ u + shift of inputs that arrive as u + OFFSET."""
    set_layer(layer, matrix, shift - matrix @ torch.full((matrix.shape[1],), OFFSET, dtype=torch.float64))


def inverse_softplus(y: Tensor) -> Tensor:
    return y + torch.log(-torch.expm1(-y))


def set_gaussian_head(head: nn.Module, matrix: Tensor, shift: Tensor, variance: Tensor) -> None:
    """``GaussianHead``: mean = matrix @ u + shift, variance constant (u arrives shifted by OFFSET)."""
    latent = matrix.shape[0]
    weight = torch.zeros(2 * latent, matrix.shape[1], dtype=torch.float64)
    weight[:latent] = matrix
    pre_variance = inverse_softplus(variance - head.min_variance)
    bias = torch.cat([shift, pre_variance]) - weight @ torch.full((matrix.shape[1],), OFFSET, dtype=torch.float64)
    set_layer(head.linear, weight, bias)


def set_encoder(encoder: nn.Module, matrix: Tensor, shift: Tensor, variance: Tensor) -> None:
    """A ``GaussianEncoder`` q(z | u) = N(matrix @ u + shift, diag(variance))."""
    pass_through(linears(encoder.body), matrix.shape[1])
    set_gaussian_head(encoder.head, matrix, shift, variance)


def set_joint_encoder(encoder: nn.Module, mx: Tensor, mw: Tensor, shift: Tensor, variance: Tensor) -> None:
    """A ``JointEncoder`` q(z | x, w) = N(mx @ x + mw @ w + shift, diag(variance))."""
    pass_through(linears(encoder.branches["x"]), DX)
    pass_through(linears(encoder.branches["w"]), DW)
    select = torch.zeros(DX + DW, 2 * H, dtype=torch.float64)  # trunk: x's units, then w's (offset kept)
    select[:DX, :DX] = torch.eye(DX, dtype=torch.float64)
    select[DX:, H : H + DW] = torch.eye(DW, dtype=torch.float64)
    set_layer(linears(encoder.trunk)[0], select, torch.zeros(DX + DW, dtype=torch.float64))
    set_gaussian_head(encoder.head, torch.cat([mx, mw], dim=1), shift, variance)


def set_decoder(decoder: nn.Module, matrix: Tensor, shift: Tensor) -> None:
    """A decoder ``mlp([in, H, H, D])`` computing matrix @ input + shift."""
    layers = linears(decoder)
    pass_through(layers[:-1], matrix.shape[1])
    set_affine_output(layers[-1], matrix, shift)


def gaussian(mean: Tensor, cov: Tensor) -> MultivariateNormal:
    return MultivariateNormal(mean, cov)


@dataclass
class LinearJMVAE:
    """A JMVAE (zero or kl) whose networks compute the linear-Gaussian model of the module docstring."""

    model: MultimodalModel
    wx: Tensor
    bx: Tensor
    ww: Tensor
    bw: Tensor

    @classmethod
    def build(cls, kind: str = "jmvae-kl", x_gains=(1.5, 1.0, 0.7), w_gains=(0.6, 0.4, 0.3), seed: int = 0) -> LinearJMVAE:
        g = torch.Generator().manual_seed(seed)
        config = ModelConfig(kind, modalities(), latent_dim=L, hidden_dim=H, alpha=0.1 if kind == "jmvae-kl" else 0.0)
        lg = cls(build_model(config), orthogonal_columns(DX, list(x_gains), g), torch.randn(DX, generator=g, dtype=torch.float64),
                 orthogonal_columns(DW, list(w_gains), g), torch.randn(DW, generator=g, dtype=torch.float64))
        set_decoder(lg.model.decoders["x"], lg.wx, lg.bx)
        set_decoder(lg.model.decoders["w"], lg.ww, lg.bw)
        lg.set_posteriors()
        return lg

    def posterior(self, observed: tuple[str, ...]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """p(z | x_S) = N(mx @ x + mw @ w + shift, diag(variance)): (mx, mw, shift, variance)."""
        maps = {"x": (self.wx, self.bx, SX), "w": (self.ww, self.bw, SW)}
        precision = torch.ones(L, dtype=torch.float64)
        for name in observed:
            w, _, s = maps[name]
            precision = precision + (w * w).sum(0) / s**2  # W^T W is diagonal
        variance = 1 / precision
        gain = {name: (variance[:, None] * maps[name][0].T / maps[name][2] ** 2 if name in observed
                       else torch.zeros(L, maps[name][0].shape[0], dtype=torch.float64)) for name in ("x", "w")}
        shift = -sum(gain[name] @ maps[name][1] for name in observed)
        return gain["x"], gain["w"], shift, variance

    def set_posteriors(self, mean_shift: float = 0.0, variance_factor: float = 1.0) -> None:
        """Every encoder the exact posterior of its inputs, or (with a shift/factor) a poorer proposal."""
        mx, mw, shift, variance = self.posterior(("x", "w"))
        set_joint_encoder(self.model.joint_encoder, mx, mw, shift + mean_shift, variance * variance_factor)
        for name, encoder in self.model.unimodal_encoders.items():
            mx, mw, shift, variance = self.posterior((name,))
            set_encoder(encoder, mx if name == "x" else mw, shift + mean_shift, variance * variance_factor)

    def marginal(self, names: tuple[str, ...]) -> MultivariateNormal:
        maps = {"x": (self.wx, self.bx, SX), "w": (self.ww, self.bw, SW)}
        w = torch.cat([maps[n][0] for n in names])
        noise = torch.cat([torch.full((maps[n][0].shape[0],), maps[n][2] ** 2, dtype=torch.float64) for n in names])
        return gaussian(torch.cat([maps[n][1] for n in names]), w @ w.T + torch.diag(noise))

    def data(self, n: int, seed: int = 1) -> dict[str, Tensor]:
        """n draws of (x, w) from the model: z ~ p(z), then x and w given z."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, L, generator=g, dtype=torch.float64)
        x = z @ self.wx.T + self.bx + SX * torch.randn(n, DX, generator=g, dtype=torch.float64)
        w = z @ self.ww.T + self.bw + SW * torch.randn(n, DW, generator=g, dtype=torch.float64)
        return {"x": x.float(), "w": w.float()}

    def truth(self, data: dict[str, Tensor]) -> dict[str, float]:
        """Closed-form means over the data: log p(x), log p(x, w), log p(x | w)."""
        x, w = data["x"].double(), data["w"].double()
        log_px = self.marginal(("x",)).log_prob(x)
        log_pxw = self.marginal(("x", "w")).log_prob(torch.cat([x, w], 1))
        log_pw = self.marginal(("w",)).log_prob(w)
        return {"x": float(log_px.mean()), "joint": float(log_pxw.mean()), "x|w": float((log_pxw - log_pw).mean()),
                "w": float(log_pw.mean())}


@dataclass
class LinearConditional:
    """A CVAE or CMMA whose networks compute a linear-Gaussian p(x | w) (module docstring)."""

    model: MultimodalModel
    wx: Tensor
    bx: Tensor
    v: Tensor  # CVAE: p(x | z, w) adds V w; CMMA: the prior's mean is A w + a (stored as v, a)
    a: Tensor
    prior_variance: Tensor

    @classmethod
    def build(cls, kind: str, seed: int = 0) -> LinearConditional:
        g = torch.Generator().manual_seed(seed)
        config = ModelConfig(kind, modalities(), latent_dim=L, hidden_dim=H)
        wx = orthogonal_columns(DX, [1.5, 1.0, 0.7], g)
        bx = torch.randn(DX, generator=g, dtype=torch.float64)
        if kind == "cvae":
            v, a = 0.5 * torch.randn(DX, DW, generator=g, dtype=torch.float64), torch.zeros(L, dtype=torch.float64)
            prior_variance = torch.ones(L, dtype=torch.float64)
        else:
            v, a = 0.7 * torch.randn(L, DW, generator=g, dtype=torch.float64), 0.3 * torch.randn(L, generator=g, dtype=torch.float64)
            prior_variance = torch.tensor([0.5, 0.8, 1.3], dtype=torch.float64)
        lc = cls(build_model(config), wx, bx, v, a, prior_variance)
        if kind == "cvae":
            set_decoder(lc.model.decoders["x"], torch.cat([wx, v], dim=1), bx)
        else:
            set_decoder(lc.model.decoders["x"], wx, bx)
            set_encoder(lc.model.prior_network, v, a, prior_variance)
        lc.set_posterior()
        return lc

    @property
    def kind(self) -> str:
        return self.model.config.kind

    def set_posterior(self, mean_shift: float = 0.0, variance_factor: float = 1.0) -> None:
        """q(z | x, w) the exact posterior p(z | x, w) (or a poorer one, shifted and widened)."""
        precision = 1 / self.prior_variance + (self.wx * self.wx).sum(0) / SX**2
        variance = 1 / precision
        mx = variance[:, None] * self.wx.T / SX**2
        if self.kind == "cvae":  # mean = S W^T (x - V w - b) / s^2
            mw, shift = -mx @ self.v, -mx @ self.bx
        else:  # mean = S (P^{-1} (A w + a) + W^T (x - b) / s^2)
            mw = variance[:, None] * self.v / self.prior_variance[:, None]
            shift = variance * self.a / self.prior_variance - mx @ self.bx
        set_joint_encoder(self.model.encoder, mx, mw, shift + mean_shift, variance * variance_factor)

    def conditional(self, w: Tensor) -> MultivariateNormal:
        """p(x | w), batch shape (B,)."""
        if self.kind == "cvae":
            mean, cov = w @ self.v.T + self.bx, self.wx @ self.wx.T
        else:
            mean = (w @ self.v.T + self.a) @ self.wx.T + self.bx
            cov = self.wx @ torch.diag(self.prior_variance) @ self.wx.T
        return gaussian(mean, cov + SX**2 * torch.eye(DX, dtype=torch.float64))

    def data(self, n: int, seed: int = 1) -> dict[str, Tensor]:
        """n draws of (x, w): w ~ N(0, I), then x ~ p(x | w)."""
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(n, DW, generator=g, dtype=torch.float64)
        p = self.conditional(w)
        x = p.loc + (p.scale_tril @ torch.randn(n, DX, 1, generator=g, dtype=torch.float64)).squeeze(-1)
        return {"x": x.float(), "w": w.float()}

    def truth(self, data: dict[str, Tensor]) -> dict[str, float]:
        return {"x|w": float(self.conditional(data["w"].double()).log_prob(data["x"].double()).mean())}

