"""Training and evaluation on partially paired data (jmvae.partial, jmvae.masks, data.semisupervised)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

from jmvae import ModelConfig, build_model
from jmvae.cli import main
from jmvae.config import EvalConfig, Modality, TrainConfig
from jmvae.data import load_dataset
from jmvae.data.checks import check_paired
from jmvae.errors import DataError
from jmvae.evaluation import evaluate
from jmvae.masks import modalities_of, observed_key
from jmvae.subsets import prior_corrected_product, product_of_gaussians
from jmvae.partial import masked_product_of_experts
from jmvae.training import train

IMAGE_LABEL = (Modality("image", (4, 4), "bernoulli"), Modality("label", (3,), "categorical"))


def model_of(kind: str, modalities=IMAGE_LABEL, seed: int = 0, rule: str | None = None):
    torch.manual_seed(seed)
    alpha = 0.5 if kind == "jmvae-kl" else 0.0
    return build_model(ModelConfig(kind=kind, modalities=modalities, latent_dim=3, hidden_dim=8, alpha=alpha,
                                   subset_inference=rule))


def batch_of(n: int = 6, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randint(0, 2, (n, 4, 4), generator=g).float(),
            "label": torch.randint(0, 3, (n,), generator=g)}


def noise_of(n: int = 6, seed: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def with_masks(batch, **masks):
    out = dict(batch)
    for name, values in masks.items():
        out[observed_key(name)] = torch.tensor(values, dtype=torch.bool)
    return out


@pytest.mark.parametrize("kind", ["jmvae-kl", "jmvae-zero"])
def test_the_masked_bound_is_the_complete_bound_when_nothing_is_missing(kind):
    model, batch, noise = model_of(kind), batch_of(), noise_of()
    complete = model.loss(batch, kl_weight=0.7, alpha_weight=0.3, noise=noise)
    masked = model.loss(with_masks(batch, image=[True] * 6, label=[True] * 6), kl_weight=0.7, alpha_weight=0.3, noise=noise)
    assert torch.allclose(masked.total, complete.total, rtol=1e-6, atol=1e-6)
    assert torch.allclose(masked.kl_prior, complete.kl_prior, rtol=1e-6, atol=1e-6)
    for name in ("image", "label"):
        assert torch.allclose(masked.reconstruction[name], complete.reconstruction[name], rtol=1e-6, atol=1e-6)
    assert masked.kl_unimodal.keys() == complete.kl_unimodal.keys()
    for name in complete.kl_unimodal:
        assert torch.allclose(masked.kl_unimodal[name], complete.kl_unimodal[name], rtol=1e-6, atol=1e-6)


def hand_unimodal_elbo(model, batch, noise, name: str, kl_weight: float = 1.0) -> torch.Tensor:
    """-ELBO of one modality with its own encoder, written out: Bernoulli or categorical log
    likelihood at z = mu + sigma * eps, and KL(N(mu, sigma^2) || N(0, 1)) in closed form."""
    x = batch[name]
    encoded = F.one_hot(x, 3).float() if name == "label" else x.reshape(len(x), -1)
    q = model.unimodal_encoders[name](encoded)
    mu, sigma = q.base_dist.loc, q.base_dist.scale
    z = mu + sigma * noise
    logits = model.decoders[name](z)
    if name == "image":
        flat = x.reshape(len(x), -1)
        log_p = (flat * F.logsigmoid(logits) + (1 - flat) * F.logsigmoid(-logits)).sum(-1)
    else:
        log_p = logits.log_softmax(-1).gather(-1, x[:, None])[:, 0]
    kl = 0.5 * (mu.pow(2) + sigma.pow(2) - 1 - 2 * sigma.log()).sum(-1)
    return kl_weight * kl - log_p


def test_a_datum_with_one_modality_gets_that_modalitys_elbo_with_its_own_encoder():
    model, batch, noise = model_of("jmvae-kl"), batch_of(), noise_of()
    image_only = [True] * 6, [False] * 6
    masked = model.loss(with_masks(batch, image=image_only[0], label=image_only[1]), noise=noise)
    assert torch.allclose(masked.total, hand_unimodal_elbo(model, batch, noise, "image").mean(), rtol=1e-5, atol=1e-6)
    assert masked.kl_unimodal["image"].item() == 0.0 and masked.reconstruction["label"].item() == 0.0
    label_only = model.loss(with_masks(batch, image=[False] * 6, label=[True] * 6), noise=noise)
    assert torch.allclose(label_only.total, hand_unimodal_elbo(model, batch, noise, "label").mean(), rtol=1e-5, atol=1e-6)


def test_a_mixed_batch_averages_each_datums_own_bound():
    model, batch, noise = model_of("jmvae-kl"), batch_of(), noise_of()
    image = [True, True, False, True, True, True]
    label = [True, False, True, True, False, True]
    masked = model.loss(with_masks(batch, image=image, label=label), kl_weight=0.5, noise=noise)
    per_datum = []
    for i in range(6):
        row, eps = {k: v[i : i + 1] for k, v in batch.items()}, noise[i : i + 1]
        if image[i] and label[i]:
            per_datum.append(model.loss(row, kl_weight=0.5, noise=eps).total)
        else:
            per_datum.append(hand_unimodal_elbo(model, row, eps, "image" if image[i] else "label", kl_weight=0.5)[0])
    assert torch.allclose(masked.total, torch.stack(per_datum).mean(), rtol=1e-5, atol=1e-6)


def test_gradients_reach_only_the_encoders_and_decoders_a_datum_uses():
    model, batch, noise = model_of("jmvae-kl"), batch_of(), noise_of()
    model.loss(with_masks(batch, label=[False] * 6), noise=noise).total.backward()
    for name, p in model.named_parameters():
        untouched = name.startswith(("joint_encoder.", "unimodal_encoders.label.", "decoders.label."))
        norm = 0.0 if p.grad is None else p.grad.abs().sum().item()
        assert (norm == 0.0) == untouched, name


def test_jmvae_zero_zero_fills_a_missing_modality():
    model, batch, noise = model_of("jmvae-zero"), batch_of(), noise_of()
    masked = with_masks(batch, label=[False] * 3 + [True] * 3)
    terms, posterior = model.bound(masked, noise=noise)
    image_only = model.posterior(batch, ("image",))  # label zero-filled
    both = model.posterior(batch, ("image", "label"))
    assert torch.allclose(posterior.base_dist.loc[:3], image_only.base_dist.loc[:3], rtol=1e-6, atol=1e-6)
    assert torch.allclose(posterior.base_dist.loc[3:], both.base_dist.loc[3:], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rule", ["product", "prior-product"])
def test_a_subset_of_three_modalities_trains_with_the_models_subset_rule(rule):
    three = IMAGE_LABEL + (Modality("other", (5,), "bernoulli"),)
    model = model_of("jmvae-kl", three, rule=rule)
    g = torch.Generator().manual_seed(3)
    batch = dict(batch_of(4), other=torch.randint(0, 2, (4, 5), generator=g).float())
    masked = with_masks(batch, label=[False, True, True, True], other=[True, True, True, False])
    _, posterior = model.bound(masked, noise=torch.zeros(4, 3, dtype=torch.float32))
    experts = [model.posterior(batch, ("image",)), model.posterior(batch, ("other",))]
    pair = product_of_gaussians(experts) if rule == "product" else prior_corrected_product(experts)
    assert torch.allclose(posterior.base_dist.loc[0], pair.base_dist.loc[0], rtol=1e-5, atol=1e-6)
    assert torch.allclose(posterior.base_dist.scale[0], pair.base_dist.scale[0], rtol=1e-5, atol=1e-6)
    joint = model.posterior(batch, ("image", "label", "other"))
    assert torch.equal(posterior.base_dist.loc[1:3], joint.base_dist.loc[1:3])


def test_the_masked_product_gives_one_expert_exactly_and_a_datum_with_none_no_nan():
    experts = [model_of("jmvae-kl").posterior(batch_of(), (m,)) for m in ("image", "label")]
    seen = torch.tensor([[True, False], [False, True], [False, False], [True, True]] + [[True, True]] * 2)
    loc, scale = masked_product_of_experts(experts, seen)
    assert torch.equal(loc[0], experts[0].base_dist.loc[0]) and torch.equal(scale[1], experts[1].base_dist.scale[1])
    assert torch.isfinite(loc).all() and torch.isfinite(scale).all()


@pytest.mark.parametrize("kind", ["vae", "cvae", "cmma"])
def test_the_baselines_train_on_the_data_that_have_every_modality_they_read(kind):
    model, batch, noise = model_of(kind), batch_of(), noise_of()
    label = [True, False, True, True, False, True]
    masked = model.loss(with_masks(batch, label=label), noise=noise)
    rows = torch.tensor(label) if kind != "vae" else torch.ones(6, dtype=torch.bool)
    expected = model.loss({k: v[rows] for k, v in batch.items()}, noise=noise[rows])
    assert torch.allclose(masked.total, expected.total, rtol=1e-6, atol=1e-6)
    none = model.loss(with_masks(batch, label=[False] * 6), noise=noise)
    assert torch.isfinite(none.total)


def test_a_batch_with_no_pair_at_all_trains(tmp_path):
    data = load_dataset("digits")
    n = data.train["label"].shape[0]
    half = torch.arange(n) % 2 == 0
    train_split = dict(data.train)
    train_split[observed_key("image")] = half
    train_split[observed_key("label")] = ~half
    unpaired = dataclasses.replace(data, train=train_split)
    config = TrainConfig(epochs=2, batch_size=64, seed=0, threads=1)
    model_config = ModelConfig(kind="jmvae-kl", modalities=data.modalities, latent_dim=4, hidden_dim=32, alpha=0.1)
    result = train(model_config, config, unpaired, tmp_path / "run", progress=False)
    losses = [h["loss"] for h in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert result.history[-1]["kl/image"] == 0.0  # the masks reached the model: no datum is complete


def test_the_evaluator_computes_a_cell_over_the_data_that_have_its_modalities():
    data = load_dataset("digits")
    model = build_model(ModelConfig(kind="jmvae-kl", modalities=data.modalities, latent_dim=4, hidden_dim=16, alpha=0.1))
    test = {k: v[:40] for k, v in data.test.items()}
    config = EvalConfig(k=4, n_prior=8, batch_size=16, limit=None)
    full = evaluate(model, test, config)
    masked = dict(test)
    masked[observed_key("label")] = torch.arange(40) < 40  # all there: the same numbers
    same = evaluate(model, masked, config)
    assert same.log_likelihood == full.log_likelihood and same.n_per_cell["joint"] == 40
    assert "n_per_cell" not in json.loads(full.to_json())
    masked[observed_key("label")] = torch.arange(40) % 4 != 0  # a quarter without labels
    part = evaluate(model, masked, config)
    assert part.n_per_cell["joint"] == 30 and part.n_per_cell["x/single"] == 40
    assert part.log_likelihood.x.single == full.log_likelihood.x.single  # reads the image only
    assert part.log_likelihood.joint != full.log_likelihood.joint


def test_masks_are_checked_with_the_data():
    data = load_dataset("digits")
    bad = dict(data.train, **{observed_key("label"): torch.ones(3, dtype=torch.bool)})
    with pytest.raises(DataError, match="must be a bool tensor of shape"):
        check_paired(data.modalities, bad, "train")
    stray = dict(data.train, **{observed_key("caption"): torch.ones(len(data.train["label"]), dtype=torch.bool)})
    with pytest.raises(DataError, match="a mask 'caption:observed' for no modality"):
        check_paired(data.modalities, stray, "train")
    n = len(data.train["label"])
    empty = dict(data.train, **{observed_key("label"): torch.zeros(n, dtype=torch.bool),
                                observed_key("image"): torch.arange(n) > 0})
    with pytest.raises(DataError, match="example 0 has no modality at all"):
        check_paired(data.modalities, empty, "train")


def test_semi_supervised_digits_keep_labels_balanced_per_class_and_reproducibly():
    data = load_dataset("digits", labelled=50, labelled_seed=3)
    mask = data.train[observed_key("label")]
    full = load_dataset("digits")
    assert int(mask.sum()) == 50
    assert torch.bincount(full.train["label"][mask], minlength=10).tolist() == [5] * 10
    assert torch.equal(mask, load_dataset("digits", labelled=50, labelled_seed=3).train[observed_key("label")])
    assert not torch.equal(mask, load_dataset("digits", labelled=50, labelled_seed=4).train[observed_key("label")])
    assert (data.train["label"][~mask] == 0).all() and observed_key("label") not in data.test
    only = load_dataset("digits", labelled=50, labelled_seed=3, labelled_only=True)
    assert only.train["label"].shape == (50,) and observed_key("label") not in only.train
    with pytest.raises(DataError, match="multiple of the 10 classes"):
        load_dataset("digits", labelled=55)


def test_the_cli_trains_and_evaluates_a_semi_supervised_run(tmp_path, capsys):
    out = tmp_path / "semi"
    assert main(["train", "--data", "digits", "--labelled", "100", "--epochs", "1", "--out", str(out),
                 "--threads", "1", "--no-progress"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["data"]["options"] == {"labelled": 100, "labelled_seed": 0}
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "2", "--n-prior", "4", "--limit", "50", "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"]["label|image"] is not None and result["n_test"] == 50
    assert main(["train", "--data", "digits", "--labelled-only", "--epochs", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--labelled N only" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["jmvae-kl", "cvae"])
def test_members_trained_together_on_partially_paired_data_equal_their_single_runs(kind, tmp_path):
    """The group trainer hands each member the masks too (within the group's float tolerance,
    tests/test_group_training.py), and the baselines' masked bound runs under vmap."""
    from helpers import tiny_config, tiny_train
    from jmvae.training.group import train_group

    semi = load_dataset("digits", labelled=50)
    config = tiny_config(semi, kind)
    pairs = [(config.alpha, 0), (config.alpha, 1)]
    result = train_group(config, tiny_train(max_steps=10), semi, tmp_path, pairs, progress=False)
    for (_, seed), member in zip(pairs, result.members):
        alone = train(config, tiny_train(seed=seed, max_steps=10), semi, None, progress=False)
        for key, value in alone.model.state_dict().items():
            torch.testing.assert_close(member.model.state_dict()[key], value, rtol=1e-4, atol=1e-5, msg=key)
    unmasked = dataclasses.replace(semi, train=modalities_of(semi.train))  # the same values, the masks dropped
    ignoring_masks = train(config, tiny_train(seed=0, max_steps=10), unmasked, None, progress=False)
    assert not all(torch.equal(ignoring_masks.model.state_dict()[k], v) for k, v in result.members[0].model.state_dict().items())
