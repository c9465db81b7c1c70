"""``jmvae.evaluation``: what the evaluation JSON adds to the estimators' cells."""

from __future__ import annotations

import pytest
import torch

from jmvae import ModelConfig, build_model
from jmvae.config import EvalConfig
from jmvae.data import image_label_modalities, load_dataset
from jmvae.evaluation import evaluate


@pytest.mark.parametrize("kind, inputs", [("jmvae-kl", {"image+label", "image", "label"}), ("vae", {"image"}),
                                          ("cvae", {"image+label"}), ("jmvae-zero", {"image+label", "image", "label"})])
def test_active_units_count_the_latent_dimensions_whose_mean_moves_with_the_data(kind, inputs):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind, image_label_modalities(8, 8, 10), latent_dim=6, hidden_dim=32,
                                    alpha=0.1 if kind == "jmvae-kl" else 0.0))
    if kind.startswith("jmvae"):  # JMVAE-zero answers every input with its joint encoder
        heads = {"image+label": model.joint_encoder.head, **{n: e.head for n, e in model.unimodal_encoders.items()}}
    else:
        heads = {"image" if kind == "vae" else "image+label": model.encoder.head}
    silenced = {"image+label": 2, "image": 1, "label": 3}
    with torch.no_grad():
        for name, head in heads.items():
            mean_rows = head.linear.weight[:6]  # the mean's rows; the variance's follow
            mean_rows *= 100  # every unit's mean moves with the input...
            mean_rows[: silenced[name]] = 0  # ...except these, whose mean is their bias alone
    test = load_dataset("digits").test
    result = evaluate(model, test, EvalConfig(k=2, n_prior=2, limit=200))
    assert set(result["active_units"]) == inputs
    for name, active in result["active_units"].items():
        expected = 6 - silenced[name] if name in heads else 6 - silenced["image+label"]  # JMVAE-zero: one encoder
        assert active == expected, name
