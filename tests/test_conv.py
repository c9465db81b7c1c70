"""Convolutional networks for image modalities: shapes, the config switch, the paper's CelebA
architecture and a JMVAE-kl step on a (2, 3, 64, 64) batch with 40 attributes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from jmvae import Modality, ModelConfig, build_model
from jmvae.data.celeba import celeba_modalities
from jmvae.likelihoods import distribution, log_prob
from jmvae.networks import ConvDecoder, ConvEncoder, ConvFeatures, modality_branch, modality_decoder, modality_encoder
from jmvae.presets import paper_model_config, paper_train_config

KINDS = ["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"]


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is faster and steadier


def batch(n: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(n, 3, size, size, generator=generator),
        "attributes": torch.randint(0, 2, (n, 40), generator=generator).float(),
    }


def test_network_auto_resolves_to_conv_for_images_only():
    assert Modality("image", (3, 64, 64), "gaussian").network == "conv"
    assert Modality("image", (1, 32, 48), "bernoulli").network == "conv"
    assert Modality("image", (28, 28), "bernoulli").network == "mlp"  # MNIST stays an MLP
    assert Modality("image", (3, 20, 20), "gaussian").network == "mlp"  # not a multiple of 16
    assert Modality("image", (3, 64, 64), "gaussian", network="mlp").network == "mlp"
    with pytest.raises(ValueError, match="a conv network needs an image shape"):
        Modality("v", (784,), "bernoulli", network="conv")
    with pytest.raises(ValueError, match="network 'resnet' is not one of"):
        Modality("image", (3, 64, 64), "gaussian", network="resnet")
    with pytest.raises(ValueError, match="mean_activation applies to gaussian"):
        Modality("a", (40,), "bernoulli", mean_activation="tanh")
    with pytest.raises(ValueError, match="branch_layers must be >= 1"):
        Modality("a", (40,), "bernoulli", branch_layers=0)


def test_config_round_trip_keeps_the_new_fields_and_reads_old_configs():
    image, attrs = celeba_modalities()
    config = ModelConfig("jmvae-kl", (image, attrs), latent_dim=8, hidden_dim=32, alpha=0.1)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["modalities"][0]["network"] == "conv"
    old = {"kind": "vae", "latent_dim": 4, "hidden_dim": 8, "alpha": 0.0, "min_variance": 1e-6,
           "modalities": [{"name": "image", "shape": [28, 28], "likelihood": "bernoulli", "scale": 1.0}]}
    restored = ModelConfig.from_dict(old)
    assert restored.modalities[0] == Modality("image", (28, 28), "bernoulli", network="mlp")


def test_conv_shapes_for_64x64_images():
    image = Modality("image", (3, 64, 64), "gaussian")
    x = batch()["image"].reshape(2, -1)
    features = ConvFeatures(image.shape)
    assert features(x).shape == (2, 4096) and features.out_features == 256 * 4 * 4
    encoder = modality_encoder(image, 32, 8, 1e-6)
    assert isinstance(encoder, ConvEncoder)
    q = encoder(x)
    assert q.batch_shape == (2,) and q.event_shape == (8,)
    decoder = modality_decoder(image, 32, 8)
    assert isinstance(decoder, ConvDecoder)
    assert decoder(torch.randn(2, 8)).shape == (2, 3 * 64 * 64)
    assert decoder(torch.randn(5, 2, 8)).shape == (5, 2, 3 * 64 * 64)  # importance samples x batch
    assert modality_branch(image, 32)(x).shape == (2, 4096)
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in encoder.modules()) == 3
    deconvs = [m for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [d.out_channels for d in deconvs] == [256, 128, 64, 3]
    assert decoder.dense[0].out_features == 4096  # dense 4096 -> 256 x 4 x 4


def test_learned_scale_doubles_the_decoder_channels():
    image = Modality("image", (3, 32, 32), "gaussian", scale=None)
    decoder = modality_decoder(image, 16, 4)
    params = decoder(torch.randn(3, 4))
    assert params.shape == (3, 2 * 3 * 32 * 32)
    dist = distribution(image, params)
    assert dist.event_shape == (3, 32, 32) and dist.batch_shape == (3,)


def test_tanh_gaussian_mean():
    attrs = Modality("attributes", (40,), "gaussian", scale=1.0, mean_activation="tanh")
    params, value = torch.randn(4, 40) * 3, torch.randint(0, 2, (4, 40)).float() * 2 - 1
    dist = distribution(attrs, params)
    assert dist.mean.abs().max() <= 1
    torch.testing.assert_close(log_prob(attrs, params, value), Normal(torch.tanh(params), 1.0).log_prob(value).sum(-1))


def test_jmvae_kl_step_on_a_celeba_batch():
    torch.manual_seed(0)
    config = ModelConfig("jmvae-kl", celeba_modalities(), latent_dim=128, hidden_dim=64, alpha=0.1)
    model = build_model(config)
    terms = model.loss(batch())
    assert terms.total.shape == () and torch.isfinite(terms.total)
    terms.total.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert set(terms.kl_unimodal) == {"image", "attributes"}


@pytest.mark.parametrize("adversarial", [False, True], ids=["plain", "gan"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_model_runs_with_a_conv_image(kind, adversarial):
    from jmvae.adversarial import AdversarialStep
    from jmvae.config import AdversarialConfig
    from jmvae.training import ELBOStep, StepInput

    torch.manual_seed(0)
    config = ModelConfig(kind, celeba_modalities(32), latent_dim=4, hidden_dim=16, alpha=0.1 if kind == "jmvae-kl" else 0.0)
    model = build_model(config)
    step = AdversarialStep(model, AdversarialConfig()) if adversarial else ELBOStep(model)
    data = batch(3, 32)
    objective, _ = step.objective(StepInput(data, data, [torch.randn(3, 4) for _ in range(step.noise_draws)], 1.0, 1.0))
    objective.backward()
    model.eval()
    with torch.no_grad():
        z = model.posterior(data, model.inputs).sample((2,))
        ll = model.log_likelihoods(z, data, model.generated)
    assert all(v.shape == (2, 3) and torch.isfinite(v).all() for v in ll.values())


def test_jmvae_zero_fills_a_missing_image():
    model = build_model(ModelConfig("jmvae-zero", celeba_modalities(32), latent_dim=4, hidden_dim=16)).eval()
    q = model.posterior(batch(2, 32), ("attributes",))
    assert q.batch_shape == (2,) and torch.isfinite(q.mean).all()


def test_the_papers_celeba_architecture():
    config = paper_model_config("jmvae-kl", celeba_modalities())
    assert (config.latent_dim, config.hidden_dim, config.alpha) == (128, 1024, 0.1)
    model = build_model(config)
    joint = model.joint_encoder
    assert joint.trunk[0].in_features == 4096 + 512 and joint.trunk[0].out_features == 1024
    assert [m.out_features for m in joint.branches["attributes"] if isinstance(m, nn.Linear)] == [512, 512]
    assert model.unimodal_encoders["image"].body[1].out_features == 1024
    assert model.unimodal_encoders["attributes"].body[0].out_features == 512
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert paper_model_config("vae", celeba_modalities()).alpha == 0.0
    train = paper_train_config(max_steps=3)
    assert (train.lr, train.betas, train.warmup_epochs, train.epochs, train.max_steps) == (1e-4, (0.5, 0.999), 20.0, 100, 3)
    n_params = sum(p.numel() for p in model.parameters())
    assert 10e6 < n_params < 40e6, n_params
    assert math.prod(model.config.modalities[0].shape) == 12288
