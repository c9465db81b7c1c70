"""The importance-weighted estimator against a linear-Gaussian model with a closed-form likelihood.

p(z) = N(0, I_L), p(x | z) = N(W z + b, s^2 I_D)  =>  p(x) = N(b, W W^T + s^2 I) and the exact
posterior q*(z | x) = N(S W^T (x - b) / s^2, S), S = (I + W^T W / s^2)^{-1}.
With q* as proposal every importance weight equals p(x), so L_k = log p(x) for every k; with
any other proposal L_k <= log p(x) in expectation and L_k rises with k (Burda et al. 2016).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from jmvae.estimators import iw_log_likelihood, iw_log_likelihoods, log_marginal_by_prior, mean_and_sem

L, D, S = 3, 5, 0.7


class LinearGaussian:
    """Duck-typed model: the two methods the estimator uses, prior() and log_likelihoods()."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(D, L, generator=g, dtype=torch.float64)
        self.b = torch.randn(D, generator=g, dtype=torch.float64)

    def prior(self, batch):
        return Independent(Normal(torch.zeros(L, dtype=torch.float64), torch.ones(L, dtype=torch.float64)), 1)

    def log_likelihoods(self, z, batch, names):
        mean = z @ self.W.T + self.b
        return {"x": Independent(Normal(mean, S), 1).log_prob(batch["x"])}

    def marginal(self) -> MultivariateNormal:
        return MultivariateNormal(self.b, self.W @ self.W.T + S**2 * torch.eye(D, dtype=torch.float64))

    def exact_posterior(self, x: torch.Tensor) -> MultivariateNormal:
        cov = torch.linalg.inv(torch.eye(L, dtype=torch.float64) + self.W.T @ self.W / S**2)
        mean = (x - self.b) @ self.W @ cov / S**2  # cov is symmetric
        return MultivariateNormal(mean, cov.expand(x.shape[0], L, L))

    def data(self, n: int, seed: int = 1) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return {"x": self.marginal().sample((n,))}


@pytest.fixture
def model() -> LinearGaussian:
    return LinearGaussian()


@pytest.mark.parametrize("k", [1, 7, 100])
def test_exact_posterior_gives_the_true_log_likelihood_for_any_k(model, k):
    batch = model.data(20)
    truth = model.marginal().log_prob(batch["x"])
    estimate = iw_log_likelihood(model, batch, ["x"], proposal=model.exact_posterior(batch["x"]), k=k, chunk=3)
    torch.testing.assert_close(estimate, truth, atol=1e-9, rtol=0)


def test_bound_rises_with_k_and_stays_below_the_truth(model):
    batch = model.data(200)
    truth = model.marginal().log_prob(batch["x"]).mean().item()
    poor = Independent(Normal(torch.zeros(200, L, dtype=torch.float64), torch.full((200, L), 1.5, dtype=torch.float64)), 1)
    torch.manual_seed(2)
    bounds = [iw_log_likelihood(model, batch, ["x"], proposal=poor, k=k).mean().item() for k in (1, 10, 100, 1000)]
    assert all(a < b for a, b in zip(bounds, bounds[1:])), bounds
    assert bounds[-1] < truth, (bounds, truth)
    assert truth - bounds[-1] < 0.05 * (truth - bounds[0]), "k = 1000 should close most of the gap"


class Replay:
    """A proposal that hands out pre-drawn samples in order, so chunked and unchunked runs see the same z."""

    def __init__(self, base: Independent, draws: torch.Tensor) -> None:
        self.base, self.draws, self.used = base, draws, 0
        self.batch_shape, self.event_shape = base.batch_shape, base.event_shape

    def sample(self, shape):
        out = self.draws[self.used : self.used + shape[0]]
        self.used += shape[0]
        return out

    def log_prob(self, z):
        return self.base.log_prob(z)


@pytest.mark.parametrize("chunk", [1, 3, 64, 1000])
def test_streaming_in_chunks_equals_one_pass(model, chunk):
    batch = model.data(6)
    base = Independent(Normal(torch.zeros(6, L, dtype=torch.float64), torch.ones(6, L, dtype=torch.float64)), 1)
    draws = base.sample((64,))
    one_pass = iw_log_likelihood(model, batch, ["x"], proposal=Replay(base, draws), k=64, chunk=64)
    log_w = model.prior(batch).log_prob(draws) - base.log_prob(draws) + model.log_likelihoods(draws, batch, ["x"])["x"]
    by_hand = torch.logsumexp(log_w, 0) - math.log(64)
    streamed = iw_log_likelihood(model, batch, ["x"], proposal=Replay(base, draws), k=64, chunk=chunk)
    torch.testing.assert_close(one_pass, by_hand)
    torch.testing.assert_close(streamed, by_hand)


def test_seeded_generator_repeats_estimates(model):
    batch = model.data(4)
    proposal = Independent(Normal(torch.zeros(4, L, dtype=torch.float64), torch.ones(4, L, dtype=torch.float64)), 1)
    runs = [
        iw_log_likelihoods(model, batch, [["x"]], proposal, k=50, chunk=7, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert torch.equal(runs[0][("x",)], runs[1][("x",)])


def test_log_marginal_by_prior_matches_closed_form_and_shares_duplicates(model):
    x = model.data(3)["x"]
    batch = {"x": torch.cat([x, x[:1]])}  # the last row repeats the first
    torch.manual_seed(3)
    estimate = log_marginal_by_prior(model, batch, ["x"], n_prior=200_000)
    truth = model.marginal().log_prob(batch["x"])
    torch.testing.assert_close(estimate, truth, atol=0.05, rtol=0)
    assert estimate[0] == estimate[3]


def test_k_must_be_positive(model):
    batch = model.data(2)
    with pytest.raises(ValueError, match="k must be"):
        iw_log_likelihood(model, batch, ["x"], proposal=model.exact_posterior(batch["x"]), k=0)


def test_mean_and_sem():
    mean, sem = mean_and_sem(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5
    assert sem == pytest.approx(torch.tensor([1.0, 2.0, 3.0, 4.0]).std().item() / 2)


def test_memory_is_bounded_by_the_chunk_not_by_k(model, monkeypatch):
    """However large k is, no pass draws (and decodes) more than ``chunk`` samples at once."""
    from jmvae import estimators

    drawn = []
    real_sample = estimators.sample

    def recording_sample(proposal, s, batch_size, generator):
        drawn.append(s)
        return real_sample(proposal, s, batch_size, generator)

    monkeypatch.setattr(estimators, "sample", recording_sample)
    batch = model.data(3)
    iw_log_likelihood(model, batch, ["x"], proposal=model.exact_posterior(batch["x"]), k=10_000, chunk=64)
    assert sum(drawn) == 10_000 and max(drawn) == 64


# -- the seeded sampler: exactly the proposal it is given ------------------------------------------

from torch.distributions import Laplace, LogNormal, StudentT  # noqa: E402

from jmvae.distributions import draw  # noqa: E402
from jmvae.estimators import sample  # noqa: E402
from jmvae.subsets import product_of_gaussians  # noqa: E402


def diagonal(loc, scale) -> Independent:
    return Independent(Normal(torch.as_tensor(loc, dtype=torch.float64), torch.as_tensor(scale, dtype=torch.float64)), 1)


def assert_moments(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Sample mean and std along the first axis within 5 standard errors of the given ones."""
    n = z.shape[0]
    assert (z.mean(0) - mean).abs().max() < 5 * std.max() / math.sqrt(n)
    assert ((z.std(0) - std).abs() / std).max() < 5 / math.sqrt(2 * n)


def test_seeded_samples_of_a_batched_gaussian_have_its_means_and_scales_per_datum():
    loc = torch.tensor([[0.0, 3.0], [-2.0, 1.0], [5.0, -1.0]], dtype=torch.float64)
    scale = torch.tensor([[1.0, 0.1], [2.0, 0.5], [0.3, 4.0]], dtype=torch.float64)
    z = sample(diagonal(loc, scale), 20_000, 3, torch.Generator().manual_seed(0))
    assert z.shape == (20_000, 3, 2)
    assert_moments(z, loc, scale)


def test_seeded_samples_are_independent_across_data_and_latent_dims():
    """Identical proposals for every datum must still get their own noise (no shared eps)."""
    proposal = diagonal(torch.zeros(4, 3), torch.full((4, 3), 0.5))
    z = sample(proposal, 20_000, 4, torch.Generator().manual_seed(1)).reshape(20_000, -1)
    correlation = torch.corrcoef(z.T) - torch.eye(12, dtype=torch.float64)
    assert correlation.abs().max() < 5 / math.sqrt(20_000)


def test_an_unbatched_proposal_is_drawn_for_every_datum():
    prior = diagonal(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0]))
    z = sample(prior, 20_000, 5, torch.Generator().manual_seed(2))
    assert z.shape == (20_000, 5, 2)
    assert_moments(z, prior.mean.expand(5, 2), prior.stddev.expand(5, 2))
    assert torch.corrcoef(z[:, :, 0].T).sub(torch.eye(5, dtype=torch.float64)).abs().max() < 5 / math.sqrt(20_000)


def test_a_product_of_experts_is_sampled_with_its_precision_weighted_moments():
    a, b = diagonal([[0.0, 2.0]], [[0.5, 1.0]]), diagonal([[4.0, -2.0]], [[1.0, 0.25]])
    poe = product_of_gaussians([a, b])
    precision = torch.tensor([[4.0 + 1.0, 1.0 + 16.0]], dtype=torch.float64)  # 1 / scale^2, summed
    mean = torch.tensor([[(0.0 * 4 + 4.0 * 1) / 5, (2.0 * 1 - 2.0 * 16) / 17]], dtype=torch.float64)
    torch.testing.assert_close(poe.mean, mean)
    z = sample(poe, 20_000, 1, torch.Generator().manual_seed(3))
    assert_moments(z, mean, precision.rsqrt())


def test_a_full_covariance_proposal_is_drawn_with_its_covariance():
    cov = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=torch.float64)
    proposal = MultivariateNormal(torch.tensor([[1.0, -1.0]], dtype=torch.float64), cov.expand(1, 2, 2))
    z = sample(proposal, 40_000, 1, torch.Generator().manual_seed(4))[:, 0]
    torch.testing.assert_close(torch.cov(z.T), cov, atol=0.05, rtol=0)


@pytest.mark.parametrize("make", [lambda: Laplace(torch.tensor([0.5]), torch.tensor([2.0])),
                                  lambda: LogNormal(torch.tensor([0.0]), torch.tensor([0.5]))])
def test_non_gaussian_proposals_are_drawn_from_their_own_law(make):
    dist = make()
    z = draw(dist, (40_000,), torch.Generator().manual_seed(5))
    reference = dist.sample((40_000,))
    quantiles = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9])
    torch.testing.assert_close(z.squeeze(-1).quantile(quantiles), reference.squeeze(-1).quantile(quantiles),
                               rtol=0.05, atol=0.03)


def test_a_proposal_without_a_reproducible_draw_is_refused_by_name():
    with pytest.raises(TypeError, match="StudentT"):
        draw(StudentT(torch.tensor([3.0])), (10,), torch.Generator().manual_seed(0))


def test_a_laplace_proposal_gives_a_bound_below_the_truth(model):
    """Before the draw was exact, a Laplace proposal was sampled as a Gaussian with its loc and
    scale but weighed with its own density: -8.44 here, above the truth (-8.68)."""
    batch = model.data(200)
    truth = model.marginal().log_prob(batch["x"]).mean().item()
    exact = model.exact_posterior(batch["x"])
    laplace = Independent(Laplace(exact.mean, exact.variance.sqrt()), 1)  # wider than the posterior
    estimate = iw_log_likelihood(model, batch, ["x"], proposal=laplace, k=10, generator=torch.Generator().manual_seed(6))
    assert truth - 0.2 < estimate.mean().item() < truth  # the Gaussian draw gave truth + 0.23
