"""``jmvae.evaluation``: what the evaluation adds to the estimators' cells, and its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jmvae import ModelConfig, build_model
from jmvae.config import EvalConfig
from jmvae.data import image_label_modalities, load_dataset
from jmvae.evaluation import Cells, TableKeys, evaluate


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
    assert set(result.active_units) == inputs
    for name, active in result.active_units.items():
        expected = 6 - silenced[name] if name in heads else 6 - silenced["image+label"]  # JMVAE-zero: one encoder
        assert active == expected, name


def test_the_evaluation_json_has_the_contracted_keys_and_its_cells_read_back():
    torch.manual_seed(0)
    model = build_model(ModelConfig("jmvae-kl", image_label_modalities(8, 8, 10), latent_dim=4, hidden_dim=16, alpha=0.1))
    result = evaluate(model, load_dataset("digits").test, EvalConfig(k=2, n_prior=3, n_prior_check=4, limit=20))
    out = json.loads(result.to_json())
    assert list(out) == ["model", "k", "n_prior", "n_test", "log_likelihood", "stderr", "accuracy", "log_p_w",
                         "n_prior_check", "active_units", "eval_seconds"]
    assert list(out["log_likelihood"]) == ["image", "image|label", "joint"] and list(out["accuracy"]) == ["label|image"]
    assert out["log_likelihood"]["image|label"]["single"] == result.log_likelihood.x_given_w.single
    assert list(out["n_prior_check"]) == ["n_prior", "log_p_w", "image|label"]
    assert Cells.from_dict(out["log_likelihood"]) == result.log_likelihood
    assert Cells.from_dict(out["stderr"]) == result.stderr and TableKeys.of(out["log_likelihood"]) == result.keys


def test_every_committed_table_row_reads_as_cells():
    for path in sorted((Path(__file__).resolve().parents[1] / "results").glob("*/table1.json")):
        for entry in json.loads(path.read_text())["models"].values():
            for row in [entry, *entry.get("per_seed", {}).values()]:
                table = row["log_likelihood"]
                cells = Cells.from_dict(table)
                assert cells.to_dict(TableKeys.of(table)) == table, path
                assert cells.x_given_w.multiple == table["image|label"]["multiple"], path
