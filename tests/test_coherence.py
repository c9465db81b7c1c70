"""The coherence of generation from labels (jmvae.coherence) on scikit-learn's real 8x8 digits."""

from __future__ import annotations

import pytest
from sklearn.metrics import balanced_accuracy_score

from jmvae.coherence import coherence, fit_judge, images_from_labels, label_coherence
from jmvae.config import TrainConfig
from jmvae.training import train
from helpers import tiny_config


@pytest.fixture(scope="module")
def judge(digits):
    return fit_judge(digits.train["image"], digits.train["label"], digits.test["image"], digits.test["label"], epochs=30, hidden=64)


@pytest.fixture(scope="module")
def binary_judge(digits):
    return fit_judge(digits.train["image"], digits.train["label"], digits.test["image"], digits.test["label"], epochs=30,
                     hidden=64, binary=True)


def test_judge_is_accurate_on_real_digits(judge):
    assert judge.test_accuracy > 0.8  # on test digits binarized once: harder than the intensities it was fitted on


def test_a_binary_judge_sees_binary_images_everywhere_and_says_so(binary_judge, judge, digits, tmp_path):
    """Fitted on re-binarised training images and tested on the binarised test set, it reports an
    accuracy for the inputs it judges: binary draws of p(x | z), not grey-level means."""
    assert set(digits.test["image"].unique().tolist()) == {0.0, 1.0}
    assert binary_judge.binary and "binary" in binary_judge.judged_on and not judge.binary
    assert binary_judge.test_accuracy > 0.8
    run = train(tiny_config(digits, "jmvae-kl", alpha=0.1, latent=4, hidden=32), TrainConfig(epochs=1, batch_size=50),
                digits, tmp_path / "run", progress=False)
    drawn = images_from_labels(run.model, "image", "label", 10, 5, seed=0, binary=True)
    assert all(set(images.unique().tolist()) <= {0.0, 1.0} for images in drawn)
    means = images_from_labels(run.model, "image", "label", 10, 5, seed=0)
    assert any(((m > 0) & (m < 1)).any() for m in means)
    expected = coherence(binary_judge, images_from_labels(run.model, "image", "label", 10, 20, seed=1, binary=True))
    assert label_coherence(run.model, binary_judge, "image", "label", 10, per_class=20, seed=1) == expected


def test_coherence_is_the_balanced_accuracy_of_the_judge(judge, digits):
    images, labels = digits.test["image"], digits.test["label"]
    by_class = [images[labels == c] for c in range(10)]
    expected = balanced_accuracy_score(labels.numpy(), judge.classify(images).numpy())
    assert coherence(judge, by_class) == pytest.approx(expected, abs=1e-6)


def test_one_image_for_every_label_scores_chance(judge, digits):
    same = digits.test["image"][:1].expand(50, -1, -1)
    assert coherence(judge, [same] * 10) == pytest.approx(0.1)


def test_trained_jmvae_kl_generates_digits_the_judge_recognises(judge, digits, tmp_path):
    run = train(tiny_config(digits, "jmvae-kl", alpha=0.1, latent=8, hidden=64), TrainConfig(epochs=20, lr=3e-3, batch_size=50, seed=0),
                digits, tmp_path / "run", progress=False)
    value = label_coherence(run.model, judge, "image", "label", n_classes=10, per_class=50, seed=0)
    assert value > 0.4  # chance is 0.1; this run gives 0.70
    assert value == label_coherence(run.model, judge, "image", "label", n_classes=10, per_class=50, seed=0)
