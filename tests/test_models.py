"""Shapes, distributions and gradients of every model, checked against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence

from jmvae import Modality, ModelConfig, build_model
from jmvae.likelihoods import check_batch_value, distribution, encoder_input
from jmvae.subsets import product_of_gaussians
from jmvae.objectives import kl_weight

from helpers import batch_of, tiny_config

KINDS = ["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"]


def test_bernoulli_log_prob_is_the_binary_cross_entropy():
    m = Modality("image", (2, 3), "bernoulli")
    logits, x = torch.randn(4, 6), torch.randint(0, 2, (4, 2, 3)).float()
    expected = -F.binary_cross_entropy_with_logits(logits, x.reshape(4, 6), reduction="none").sum(-1)
    torch.testing.assert_close(distribution(m, logits).log_prob(x), expected)


def test_categorical_log_prob_is_the_log_softmax():
    m = Modality("label", (5,), "categorical")
    logits, w = torch.randn(4, 5), torch.tensor([0, 4, 2, 1])
    torch.testing.assert_close(distribution(m, logits).log_prob(w), F.log_softmax(logits, -1)[torch.arange(4), w])
    assert encoder_input(m, w).tolist() == F.one_hot(w, 5).float().tolist()
    assert encoder_input(m, w[None].expand(3, 4)).tolist() == F.one_hot(w[None].expand(3, 4), 5).float().tolist()


def test_label_range_check_is_skipped_only_inside_labels_checked(digits):
    m = Modality("label", (5,), "categorical")
    with pytest.raises(ValueError, match="labels must lie in"):
        check_batch_value(m, torch.tensor([0, 5]))
    check_batch_value(m, torch.tensor([0, 5]), label_range=False)  # the caller vouches for the range
    with pytest.raises(ValueError, match="must be integers"):
        check_batch_value(m, torch.tensor([0.0, 1.0]), label_range=False)  # dtypes and shapes are still checked
    model = build_model(tiny_config(digits))
    bad = {"image": digits.test["image"][:2], "label": torch.tensor([0, 10])}
    with model.labels_checked():
        with pytest.raises(RuntimeError, match="out of bounds"):  # the range test is skipped: the one-hot fails
            model.loss(bad, noise=torch.zeros(2, 4))
        with pytest.raises(ValueError, match="labels must lie in"):
            build_model(tiny_config(digits)).loss(bad, noise=torch.zeros(2, 4))  # for this model only
    with pytest.raises(ValueError, match="labels must lie in"):
        model.loss(bad, noise=torch.zeros(2, 4))


def test_gaussian_fixed_and_learned_scale():
    x = torch.randn(3, 4)
    fixed = Modality("v", (4,), "gaussian", scale=0.5)
    mean = torch.randn(3, 4)
    expected = -0.5 * (((x - mean) / 0.5) ** 2).sum(-1) - 4 * math.log(0.5 * math.sqrt(2 * math.pi))
    torch.testing.assert_close(distribution(fixed, mean).log_prob(x), expected)
    learned = Modality("v", (4,), "gaussian", scale=None)
    params = torch.randn(3, 8)
    scale = F.softplus(params[:, 4:]) + 1e-4
    torch.testing.assert_close(distribution(learned, params).log_prob(x), Normal(params[:, :4], scale).log_prob(x).sum(-1))


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_trains_one_step_with_finite_loss_and_gradients(digits, kind):
    torch.manual_seed(0)
    model = build_model(tiny_config(digits, kind))
    batch = batch_of(digits, 16, "train")
    terms = model.loss(batch)
    assert terms.total.shape == () and torch.isfinite(terms.total)
    terms.total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_and_log_likelihood_shapes(digits, kind):
    model = build_model(tiny_config(digits, kind, latent=4))
    batch = batch_of(digits, 5)
    q = model.posterior(batch, model.inputs)
    assert q.batch_shape == (5,) and q.event_shape == (4,)
    z = q.sample((7,))
    ll = model.log_likelihoods(z, batch, model.generated)
    assert all(v.shape == (7, 5) for v in ll.values())


def test_loss_is_the_negative_elbo_with_closed_form_kl(digits):
    torch.manual_seed(0)
    model = build_model(tiny_config(digits, "jmvae-zero"))
    batch = batch_of(digits, 8)
    torch.manual_seed(1)
    terms = model.loss(batch)
    torch.manual_seed(1)
    q = model.posterior(batch, model.inputs)
    z = q.rsample()
    recon = sum(v.mean() for v in model.log_likelihoods(z, batch, model.generated).values())
    prior = Independent(Normal(torch.zeros(4), torch.ones(4)), 1)
    kl = kl_divergence(q, prior)
    by_hand = 0.5 * (q.base_dist.scale**2 + q.base_dist.loc**2 - 1 - 2 * q.base_dist.scale.log()).sum(-1)
    torch.testing.assert_close(kl, by_hand)
    torch.testing.assert_close(terms.total, kl.mean() - recon)


def test_jmvae_kl_adds_alpha_times_the_unimodal_kls(digits):
    torch.manual_seed(0)
    model = build_model(tiny_config(digits, "jmvae-kl", alpha=0.3))
    batch = batch_of(digits, 8)
    torch.manual_seed(1)
    terms = model.loss(batch)
    joint = model.posterior(batch, ("image", "label"))
    for name in ("image", "label"):
        torch.testing.assert_close(terms.kl_unimodal[name], kl_divergence(joint, model.posterior(batch, (name,))).mean())
    elbo_part = terms.kl_prior - sum(terms.reconstruction.values())
    torch.testing.assert_close(terms.total, elbo_part + 0.3 * sum(terms.kl_unimodal.values()))


def test_unimodal_encoders_learn_only_through_the_alpha_term(digits):
    batch = batch_of(digits, 8)
    for alpha, expect_gradient in ((0.0, False), (0.1, True)):
        torch.manual_seed(0)
        model = build_model(tiny_config(digits, "jmvae-kl", alpha=alpha))
        model.loss(batch).total.backward()
        got = [p.grad is not None and p.grad.abs().sum() > 0 for p in model.unimodal_encoders.parameters()]
        assert all(got) if expect_gradient else not any(got)


def test_jmvae_zero_fills_a_missing_modality_with_zeros(digits):
    torch.manual_seed(0)
    model = build_model(tiny_config(digits, "jmvae-zero"))
    batch = batch_of(digits, 4)
    from_image = model.posterior(batch, ("image",))
    inputs = model.encoder_inputs(batch, ("image",))
    inputs["label"] = torch.zeros(4, 10)
    explicit = model.joint_encoder(inputs)
    torch.testing.assert_close(from_image.mean, explicit.mean)


def test_three_modalities_and_product_of_experts():
    mods = (Modality("a", (6,), "bernoulli"), Modality("b", (3,), "categorical"), Modality("c", (2,), "gaussian"))
    torch.manual_seed(0)
    model = build_model(ModelConfig("jmvae-kl", mods, latent_dim=3, hidden_dim=16, alpha=1.0, subset_inference="product"))
    batch = {"a": torch.randint(0, 2, (5, 6)).float(), "b": torch.randint(0, 3, (5,)), "c": torch.randn(5, 2)}
    assert torch.isfinite(model.loss(batch).total)
    pair = model.posterior(batch, ("a", "c"))
    experts = [model.posterior(batch, ("a",)), model.posterior(batch, ("c",))]
    precision = sum(e.base_dist.scale.pow(-2) for e in experts)
    torch.testing.assert_close(pair.base_dist.scale, precision.rsqrt())
    torch.testing.assert_close(product_of_gaussians(experts).mean, pair.mean)


def test_bad_batches_get_errors_that_name_the_modality(digits):
    model = build_model(tiny_config(digits, "jmvae-kl"))
    batch = batch_of(digits, 4)
    with pytest.raises(ValueError, match="'image'.*got \\(4, 64\\)"):
        model.posterior({**batch, "image": batch["image"].reshape(4, 64)}, ("image",))
    with pytest.raises(ValueError, match="'label'.*\\[0, 9\\]"):
        model.posterior({**batch, "label": torch.tensor([0, 1, 2, 10])}, ("label",))
    with pytest.raises(ValueError, match="missing"):
        model.posterior({"image": batch["image"]}, ("image", "label"))
    with pytest.raises(ValueError):
        check_batch_value(Modality("label", (10,), "categorical"), torch.zeros(3))


def test_baselines_refuse_inference_they_cannot_do(digits):
    cvae = build_model(tiny_config(digits, "cvae"))
    with pytest.raises(ValueError, match="cannot infer z"):
        cvae.posterior(batch_of(digits, 2), ("image",))


def test_kl_warmup_is_linear_then_one():
    assert kl_weight(0, 10, 0) == 1.0
    assert kl_weight(5, 10, 1.0) == 0.5
    assert kl_weight(50, 10, 2.0) == 1.0


def test_config_validation():
    with pytest.raises(ValueError, match="likelihood"):
        Modality("x", (3,), "poisson")
    with pytest.raises(ValueError):
        Modality("x", (0,), "bernoulli")


@pytest.mark.parametrize("shape", [(2, 3), (5,)])
def test_fast_bernoulli_log_prob_equals_the_distribution(shape):
    from jmvae.likelihoods import log_prob

    m = Modality("image", shape, "bernoulli")
    features = math.prod(shape)
    logits = torch.randn(7, 4, features, dtype=torch.float64) * 5
    x = torch.randint(0, 2, (4, *shape)).double()
    torch.testing.assert_close(log_prob(m, logits, x), distribution(m, logits).log_prob(x))


@pytest.mark.parametrize("shape", [(2, 3), (5,)])
def test_bernoulli_log_prob_of_intensities_is_minus_the_cross_entropy(shape):
    """For x in [0, 1] the library's log p is sum x l - softplus(l), the value the loss and every
    estimator use; the old binary-only form log sigmoid((2x - 1) l) was far off for intensities."""
    from jmvae.likelihoods import log_prob

    m = Modality("image", shape, "bernoulli")
    features = math.prod(shape)
    logits = torch.randn(7, 4, features, dtype=torch.float64) * 5
    x = torch.rand(4, *shape, dtype=torch.float64)
    x.view(-1)[:3] = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)  # the ends and the tie of round()
    expected = -F.binary_cross_entropy_with_logits(logits, x.reshape(4, features).expand(7, 4, features),
                                                   reduction="none").sum(-1)
    torch.testing.assert_close(log_prob(m, logits, x), expected)


def test_bernoulli_log_prob_is_bit_for_bit_the_binary_form_on_binary_data():
    """Committed numbers and trained runs on binarised images do not move with the general form."""
    from jmvae.likelihoods import log_prob

    m = Modality("image", (784,), "bernoulli")
    logits = torch.randn(25, 100, 784) * 8
    x = (torch.rand(100, 784) < 0.2).float()
    assert torch.equal(log_prob(m, logits, x), F.logsigmoid(logits * (2 * x - 1)).sum(-1))


def test_model_loss_on_intensities_uses_the_cross_entropy(digits):
    torch.manual_seed(0)
    model = build_model(tiny_config(digits, "vae"))
    batch = {"image": digits.train["image"][:16] * 0.5 + 0.25}  # intensities strictly inside (0, 1)
    noise = torch.randn(16, 4)
    terms = model.loss(batch, noise=noise)
    posterior = model.posterior(batch, ("image",))
    z = posterior.base_dist.loc + posterior.base_dist.scale * noise
    logits = model.decoders["image"](z)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, batch["image"].reshape(16, -1), reduction="none").sum(-1)
    torch.testing.assert_close(terms.reconstruction["image"], -cross_entropy.mean())


def test_the_loss_vmaps_over_stacked_members_and_equals_each_members_own(digits):
    """Several models of one architecture trained as one (torch.func.vmap over stacked
    parameters) need every operation of the loss to batch: members' losses equal their own."""
    from torch.func import functional_call, stack_module_state, vmap

    class Loss(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, batch, noise):
            return self.model.loss(batch, noise=noise).total

    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(Loss(build_model(tiny_config(digits, "jmvae-kl"))))
    params, buffers = stack_module_state(members)
    images = torch.stack([digits.train["image"][i * 8 : i * 8 + 8] for i in range(3)])
    labels = torch.stack([digits.train["label"][i * 8 : i * 8 + 8] for i in range(3)])
    noise = torch.randn(3, 8, 4)
    base = members[0]
    with base.model.labels_checked(), members[1].model.labels_checked(), members[2].model.labels_checked():
        stacked = vmap(lambda p, b, x, w, e: functional_call(base, (p, b), ({"image": x, "label": w}, e)))(
            params, buffers, images, labels, noise)
        own = torch.stack([m({"image": images[i], "label": labels[i]}, noise[i]) for i, m in enumerate(members)])
    torch.testing.assert_close(stacked, own)
