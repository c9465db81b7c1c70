"""Subset inference of JMVAE-kl (``jmvae.subsets``): the three rules against hand computations,
the default unchanged bit for bit, and old configs without the field."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from jmvae import Modality, ModelConfig
from jmvae.distributions import draw
from jmvae.estimators import iw_log_likelihood
from jmvae.generation import generate
from jmvae.models import build_model
from jmvae.subsets import (ExpertMixture, floored_fraction, prior_corrected_product, product_of_gaussians,
                           subset_posterior, using_rule)


def gaussian(mean: list[float], std: list[float]) -> Independent:
    """A batch of one 1-D diagonal Gaussian per entry: batch (B,), event (1,)."""
    return Independent(Normal(torch.tensor(mean).unsqueeze(-1), torch.tensor(std).unsqueeze(-1)), 1)


def test_prior_corrected_product_of_two_1d_gaussians_by_hand():
    # N(1, 0.5^2) and N(-2, 0.25^2): precisions 4 and 16; minus one N(0, 1) prior: 4 + 16 - 1 = 19
    a, b = gaussian([1.0], [0.5]), gaussian([-2.0], [0.25])
    out = prior_corrected_product([a, b])
    assert out.base_dist.scale.item() == pytest.approx(19 ** -0.5)
    assert out.mean.item() == pytest.approx((4 * 1.0 + 16 * -2.0) / 19)
    # the plain product counts the prior twice: precision 20
    assert product_of_gaussians([a, b]).base_dist.scale.item() == pytest.approx(20 ** -0.5)


def test_prior_corrected_product_floors_an_expert_wider_than_the_prior():
    # std 2 (precision 0.25 < 1) is floored at precision 1, keeping its mean 3: 1 + 4 - 1 = 4
    a, b = gaussian([3.0], [2.0]), gaussian([1.0], [0.5])
    out = prior_corrected_product([a, b])
    assert out.base_dist.scale.item() == pytest.approx(0.5)
    assert out.mean.item() == pytest.approx((1 * 3.0 + 4 * 1.0) / 4)
    assert floored_fraction([a, b]) == 0.5
    # two experts as wide as the prior: the result is the prior's width, never wider
    wide = prior_corrected_product([gaussian([0.0], [3.0]), gaussian([0.0], [3.0])])
    assert wide.base_dist.scale.item() == pytest.approx(1.0)


def test_mixture_log_density_by_hand():
    a, b = gaussian([0.0], [1.0]), gaussian([2.0], [0.5])
    z = torch.tensor([[0.7]])
    def normal_pdf(x, m, s):
        return math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    expected = math.log(0.5 * normal_pdf(0.7, 0.0, 1.0) + 0.5 * normal_pdf(0.7, 2.0, 0.5))
    assert ExpertMixture([a, b]).log_prob(z).item() == pytest.approx(expected)


def test_product_and_mixture_of_one_expert_are_the_expert():
    a = gaussian([0.3, -1.0], [0.7, 2.0])
    for rule in ("product", "prior-product", "mixture"):
        assert subset_posterior([a], rule) is a
    one = product_of_gaussians([a])
    torch.testing.assert_close(one.mean, a.mean)
    torch.testing.assert_close(one.base_dist.scale, a.base_dist.scale)


def test_mixture_rsample_shape_and_draws_come_from_the_experts():
    experts = [gaussian([-50.0, 0.0, 50.0], [1e-3] * 3), gaussian([50.0, 0.0, -50.0], [1e-3] * 3)]
    mixture = ExpertMixture(experts)
    assert mixture.batch_shape == (3,) and mixture.event_shape == (1,) and mixture.experts == 2
    z = mixture.rsample((400,))
    assert z.shape == (400, 3, 1)
    first = z[:, 0, 0]
    assert torch.all((first - 50).abs().lt(0.1) | (first + 50).abs().lt(0.1))
    assert 0.35 < float((first > 0).double().mean()) < 0.65  # each expert about half of the draws
    seeded = [draw(mixture, (5,), torch.Generator().manual_seed(0)) for _ in range(2)]
    assert seeded[0].shape == (5, 3, 1) and torch.equal(*seeded)
    loc = torch.zeros(2, 1, requires_grad=True)
    ExpertMixture([Independent(Normal(loc, torch.ones(2, 1)), 1)] * 2).rsample((3,)).sum().backward()
    assert loc.grad is not None and torch.all(loc.grad == 3)  # reparameterised within the chosen expert


def three_modality_model(rule: str = "product"):
    mods = (Modality("a", (6,), "bernoulli"), Modality("b", (3,), "categorical"), Modality("c", (2,), "gaussian"))
    torch.manual_seed(0)
    return build_model(ModelConfig("jmvae-kl", mods, latent_dim=3, hidden_dim=16, alpha=1.0, subset_inference=rule))


def test_the_product_rule_is_the_plain_product_bit_for_bit():
    model = three_modality_model("product")
    batch = {"a": torch.randint(0, 2, (5, 6)).float(), "b": torch.randint(0, 3, (5,)), "c": torch.randn(5, 2)}
    pair = model.posterior(batch, ("a", "c"))
    a, c = (model.posterior(batch, (m,)).base_dist for m in ("a", "c"))
    precisions = torch.stack([a.scale.pow(-2), c.scale.pow(-2)])  # the operations of the product before the rules
    precision = precisions.sum(0)
    loc = (precisions * torch.stack([a.loc, c.loc])).sum(0) / precision
    assert torch.equal(pair.base_dist.loc, loc) and torch.equal(pair.base_dist.scale, precision.rsqrt())


def test_mixture_proposal_in_the_importance_weighted_estimator():
    model = three_modality_model()
    batch = {"a": torch.randint(0, 2, (4, 6)).float(), "b": torch.randint(0, 3, (4,)), "c": torch.randn(4, 2)}
    with using_rule(model, "mixture"):
        proposal = model.posterior(batch, ("a", "b"))
        assert isinstance(proposal, ExpertMixture)
        bound = iw_log_likelihood(model, batch, ("a", "b"), ("a", "b"), k=50, generator=torch.Generator().manual_seed(0))
    assert model.config.subset_inference == "product"  # restored
    assert bound.shape == (4,) and torch.isfinite(bound).all()


def test_old_configs_without_the_field_read_as_product_and_bad_rules_are_refused():
    config = three_modality_model("mixture").config
    saved = config.to_dict()
    assert saved["subset_inference"] == "mixture" and ModelConfig.from_dict(saved) == config
    del saved["subset_inference"]
    assert ModelConfig.from_dict(saved).subset_inference == "product"
    with pytest.raises(ValueError, match="subset_inference"):
        ModelConfig("jmvae-kl", config.modalities, alpha=0.1, subset_inference="sum")
    with pytest.raises(ValueError, match="jmvae-kl only"):
        ModelConfig("jmvae-zero", config.modalities, subset_inference="mixture")


class TwoLinearViews:
    """p(z) = N(0, 1); p(x_m | z) = N(a_m z, s_m^2) for m = x, w (1-D): closed-form posteriors
    p(z | x_S) = N(sum_m a_m x_m / s_m^2 / lam, 1 / lam), lam = 1 + sum_{m in S} a_m^2 / s_m^2,
    and p(x, w) = N(0, a a^T + diag(s^2)). Duck-typed for the estimator (prior, log_likelihoods)."""

    gains, scales = {"x": 2.0, "w": -1.5}, {"x": 0.5, "w": 0.8}

    def prior(self, batch):
        return Independent(Normal(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)), 1)

    def log_likelihoods(self, z, batch, names):
        return {m: Normal(self.gains[m] * z[..., 0], self.scales[m]).log_prob(batch[m]) for m in names}

    def posterior(self, batch, given):
        lam = 1 + sum(self.gains[m] ** 2 / self.scales[m] ** 2 for m in given)
        mean = sum(self.gains[m] * batch[m] / self.scales[m] ** 2 for m in given) / lam
        return Independent(Normal(mean.unsqueeze(-1), torch.full_like(mean, lam ** -0.5).unsqueeze(-1)), 1)

    def log_marginal(self, batch):
        a = torch.tensor([self.gains["x"], self.gains["w"]], dtype=torch.float64)
        cov = torch.outer(a, a) + torch.diag(torch.tensor([self.scales["x"] ** 2, self.scales["w"] ** 2], dtype=torch.float64))
        return torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov).log_prob(
            torch.stack([batch["x"], batch["w"]], -1))


def test_prior_corrected_product_of_exact_unimodal_posteriors_is_the_exact_joint_posterior():
    model = TwoLinearViews()
    g = torch.Generator().manual_seed(0)
    batch = {"x": torch.randn(50, generator=g, dtype=torch.float64), "w": torch.randn(50, generator=g, dtype=torch.float64)}
    experts = [model.posterior(batch, ("x",)), model.posterior(batch, ("w",))]
    exact = model.posterior(batch, ("x", "w"))
    corrected = prior_corrected_product(experts)
    torch.testing.assert_close(corrected.mean, exact.mean)
    torch.testing.assert_close(corrected.base_dist.scale, exact.base_dist.scale)
    assert torch.all(product_of_gaussians(experts).base_dist.scale < exact.base_dist.scale)  # the prior twice
    truth = model.log_marginal(batch)
    exact_bound = iw_log_likelihood(model, batch, ("x", "w"), proposal=corrected, k=3,
                                    generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(exact_bound, truth)  # the exact posterior: L_k = log p(x, w) for any k
    mixture = iw_log_likelihood(model, batch, ("x", "w"), proposal=ExpertMixture(experts), k=20,
                                generator=torch.Generator().manual_seed(1))
    assert truth.mean() - 3 < mixture.mean() < truth.mean()  # a valid proposal: a bound below the truth


def test_generation_from_two_of_three_modalities_draws_from_the_mixture():
    model = three_modality_model("mixture")
    given = {"a": torch.ones(1, 6), "b": torch.tensor([2])}
    out = generate(model, given, 7, torch.Generator().manual_seed(0))
    assert out["c"].mean.shape == (7, 2) and out["a"].mean.shape == (7, 6)
    again = generate(model, given, 7, torch.Generator().manual_seed(0))
    assert torch.equal(out["c"].mean, again["c"].mean)


def test_jmvae_kl_with_three_modalities_defaults_to_the_prior_corrected_product():
    three = three_modality_model().config.modalities
    assert ModelConfig("jmvae-kl", three, alpha=0.1).subset_inference == "prior-product"
    assert ModelConfig("jmvae-kl", three[:2], alpha=0.1).subset_inference == "product"  # no strict subset of two
    assert ModelConfig("jmvae-zero", three).subset_inference == "product"
    saved = ModelConfig("jmvae-kl", three, alpha=0.1).to_dict()
    del saved["subset_inference"]  # a run saved before the field existed
    assert ModelConfig.from_dict(saved).subset_inference == "product"
