"""Predicting w from an image file and editing an image through w (jmvae.editing, `jmvae predict`,
`jmvae edit`), on scikit-learn's real 8x8 digits and on CelebA-format faces the tests make."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from jmvae import Modality, ModelConfig, TrainConfig, build_model, load_dataset, train
from jmvae.coherence import fit_judge
from jmvae.conditions import Vocabulary
from jmvae.editing import Prediction, apply_changes, definite, edit_image, label_edit_success, predict_w_from_image
from jmvae.errors import JMVAEError

from helpers import tiny_config
from test_celeba import make_celeba
from helpers import jmvae


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is faster and steadier


@pytest.fixture(scope="module")
def digit_run(digits, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("edit") / "run"
    result = train(tiny_config(digits, "jmvae-kl", alpha=0.1, latent=8, hidden=64),
                   TrainConfig(epochs=20, lr=3e-3, batch_size=50, seed=0), digits, run_dir, progress=False,
                   data_info=digits.run_info())
    return run_dir, result.model


def digit_png(pixels: torch.Tensor, path) -> None:
    """An 8x8 binary digit as a 64x64 PNG, light on dark like the data."""
    Image.fromarray((pixels.numpy() * 255).astype(np.uint8), mode="L").resize((64, 64), Image.NEAREST).save(path)


def test_predict_from_png_files_names_the_digits(digit_run, digits, tmp_path):
    run_dir, _ = digit_run
    right = 0
    for i in range(10):
        path = tmp_path / f"{i}.png"
        digit_png(digits.test["image"][i], path)
        done = jmvae("predict", str(run_dir), "--image", str(path), "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        probabilities = result["probabilities"]
        assert result["kind"] == "classes" and sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
        right += max(probabilities, key=probabilities.get) == str(int(digits.test["label"][i]))
    assert right >= 8  # the model names 90% of the test digits given as tensors


def test_shift_edits_change_the_digit_and_joint_edits_barely_do(digit_run, digits):
    _, model = digit_run
    judge = fit_judge(digits.train["image"], digits.train["label"], digits.test["image"], digits.test["label"], epochs=30, hidden=64)
    images = digits.test["image"][:200]
    shift = label_edit_success(model, judge, images, "shift")
    joint = label_edit_success(model, judge, images, "joint")
    assert shift > 0.4 and shift > joint + 0.2  # chance is 0.1


def test_edit_writes_the_image_its_reconstruction_and_each_edit(digit_run, digits, tmp_path):
    run_dir, _ = digit_run
    digit_png(digits.test["image"][0], tmp_path / "d.png")
    done = jmvae("edit", str(run_dir), "--image", str(tmp_path / "d.png"), "--set", "label=3", "--set", "7",
                 "--out", str(tmp_path / "e.png"), "--scale", "1")
    assert done.returncode == 0, done.stderr
    width, height = Image.open(tmp_path / "e.png").size
    assert width >= 4 * 9 + 1 and height > 9 + 1  # four 8x8 images in columns at least as wide, under their titles
    _, model = digit_run
    image = digits.test["image"][:1]
    _, reconstruction, (edited,) = edit_image(model, image, [3], [str(i) for i in range(10)])
    assert (edited - reconstruction).abs().max() > 0.1  # the edit changes the picture


def test_changes_on_attributes_of_both_likelihoods():
    names = ("Male", "Smiling", "Young")
    for likelihood, off in (("bernoulli", 0.0), ("gaussian", -1.0)):
        extra = {"mean_activation": "tanh"} if likelihood == "gaussian" else {}
        attrs = Modality("attributes", (3,), likelihood, **extra)
        model = build_model(ModelConfig("jmvae-kl", (Modality("image", (4,), "gaussian"), attrs), 2, 8, alpha=0.1))
        vocabulary = Vocabulary(model.config, features={"attributes": names})
        w = definite(model, Prediction(names, torch.tensor([0.9, 0.2, 0.6]), "attributes"))
        torch.testing.assert_close(w, torch.tensor([[1.0, off, 1.0]]))
        changes = vocabulary.parse("Smiling=1, Male=0", "--set")["attributes"]
        assert changes == {"Smiling": 1, "Male": 0}
        torch.testing.assert_close(apply_changes(model, w, changes, names), torch.tensor([[off, 1.0, 1.0]]))
        for bad, message in (("Smile=1", "unknown attribute"), ("Smiling=yes", "expected ATTRIBUTE=1"), (" , ", "empty"),
                             ("Smiling=1,Smiling=0", "appears twice")):
            with pytest.raises(JMVAEError, match=message):
                vocabulary.parse(bad, "--set")


def test_label_changes_take_an_index_or_a_class_name_under_the_labels_own_key():
    image, label = Modality("image", (4,), "bernoulli"), Modality("label", (3,), "categorical")
    vocabulary = Vocabulary(ModelConfig("jmvae-kl", (image, label), 2, 8, alpha=0.1), ("Shirt", "Sneaker", "Bag"))
    assert vocabulary.parse("label=Sneaker", "--set") == vocabulary.parse("1", "--set") == {"label": 1}
    assert vocabulary.parse("label=2", "--set") == {"label": 2}
    for bad, message in (("Smiling=1", "this run's label is 'label'"), ("label=7", "'7' is not a class; give an index 0..2 or a class name"),
                         ("label=1,label=2", "appears twice")):
        with pytest.raises(JMVAEError, match=message):
            vocabulary.parse(bad, "--set")


def test_tanh_attribute_probability_is_the_normal_tail(digits):
    """P(w_j > 0 | z) = Phi(mean_j / scale_j) for the paper's tanh-Gaussian attributes."""
    attrs = Modality("attributes", (3,), "gaussian", scale=0.5, mean_activation="tanh")
    model = build_model(ModelConfig("jmvae-kl", (Modality("image", (4,), "gaussian"), attrs), 2, 8, alpha=0.1)).eval()
    last = model.decoders["attributes"][-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.0, 10.0, -0.5]))
    p = predict_w_from_image(model, torch.randn(1, 4), ("a", "b", "c")).probabilities
    expected = torch.distributions.Normal(0, 1).cdf(torch.tanh(torch.tensor([0.0, 10.0, -0.5])) / 0.5)
    torch.testing.assert_close(p, expected)


def test_faces_are_read_through_the_runs_crop_and_standardization(tmp_path):
    folder, _ = make_celeba(tmp_path / "data", n=6, partition=[0, 0, 0, 1, 2, 2])
    run = tmp_path / "run"
    done = jmvae("train", "--data", "celeba", "--data-dir", str(tmp_path / "data"), "--max-steps", "1", "--batch-size", "2",
                 "--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--out", str(run))
    assert done.returncode == 0, done.stderr
    face = next((folder / "img_align_celeba").glob("*.jpg"))
    done = jmvae("predict", str(run), "--image", str(face), "--json")
    assert done.returncode == 0, done.stderr
    probabilities = json.loads(done.stdout)["probabilities"]
    assert len(probabilities) == 40 and all(0 <= p <= 1 for p in probabilities.values())
    Image.open(face).resize((100, 80)).save(tmp_path / "other.png")  # not an aligned face
    done = jmvae("edit", str(run), "--image", str(tmp_path / "other.png"), "--set", "Smiling=1,Male=0",
                 "--out", str(tmp_path / "edit.png"))
    assert done.returncode == 0, done.stderr
    assert "centre square 80x80 used" in done.stderr
    assert Image.open(tmp_path / "edit.png").mode == "RGB"
    Image.open(face).convert("L").save(tmp_path / "gray.png")
    done = jmvae("predict", str(run), "--image", str(tmp_path / "gray.png"))
    assert done.returncode == 0 and "converted from mode L to RGB" in done.stderr


def test_an_aligned_face_file_is_prepared_exactly_like_its_cached_training_row(tmp_path):
    from jmvae.imageio import face_tensor

    make_celeba(tmp_path / "data", n=6, partition=[0, 0, 0, 1, 2, 2])
    data = load_dataset("celeba", tmp_path / "data", cache_dir=tmp_path / "cache")
    files = sorted((tmp_path / "data" / "celeba" / "img_align_celeba").glob("*.jpg"))
    for row, path in enumerate(files[:4]):  # rows 0-3: the training split (train + valid), in file order
        prepared, notes = face_tensor(Image.open(path), (3, 64, 64), data.options, data.standardization["image"])
        assert notes == []
        torch.testing.assert_close(prepared[0], data.train["image"][row])


def test_bad_input_gets_one_line_and_exit_2(digit_run, tmp_path):
    run_dir, _ = digit_run
    (tmp_path / "not.png").write_bytes(b"this is not an image")
    for args, message in (
        (["predict", str(run_dir), "--image", str(tmp_path / "missing.png")], "no such image file"),
        (["predict", str(run_dir), "--image", str(tmp_path / "not.png")], "not an image that can be read"),
        (["edit", str(run_dir), "--image", str(tmp_path / "not.png"), "--set", "label=11", "--out", str(tmp_path / "x.png")],
         "is not a class"),
    ):
        done = jmvae(*args)
        assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "x.png").exists()


def test_models_without_p_w_given_z_are_refused(digits, tmp_path):
    run = tmp_path / "cvae"
    train(tiny_config(digits, "cvae"), TrainConfig(max_steps=1), digits, run, progress=False, data_info=digits.run_info())
    digit_png(digits.test["image"][0], tmp_path / "d.png")
    done = jmvae("predict", str(run), "--image", str(tmp_path / "d.png"))
    assert done.returncode == 2 and "cannot predict or edit" in done.stderr


def test_plot_draws_the_attribute_figures_for_faces(tmp_path):
    from jmvae.plots import latent_colours

    make_celeba(tmp_path / "data", n=8, partition=[0, 0, 0, 0, 1, 2, 2, 2])
    expected = {"jmvae-gan": {"latent.png", "faces_per_attribute.png", "attribute_editing.png", "reconstructions.png", "curves.png"},
                "cmma": {"latent.png", "faces_per_attribute.png", "reconstructions.png", "curves.png"},
                "vae-gan": {"latent.png", "reconstructions.png", "curves.png"}}  # the VAE ignores the attributes
    for model, figures in expected.items():
        run = tmp_path / model
        done = jmvae("train", "--data", "celeba", "--data-dir", str(tmp_path / "data"), "--model", model, "--epochs", "1",
                     "--batch-size", "2", "--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--out", str(run))
        assert done.returncode == 0, done.stderr
        done = jmvae("plot", str(run), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / model / "figures"))
        assert done.returncode == 0, done.stderr
        assert {p.name for p in (tmp_path / model / "figures").glob("*.png")} == figures, model
    face = next((tmp_path / "data" / "celeba" / "img_align_celeba").glob("*.jpg"))
    done = jmvae("predict", str(tmp_path / "jmvae-gan"), "--image", str(face), "--top", "1")
    assert done.returncode == 0 and "from jmvae-gan(alpha=0.1)" in done.stdout, done.stdout + done.stderr  # the run's name
    data = load_dataset("celeba", tmp_path / "data", cache_dir=tmp_path / "cache")
    labels, classes = latent_colours(data, 3)
    male = data.feature_names["attributes"].index("Male")
    assert classes == ("not Male", "Male")
    assert labels.tolist() == (data.test["attributes"][:3, male] > 0.5).long().tolist()
