"""The GAN variants (jmvae.adversarial): where each loss's gradient goes, its value at a
known discriminator, a discriminator that learns, training, resume and the command line."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from jmvae import ModelConfig, build_model, train
from jmvae.adversarial import AdversarialStep, Discriminator, gan_losses
from jmvae.checkpoint import RunConfig, load_checkpoint, latest_checkpoint
from jmvae.config import AdversarialConfig, Modality, model_kind
from jmvae.runs import load_run
from jmvae.training.optim import make_optimizer

from helpers import tiny_config, tiny_train
from helpers import jmvae


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is faster and steadier


def gan_model(data, kind: str = "jmvae-kl") -> tuple[torch.nn.Module, AdversarialStep]:
    """A model and the GAN step that owns its discriminator."""
    torch.manual_seed(0)
    model = build_model(tiny_config(data, kind, latent=4, hidden=32))
    return model, AdversarialStep(model, AdversarialConfig())


def sample(model, batch, noise):
    """The bound's terms and its posterior sample z, as the GAN step takes them."""
    terms, posterior = model.bound(batch, noise=noise)
    return terms, (posterior.base_dist.loc + posterior.base_dist.scale * noise).detach()


def batch_of(data, n: int = 16) -> dict[str, torch.Tensor]:
    return {k: v[:n] for k, v in data.test.items()}


def grads(module) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


@pytest.mark.parametrize("kind", ["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"])
def test_generator_loss_trains_only_the_image_decoder_and_discriminator_loss_only_the_discriminator(digits, kind):
    model, step = gan_model(digits, kind)
    batch = batch_of(digits)
    _, z = sample(model, batch, torch.randn(16, 4))
    generator, discriminator, _ = gan_losses(model, step.discriminator, batch, z, torch.randn(16, 4))
    generator.backward()
    image_decoder = model.decoders["image"]
    assert all(grads(image_decoder))
    others = [p for name, p in model.named_parameters() if not name.startswith("decoders.image.")]
    assert all(p.grad is None for p in others), "the generator loss reached an encoder"
    assert all(p.grad is None for p in step.discriminator.parameters()), "the generator loss reached the discriminator"
    model.zero_grad(set_to_none=True)
    discriminator.backward()
    assert all(grads(step.discriminator))
    assert all(p.grad is None for p in model.parameters())


def test_losses_at_a_discriminator_that_cannot_tell(digits):
    """D = 1/2 everywhere: L_G = 2 log 2 and L_D = 3 log 2 (one real term, two fake ones)."""
    model, step = gan_model(digits)
    last = step.discriminator.head[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    batch = batch_of(digits)
    _, z = sample(model, batch, torch.randn(16, 4))
    generator, discriminator, d_real = gan_losses(model, step.discriminator, batch, z, torch.randn(16, 4))
    assert generator.item() == pytest.approx(2 * math.log(2))
    assert discriminator.item() == pytest.approx(3 * math.log(2))
    assert d_real.item() == pytest.approx(0.5)
    smoothed = gan_losses(model, step.discriminator, batch, z, torch.randn(16, 4), real_label=0.9)[1]
    assert smoothed.item() == pytest.approx(3 * math.log(2))  # at logit 0 the target does not matter


def test_the_discriminator_learns_to_tell_data_from_an_untrained_decoder(digits):
    """Real images are the grey training intensities (as the training loop gives them), so D
    cannot win by spotting exact 0/1 pixels."""
    model, step = gan_model(digits)
    optimizer = torch.optim.Adam(step.discriminator.parameters(), lr=3e-3)
    batch = {k: v[:64] for k, v in digits.train.items()}
    real = batch["image"]
    batch = {**batch, "image": (real > 0.5).float()}
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        _, z = sample(model, batch, torch.randn(64, 4, generator=generator))
        _, discriminator, d_real = gan_losses(model, step.discriminator, batch, z, torch.randn(64, 4, generator=generator),
                                              real=real)
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


def test_optimizer_has_a_second_group_for_the_discriminator_and_the_gan_betas(digits):
    """The step's groups: the model's, then the discriminator's, both with beta1 = 0.5 whatever
    TrainConfig's betas are, so train() from Python gives the recipe jmvae train gives."""
    model, step = gan_model(digits)
    optimizer = make_optimizer(step.parameter_groups(), tiny_train())
    groups = [set(map(id, g["params"])) for g in optimizer.param_groups]
    assert len(groups) == 2 and groups[1] == set(map(id, step.discriminator.parameters()))
    assert groups[0] == set(map(id, model.parameters()))
    assert [g["betas"] for g in optimizer.param_groups] == [(0.5, 0.999)] * 2
    assert tiny_train().betas == (0.9, 0.999)


def test_gan_training_logs_its_terms_and_resumes_bit_for_bit(digits, tmp_path):
    config, game = tiny_config(digits), AdversarialConfig()
    whole = train(config, tiny_train(epochs=2), digits, tmp_path / "whole", progress=False, adversarial=game)
    train(config, tiny_train(epochs=2, max_steps=30), digits, tmp_path / "split", progress=False, adversarial=game)
    resumed = train(config, tiny_train(epochs=2), digits, tmp_path / "split", resume=True, progress=False, adversarial=game)
    for a, b in [(whole.model.state_dict(), resumed.model.state_dict()),
                 (whole.trained_beside["discriminator"].state_dict(), resumed.trained_beside["discriminator"].state_dict())]:
        assert a and all(torch.equal(a[k], b[k]) for k in a)
    weights, _, _ = load_checkpoint(latest_checkpoint(tmp_path / "whole"))
    assert any(k.startswith("discriminator.") for k in weights)  # one weights file, as before the redesign
    record = json.loads((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"gan/generator", "gan/discriminator", "gan/d_real"} <= set(record)
    assert all(math.isfinite(v) for v in record.values())
    assert not hasattr(whole.model, "discriminator")


def test_a_gan_run_folder_written_before_the_adversarial_config_loads_and_resumes(digits, tmp_path):
    """Old config.json: the game in the model (adversarial, gan_weight) and the training settings
    (gan_real_label, beta1 0.5 in betas). It reads as an AdversarialConfig, evaluates and resumes."""
    config, game = tiny_config(digits), AdversarialConfig(weight=0.5, real_label=0.9)
    betas = dataclasses.replace(tiny_train(epochs=2, max_steps=20), betas=(0.5, 0.999))
    train(config, betas, digits, tmp_path / "run", progress=False, adversarial=game)
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    game_saved = saved.pop("adversarial")
    saved["model"].update(adversarial=True, gan_weight=game_saved["weight"])
    saved["train"]["gan_real_label"] = game_saved["real_label"]
    path.write_text(json.dumps(saved))
    run = load_run(tmp_path / "run")
    assert run.config.adversarial == game and run.display_name == "jmvae-gan(alpha=0.1)"
    resumed = train(config, dataclasses.replace(betas, max_steps=None), digits, tmp_path / "run", resume=True,
                    progress=False, adversarial=game)
    assert resumed.step == 2 * -(-len(digits.train["image"]) // betas.batch_size)  # two epochs, on from step 20
    plain = RunConfig.from_dict({**saved, "model": {**saved["model"], "adversarial": False}}, path)
    assert plain.adversarial is None


def test_model_names_and_configs():
    assert model_kind("jmvae-gan") == ("jmvae-kl", True) and model_kind("cvae") == ("cvae", False)
    with pytest.raises(ValueError, match="unknown model"):
        model_kind("gan")
    image, label = Modality("image", (4,), "bernoulli"), Modality("label", (3,), "categorical")
    game = AdversarialConfig()
    assert game.display_name(ModelConfig("jmvae-kl", (image, label), alpha=0.1)) == "jmvae-gan(alpha=0.1)"
    assert game.display_name(ModelConfig("cmma", (image, label))) == "cmma-gan"
    with pytest.raises(ValueError, match="must be an image"):
        game.check(ModelConfig("jmvae-kl", (label, image)))
    with pytest.raises(ValueError, match="GAN weight"):
        AdversarialConfig(weight=-1)
    with pytest.raises(ValueError, match="label smoothing"):
        AdversarialConfig(real_label=0.2)
    assert "adversarial" not in ModelConfig("vae", (image,)).to_dict()


@pytest.mark.parametrize("name", ["vae-gan", "cvae-gan", "cmma-gan", "jmvae-gan"])
def test_cli_trains_each_gan_variant(tmp_path, name):
    done = jmvae("train", "--model", name, "--max-steps", "3", "--latent-dim", "4", "--hidden-dim", "16",
                 "--no-progress", "--out", str(tmp_path / name))
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / name / "config.json").read_text())
    assert saved["adversarial"] == {"weight": 1.0, "real_label": 1.0, "betas": [0.5, 0.999]}
    assert f"trained {name}" in done.stderr


def test_cli_gan_flags_reach_the_configs(tmp_path):
    done = jmvae("train", "--model", "cmma-gan", "--gan-weight", "0.5", "--gan-real-label", "0.9", "--max-steps", "1",
                 "--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["adversarial"]["weight"] == 0.5 and saved["adversarial"]["real_label"] == 0.9


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
    model = build_model(ModelConfig("jmvae-kl", (image, attributes), latent_dim=4, hidden_dim=16, alpha=0.1))
    discriminator_net = AdversarialStep(model, AdversarialConfig()).discriminator
    batch = {"image": torch.randn(6, 3, 16, 16), "attributes": torch.randint(0, 2, (6, 5)).float()}
    terms, z = sample(model, batch, torch.randn(6, 4))
    before = {k: v.clone() for k, v in model.decoders["image"].state_dict().items() if "running" in k or "num_batches" in k}
    generator, discriminator, _ = gan_losses(model, discriminator_net, batch, z, torch.randn(6, 4))
    (terms.total + generator + discriminator).backward()
    after = model.decoders["image"].state_dict()
    assert before and all(torch.equal(v, after[k]) for k, v in before.items())
    assert all(p.grad is not None for p in discriminator_net.parameters())
