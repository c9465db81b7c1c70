"""The GAN variants (jmvae.adversarial): where each loss's gradient goes, its value at a
known discriminator, a discriminator that learns, training, resume and the command line."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from jmvae import ModelConfig, build_model, train
from jmvae.adversarial import Discriminator, gan_losses
from jmvae.config import Modality, model_kind
from jmvae.training import make_optimizer

from helpers import tiny_config, tiny_train
from helpers import jmvae


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is faster and steadier


def gan_model(data, kind: str = "jmvae-kl"):
    torch.manual_seed(0)
    config = dataclasses.replace(tiny_config(data, kind, latent=4, hidden=32), adversarial=True)
    return build_model(config)


def batch_of(data, n: int = 16) -> dict[str, torch.Tensor]:
    return {k: v[:n] for k, v in data.test.items()}


def grads(module) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


@pytest.mark.parametrize("kind", ["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"])
def test_generator_loss_trains_only_the_image_decoder_and_discriminator_loss_only_the_discriminator(digits, kind):
    model = gan_model(digits, kind)
    batch = batch_of(digits)
    terms = model.loss(batch, noise=torch.randn(16, 4))
    generator, discriminator, _ = gan_losses(model, batch, terms.z, torch.randn(16, 4))
    generator.backward()
    image_decoder = model.decoders["image"]
    assert all(grads(image_decoder))
    others = [p for name, p in model.named_parameters() if not name.startswith("decoders.image.")]
    assert all(p.grad is None for p in others), "the generator loss reached an encoder or the discriminator"
    model.zero_grad(set_to_none=True)
    discriminator.backward()
    assert all(grads(model.discriminator))
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("discriminator."))


def test_losses_at_a_discriminator_that_cannot_tell(digits):
    """D = 1/2 everywhere: L_G = 2 log 2 and L_D = 3 log 2 (one real term, two fake ones)."""
    model = gan_model(digits)
    last = model.discriminator.head[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    batch = batch_of(digits)
    terms = model.loss(batch, noise=torch.randn(16, 4))
    generator, discriminator, d_real = gan_losses(model, batch, terms.z, torch.randn(16, 4))
    assert generator.item() == pytest.approx(2 * math.log(2))
    assert discriminator.item() == pytest.approx(3 * math.log(2))
    assert d_real.item() == pytest.approx(0.5)
    smoothed = gan_losses(model, batch, terms.z, torch.randn(16, 4), real_label=0.9)[1]
    assert smoothed.item() == pytest.approx(3 * math.log(2))  # at logit 0 the target does not matter


def test_the_discriminator_learns_to_tell_data_from_an_untrained_decoder(digits):
    """Real images are the grey training intensities (as the training loop gives them), so D
    cannot win by spotting exact 0/1 pixels."""
    model = gan_model(digits)
    optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=3e-3)
    batch = {k: v[:64] for k, v in digits.train.items()}
    real = batch["image"]
    batch = {**batch, "image": (real > 0.5).float()}
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        terms = model.loss(batch, noise=torch.randn(64, 4, generator=generator))
        _, discriminator, d_real = gan_losses(model, batch, terms.z, torch.randn(64, 4, generator=generator), real=real)
        optimizer.zero_grad()
        discriminator.backward()
        optimizer.step()
        losses.append(discriminator.item())
    assert losses[-1] < 0.2 * losses[0] and d_real > 0.9


@pytest.mark.parametrize("shape, network", [((3, 64, 64), "conv"), ((784,), "mlp"), ((1, 28, 28), "mlp")])
def test_discriminator_shapes(shape, network):
    modality = Modality("image", shape, "gaussian", network=network)
    logits = Discriminator(modality, hidden_dim=32)(torch.randn(5, *shape))
    assert logits.shape == (5,)


def test_optimizer_has_a_second_group_for_the_discriminator(digits):
    model = gan_model(digits)
    optimizer = make_optimizer(model, tiny_train())
    groups = [set(map(id, g["params"])) for g in optimizer.param_groups]
    assert len(groups) == 2 and groups[1] == set(map(id, model.discriminator.parameters()))
    assert groups[0] | groups[1] == set(map(id, model.parameters())) and not groups[0] & groups[1]


def test_gan_training_logs_its_terms_and_resumes_bit_for_bit(digits, tmp_path):
    config = dataclasses.replace(tiny_config(digits), adversarial=True)
    whole = train(config, tiny_train(epochs=2), digits, tmp_path / "whole", progress=False)
    train(config, tiny_train(epochs=2, max_steps=30), digits, tmp_path / "split", progress=False)
    resumed = train(config, tiny_train(epochs=2), digits, tmp_path / "split", resume=True, progress=False)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert any(k.startswith("discriminator.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"gan/generator", "gan/discriminator", "gan/d_real"} <= set(record)
    assert all(math.isfinite(v) for v in record.values())


def test_model_names_and_configs():
    assert model_kind("jmvae-gan") == ("jmvae-kl", True) and model_kind("cvae") == ("cvae", False)
    with pytest.raises(ValueError, match="unknown model"):
        model_kind("gan")
    image, label = Modality("image", (4,), "bernoulli"), Modality("label", (3,), "categorical")
    assert ModelConfig("jmvae-kl", (image, label), alpha=0.1, adversarial=True).display_name == "jmvae-gan(alpha=0.1)"
    assert ModelConfig("cmma", (image, label), adversarial=True).display_name == "cmma-gan"
    with pytest.raises(ValueError, match="must be an image"):
        ModelConfig("jmvae-kl", (label, image), adversarial=True)
    with pytest.raises(ValueError, match="gan_weight"):
        ModelConfig("vae", (image,), adversarial=True, gan_weight=-1)
    old = ModelConfig("vae", (image,)).to_dict()
    del old["adversarial"], old["gan_weight"]  # a config written before the GAN variants
    assert ModelConfig.from_dict(old).adversarial is False


@pytest.mark.parametrize("name", ["vae-gan", "cvae-gan", "cmma-gan", "jmvae-gan"])
def test_cli_trains_each_gan_variant(tmp_path, name):
    done = jmvae("train", "--model", name, "--max-steps", "3", "--latent-dim", "4", "--hidden-dim", "16",
                 "--no-progress", "--out", str(tmp_path / name))
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / name / "config.json").read_text())
    assert saved["model"]["adversarial"] is True and saved["train"]["betas"] == [0.5, 0.999]
    assert f"trained {name}" in done.stderr


def test_cli_gan_flags_reach_the_configs(tmp_path):
    done = jmvae("train", "--model", "cmma-gan", "--gan-weight", "0.5", "--gan-real-label", "0.9", "--max-steps", "1",
                 "--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["gan_weight"] == 0.5 and saved["train"]["gan_real_label"] == 0.9


def test_cli_refuses_bad_gan_flags(tmp_path):
    done = jmvae("train", "--model", "vae-gan", "--alpha", "0.1", "--out", str(tmp_path / "a"))
    assert done.returncode == 2 and "--alpha applies to" in done.stderr
    done = jmvae("train", "--model", "jmvae-gan", "--gan-real-label", "0.3", "--out", str(tmp_path / "b"))
    assert done.returncode == 2 and "--gan-real-label" in done.stderr and "\n" == done.stderr[-1:]
    assert not (tmp_path / "b" / "config.json").exists()
    done = jmvae("train", "--model", "jmvae-kl", "--gan-weight", "2", "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and "apply to the GAN variants" in done.stderr


def test_gan_passes_keep_the_decoders_batch_norm_statistics_and_backpropagate():
    """The conv decoder's running statistics are those of the bound's pass only; the extra GAN
    passes (reconstructions, prior draws) do not move them, and the step still differentiates."""
    image = Modality("image", (3, 16, 16), "gaussian")
    attributes = Modality("attributes", (5,), "bernoulli")
    torch.manual_seed(0)
    model = build_model(ModelConfig("jmvae-kl", (image, attributes), latent_dim=4, hidden_dim=16, alpha=0.1, adversarial=True))
    batch = {"image": torch.randn(6, 3, 16, 16), "attributes": torch.randint(0, 2, (6, 5)).float()}
    terms = model.loss(batch, noise=torch.randn(6, 4))
    before = {k: v.clone() for k, v in model.decoders["image"].state_dict().items() if "running" in k or "num_batches" in k}
    generator, discriminator, _ = gan_losses(model, batch, terms.z, torch.randn(6, 4))
    (terms.total + generator + discriminator).backward()
    after = model.decoders["image"].state_dict()
    assert before and all(torch.equal(v, after[k]) for k, v in before.items())
    assert all(p.grad is not None for p in model.discriminator.parameters())
