"""``mnist-fashion``: MNIST digit, label and a Fashion-MNIST image of the same class
(``jmvae.data.mnist_fashion``), and a tiny three-modality JMVAE-kl trained on a slice of it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from helpers import tiny_train
from jmvae import ModelConfig, load_dataset, presets, train
from jmvae.coherence import Judge, cross_coherence
from jmvae.data import FASHION_MNIST, MNIST, PairedData
from jmvae.data.mnist import load_idx_dataset
from jmvae.data.mnist_fashion import pair_by_class
from jmvae.data.transforms import binarize_once
from jmvae.estimators import iw_log_likelihoods
from jmvae.subsets import SUBSET_RULES, ExpertMixture, using_rule


@pytest.fixture(scope="module")
def triple(mnist_dir) -> PairedData:
    return load_dataset("mnist-fashion", mnist_dir)


@pytest.fixture(scope="module")
def fashion_arrays(mnist_dir) -> dict[str, np.ndarray]:
    return load_idx_dataset(FASHION_MNIST, mnist_dir)


def test_mnist_fashion_shapes_and_transforms(triple):
    assert [m.name for m in triple.modalities] == ["image", "label", "fashion"]
    assert [m.likelihood for m in triple.modalities] == ["bernoulli", "categorical", "bernoulli"]
    assert triple.binarized_modalities() == ("image", "fashion")
    for split, n in (("train", 60000), ("test", 10000)):
        part = getattr(triple, split)
        assert part["image"].shape == part["fashion"].shape == (n, 28, 28) and part["label"].shape == (n,)
    assert set(triple.test["fashion"].unique().tolist()) == {0.0, 1.0}  # binarised once
    assert triple.train["fashion"].max() == 1.0 and len(triple.train["fashion"].unique()) > 2  # intensities


def test_every_fashion_image_is_of_the_datum_class_and_from_its_own_split(triple, mnist_dir, fashion_arrays):
    digits = load_idx_dataset(MNIST, mnist_dir)
    for split, code in (("train", 0), ("test", 1)):
        labels = digits[f"{split}_labels"].astype(np.int64)
        pick = pair_by_class(labels, fashion_arrays[f"{split}_labels"], 0, code)
        assert np.array_equal(fashion_arrays[f"{split}_labels"][pick], labels)  # class == label, every datum
        assert torch.equal(getattr(triple, split)["label"], torch.from_numpy(labels))
        counts = np.bincount(pick, minlength=len(fashion_arrays[f"{split}_labels"]))
        for c in range(10):  # without replacement where the class has enough, else evenly spread
            used = counts[fashion_arrays[f"{split}_labels"] == c]
            n_c = int((labels == c).sum())
            assert used.max() - used.min() <= 1 and (used.max() == 1 if n_c <= len(used) else used.min() >= 1)
    expected = fashion_arrays["train_images"][pair_by_class(digits["train_labels"].astype(np.int64),
                                                            fashion_arrays["train_labels"], 0, 0)[:100]]
    assert torch.equal(triple.train["fashion"][:100], torch.from_numpy(expected.astype(np.float32) / 255.0))
    test_pick = pair_by_class(digits["test_labels"].astype(np.int64), fashion_arrays["test_labels"], 0, 1)
    intensities = torch.from_numpy(fashion_arrays["test_images"][test_pick].astype(np.float32) / 255.0)
    assert torch.equal(triple.test["fashion"], binarize_once(intensities, 1))  # test_seed + 1, not MNIST's seed


def test_pairing_is_reproducible_with_its_seed(triple, mnist_dir, fashion_arrays):
    labels = load_idx_dataset(MNIST, mnist_dir)["test_labels"].astype(np.int64)
    first, again = (pair_by_class(labels, fashion_arrays["test_labels"], 0, 1) for _ in range(2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, pair_by_class(labels, fashion_arrays["test_labels"], 1, 1))  # another seed
    assert not np.array_equal(first, pair_by_class(labels, fashion_arrays["test_labels"], 0, 0))  # another split
    assert triple.options == {}  # the default seed: nothing to remember; another one is a loader option
    with pytest.raises(Exception, match="pairing_seed"):
        load_dataset("mnist-fashion", mnist_dir, crop=1)


def test_tiny_three_modality_jmvae_kl_trains_and_infers_every_subset_with_every_rule(triple, one_thread):
    small = dataclasses.replace(triple, train={k: v[:256] for k, v in triple.train.items()})
    recipe, _ = presets.model_config("mnist-fashion", "jmvae-kl", triple.modalities, alpha=0.1)
    assert len(recipe.modalities) == 3 and recipe.hidden_dim == 512 and recipe.latent_dim == 64
    config = ModelConfig("jmvae-kl", triple.modalities, latent_dim=4, hidden_dim=32, alpha=0.1)
    result = train(config, tiny_train(max_steps=4), small, progress=False)
    model = result.model.eval()
    assert len(model.joint_encoder.branches) == 3
    batch = {k: v[:8] for k, v in triple.test.items()}
    names = config.names
    subsets = [(a,) for a in names] + [(a, b) for i, a in enumerate(names) for b in names[i + 1:]] + [names]
    for rule in SUBSET_RULES:
        with using_rule(model, rule):
            for given in subsets:
                posterior = model.posterior(batch, given)
                assert posterior.batch_shape == (8,) and posterior.event_shape == (4,)
                assert isinstance(posterior, ExpertMixture) == (rule == "mixture" and len(given) == 2)
                bound = iw_log_likelihoods(model, batch, [names], posterior, k=3,
                                           generator=torch.Generator().manual_seed(0))[names]
                assert torch.isfinite(bound).all()
            judge = Judge(torch.nn.Linear(784, 10), 0.0, binary=True)
            scores = cross_coherence(model, batch, batch["label"], ("image", "label"), ("fashion",), {"fashion": judge})
            assert 0.0 <= scores["fashion"] <= 1.0


def test_train_takes_the_subset_rule_for_three_modalities_and_refuses_it_for_two(mnist_dir, tmp_path, capsys):
    import json

    from jmvae.cli import main

    out = tmp_path / "triple"
    assert main(["train", "--data", "mnist-fashion", "--data-dir", str(mnist_dir), "--subset-inference", "mixture",
                 "--max-steps", "2", "--out", str(out), "--threads", "1", "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["subset_inference"] == "mixture"
    default = tmp_path / "default"
    assert main(["train", "--data", "mnist-fashion", "--data-dir", str(mnist_dir), "--max-steps", "2",
                 "--out", str(default), "--threads", "1", "--no-progress"]) == 0
    assert json.loads((default / "config.json").read_text())["model"]["subset_inference"] == "prior-product"
    capsys.readouterr()
    assert main(["train", "--data", "digits", "--subset-inference", "product", "--out", str(tmp_path / "d")]) == 2
    assert "three or more modalities" in capsys.readouterr().err and not (tmp_path / "d").exists()
