"""CelebA: the official layout read from small fixtures made here and from the real partial set,
clear errors for malformed files and images, the uint8 cache, standardisation, streaming, and a
short training run of a convolutional JMVAE."""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jmvae import DataError, Modality, ModelConfig, TrainConfig, build_model, load_dataset, load_run, train
from jmvae.data import PairedData, StandardizedImages, celeba
from jmvae.data.celeba import cache as celeba_cache
from jmvae.data.celeba import (
    ALIGNED_CROP,
    ATTRIBUTE_NAMES,
    CelebAWarning,
    FaceDetector,
    decode_image,
    detect_face,
    find_celeba,
    load_celeba,
    read_attributes,
)
from jmvae.data.checks import check_paired
from jmvae.generation import generate

HEADER = " ".join(ATTRIBUTE_NAMES)


def attribute_rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1, 1], size=(n, len(ATTRIBUTE_NAMES))).astype(np.int8)


def face(seed: int, size: tuple[int, int] = (178, 218), mode: str = "RGB") -> Image.Image:
    """A smooth random colour image (small as a JPEG), of the aligned CelebA size by default."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    channels = [np.sin(xx / rng.uniform(5, 30) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(5, 30)) for _ in range(3)]
    rgb = ((np.stack(channels, -1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


def make_celeba(root: Path, n: int = 6, *, folder: str = "celeba", partition: list[int] | None = None,
                missing: tuple[int, ...] = (), header: str = HEADER, count: int | None = None,
                newline: str = "\n", seed: int = 0) -> tuple[Path, np.ndarray]:
    """CelebA's official layout in ``root/folder``: n JPEGs (minus ``missing``), the attribute
    list with its two header lines, and a partition file when ``partition`` is given."""
    base = root / folder
    images = base / "img_align_celeba"
    images.mkdir(parents=True)
    values = attribute_rows(n, seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        if i not in missing:
            face(seed * 1000 + i).save(images / name, quality=90)
    lines = [str(n if count is None else count), header]
    lines += [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values)]
    (base / "list_attr_celeba.txt").write_bytes((newline.join(lines) + newline).encode())
    if partition is not None:
        (base / "list_eval_partition.txt").write_text("".join(f"{name} {p}\n" for name, p in zip(names, partition)))
    return base, values


def quiet_load(*args, **kwargs) -> PairedData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CelebAWarning)
        return load_celeba(*args, **kwargs)


@pytest.fixture
def fixture_dir(tmp_path) -> Path:
    make_celeba(tmp_path / "data", n=6, partition=[0, 0, 0, 1, 2, 2])
    return tmp_path / "data"


@pytest.fixture(scope="session")
def celeba_partial_dir() -> Path:
    root = os.environ.get("JMVAE_DATA")
    if not root:
        pytest.skip("the real CelebA pieces need JMVAE_DATA (a folder with celeba_partial/); .ci/run sets it")
    folder = Path(root)
    assert (folder / "celeba_partial" / "img_align_celeba").is_dir() or (folder / "celeba" / "img_align_celeba").is_dir(), (
        f"JMVAE_DATA={root} has no celeba_partial/ or celeba/ with img_align_celeba/"
    )
    return folder


# -- reading the official layout -----------------------------------------------------------------


def test_fixture_loads_with_the_official_split(fixture_dir, tmp_path):
    data = load_dataset("celeba", fixture_dir, cache_dir=tmp_path / "cache")
    image, attrs = data.modalities
    assert (image.name, image.shape, image.likelihood, image.scale, image.network) == ("image", (3, 64, 64), "gaussian", 1.0, "conv")
    assert (attrs.name, attrs.shape, attrs.likelihood, attrs.network) == ("attributes", (40,), "bernoulli", "mlp")
    # partition 0 and 1 train, 2 test
    assert data.train["image"].shape == (4, 3, 64, 64) and data.test["image"].shape == (2, 3, 64, 64)
    values = attribute_rows(6)
    assert data.train["attributes"].tolist() == ((values[:4] + 1) / 2).tolist()
    assert data.test["attributes"].tolist() == ((values[4:] + 1) / 2).tolist()
    assert data.feature_names == {"attributes": ATTRIBUTE_NAMES}
    assert data.classes == () and data.options["split"] == "official"
    check_paired(data.modalities, data.train, "celeba train")
    check_paired(data.modalities, data.test, "celeba test")


def test_pixels_are_cropped_resized_and_standardized_on_the_training_split(fixture_dir, tmp_path):
    data = load_celeba(fixture_dir, cache_dir=tmp_path / "cache")
    x = data.train["image"]
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3), correction=0), torch.ones(3), atol=1e-4, rtol=0)
    # undo() gives back the cropped, resized pixels / 255
    expected = decode_image(fixture_dir / "celeba" / "img_align_celeba" / "000001.jpg", "aligned", 64)
    undone = data.standardization["image"].undo(x[0])
    torch.testing.assert_close(undone, torch.from_numpy(expected).float() / 255, atol=1e-5, rtol=0)
    # the crop is the aligned box, resized
    with Image.open(fixture_dir / "celeba" / "img_align_celeba" / "000001.jpg") as im:
        direct = np.asarray(im.resize((64, 64), Image.Resampling.LANCZOS, box=ALIGNED_CROP)).transpose(2, 0, 1)
    assert np.array_equal(expected, direct)
    info = data.run_info()
    assert info.name == "celeba" and info.feature_names["attributes"] == tuple(ATTRIBUTE_NAMES)
    assert info.to_dict()["standardization"]["image"]["mean"] == list(data.standardization["image"].mean)
    assert type(info).from_dict(json.loads(json.dumps(info.to_dict()))) == info  # config.json round trip


def test_random_split_is_seeded_when_there_is_no_partition_file(tmp_path):
    make_celeba(tmp_path, n=10, newline="\r\n")
    a = load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    b = load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    assert len(a.train["attributes"]) == 9 and len(a.test["attributes"]) == 1  # 90/10
    assert torch.equal(a.test["attributes"], b.test["attributes"]) and a.options["split"] == "random"
    other = load_celeba(tmp_path, cache_dir=tmp_path / "cache", split_seed=3, test_fraction=0.3)
    assert len(other.test["attributes"]) == 3


def test_tanh_gaussian_attributes_keep_minus_one_and_one(fixture_dir, tmp_path):
    data = load_celeba(fixture_dir, cache_dir=tmp_path / "cache", attributes="tanh-gaussian")
    attrs = data.modalities[1]
    assert (attrs.likelihood, attrs.mean_activation, attrs.scale) == ("gaussian", "tanh", 1.0)
    assert set(data.train["attributes"].unique().tolist()) <= {-1.0, 1.0}


def test_folder_rule_data_folder_then_celeba_then_celeba_partial(tmp_path, monkeypatch):
    make_celeba(tmp_path / "root", folder="celeba_partial")
    assert find_celeba(tmp_path / "root") == tmp_path / "root" / "celeba_partial"
    make_celeba(tmp_path / "root", folder="celeba")
    assert find_celeba(tmp_path / "root") == tmp_path / "root" / "celeba"
    assert find_celeba(tmp_path / "root" / "celeba_partial") == tmp_path / "root" / "celeba_partial"
    monkeypatch.setenv("JMVAE_DATA", str(tmp_path / "root"))
    assert find_celeba() == tmp_path / "root" / "celeba"
    with pytest.raises(DataError, match="no CelebA files in .*img_align_celeba"):
        find_celeba(tmp_path / "empty")


def test_gzipped_and_renamed_attribute_lists_are_found(tmp_path):
    base, _ = make_celeba(tmp_path, n=4)
    text = (base / "list_attr_celeba.txt").read_bytes()
    (base / "list_attr_celeba.txt").unlink()
    (base / "list_attr_celeba_first4.txt.gz").write_bytes(gzip.compress(text))
    data = load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    assert len(data.train["attributes"]) + len(data.test["attributes"]) == 4
    (base / "list_attr_celeba_copy.txt").write_bytes(text)
    with pytest.raises(DataError, match="several files could be"):
        load_celeba(tmp_path, cache_dir=tmp_path / "cache")


def test_the_real_partial_celeba_loads(celeba_partial_dir, tmp_path):
    """shared/data/celeba_partial: 20,000 attribute rows, 10 real aligned images."""
    with pytest.warns(CelebAWarning, match="19,990 of 20,000 images .* using the 10 rows that have an image"):
        data = load_dataset("celeba", celeba_partial_dir, cache_dir=tmp_path / "cache")
    assert len(data.train["image"]) + len(data.test["image"]) == 10
    assert data.train["image"].shape[1:] == (3, 64, 64)
    table = read_attributes(next((celeba_partial_dir / "celeba_partial").glob("list_attr_celeba*")))
    assert len(table.files) == 20_000 and table.names == ATTRIBUTE_NAMES
    assert table.values[0].tolist()[:5] == [-1, 1, 1, -1, -1]  # 000001.jpg: not 5 o'clock shadow, arched eyebrows, ...
    rows = {tuple(r) for r in ((table.values[:10] + 1) // 2).tolist()}
    loaded = torch.cat([data.train["attributes"], data.test["attributes"]]).long().tolist()
    assert {tuple(r) for r in loaded} <= rows
    # real photographs: channel means of the raw pixels like CelebA's (about 0.5, 0.42, 0.38)
    mean = data.standardization["image"].mean
    assert 0.35 < mean[0] < 0.7 and mean[0] > mean[2]


def test_face_detector_option(celeba_partial_dir, tmp_path):
    """crop='detect': OpenCV's Haar cascade as the authors used it (optional dependency)."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip(f"OpenCV {cv2.__version__} has no Haar cascades")
    with pytest.warns(CelebAWarning) as record:
        data = load_celeba(celeba_partial_dir, crop="detect", cache_dir=tmp_path / "cache")
    assert any(re.search("no face detected in [0-9] of 10 images", str(w.message)) for w in record)
    assert 5 <= len(data.train["image"]) + len(data.test["image"]) < 10
    assert data.options["crop"] == "detect"


def test_face_detector_without_opencv_says_what_to_install(fixture_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 fails
    with pytest.raises(ValueError, match="crop='detect' needs OpenCV 4 .*pip install 'opencv-python-headless<5'"):
        load_celeba(fixture_dir, crop="detect", cache_dir=tmp_path / "cache")


def test_the_face_detector_is_an_object_its_caller_owns(fixture_dir, tmp_path, monkeypatch):
    """A stand-in for OpenCV: the authors' box rule on the cascade's boxes, and one cascade per
    FaceDetector, made by whoever detects (here load_celeba, once per load)."""
    made: list[str] = []

    class Cascade:
        def __init__(self, path):
            made.append(path)

        def empty(self):
            return False

        def detectMultiScale(self, gray, **kwargs):  # a face, and a box that leaves the image
            return np.array([[40, 70, 100, 100], [0, 0, 20, 20]])

    fake = types.SimpleNamespace(__version__="4-fake", CascadeClassifier=Cascade, COLOR_RGB2GRAY=7,
                                 data=types.SimpleNamespace(haarcascades="cascades"), cvtColor=lambda rgb, code: rgb[..., 0])
    monkeypatch.setitem(sys.modules, "cv2", fake)
    rgb = np.zeros((218, 178, 3), dtype=np.uint8)
    detector = FaceDetector()
    box = (25, 55, 155, 185)  # grown by int(100 * 0.15) = 15 on each side
    assert detector.box(rgb) == box and detect_face(rgb, detector) == box and len(made) == 1
    assert detect_face(rgb) == box and len(made) == 2  # no detector given: a new one
    data = load_celeba(fixture_dir, crop="detect", cache_dir=tmp_path / "cache")
    assert len(made) == 3 and data.options["crop"] == "detect"
    expected = decode_image(fixture_dir / "celeba" / "img_align_celeba" / "000001.jpg", list(box), 64)
    undone = data.standardization["image"].undo(data.train["image"][0])
    torch.testing.assert_close(undone, torch.from_numpy(expected).float() / 255, atol=1e-5, rtol=0)


# -- clear errors -------------------------------------------------------------------------------


def write_attributes(base: Path, lines: list[str]) -> Path:
    path = base / "list_attr_celeba.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines.__setitem__(4, lines[4].rsplit(" ", 1)[0]), "line 5 has 39 values after the file name, expected 40"),
        (lambda lines: lines.__setitem__(3, lines[3][:-2] + " 0"), "line 4, attribute Young: value '0' is not -1 or 1"),
        (lambda lines: lines.__setitem__(1, lines[1].replace("Attractive", "Pretty")), "attribute 3 is 'Pretty', CelebA's is 'Attractive'"),
        (lambda lines: lines.__setitem__(1, lines[1].rsplit(" ", 1)[0]), "line 2 has 39 attribute names, CelebA has 40"),
        (lambda lines: lines.__setitem__(0, "many"), "line 1 is 'many', expected the number of images"),
        (lambda lines: lines.__setitem__(0, "2"), "line 1 declares 2 images but 6 rows follow"),
        (lambda lines: lines.__setitem__(5, lines[2]), "line 6 repeats 000001.jpg \\(first on line 3\\)"),
        (lambda lines: lines.__delitem__(slice(2, None)), "no image rows after the header"),
    ],
    ids=["columns", "value", "header-name", "header-count", "count", "too-many-rows", "duplicate", "no-rows"],
)
def test_malformed_attribute_files_are_named(tmp_path, edit, message):
    base, _ = make_celeba(tmp_path)
    path = base / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    edit(lines)
    write_attributes(base, lines)
    with pytest.raises(DataError, match=message) as info:
        load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    assert str(path) in str(info.value)


def test_missing_images_warn_with_counts_or_fail(tmp_path):
    make_celeba(tmp_path, n=6, missing=(1, 4))
    with pytest.warns(CelebAWarning, match="2 of 6 images named in list_attr_celeba.txt are not in .* \\(first missing: 000002.jpg\\); using the 4 rows"):
        data = load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    assert len(data.train["image"]) + len(data.test["image"]) == 4
    with pytest.raises(DataError, match="000002.jpg: image file is missing \\(2 of the 6"):
        load_celeba(tmp_path, cache_dir=tmp_path / "cache", on_missing="error")


def test_no_image_at_all_is_an_error(tmp_path):
    make_celeba(tmp_path, n=3, missing=(0, 1, 2))
    with pytest.raises(DataError, match="none of the 3 images named in list_attr_celeba.txt is there"):
        load_celeba(tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: face(1).convert("L").save(p), "a grayscale image \\(mode L\\); CelebA images are RGB"),
        (lambda p: face(1).convert("CMYK").save(p, "JPEG"), "a CMYK image \\(mode CMYK\\)"),
        (lambda p: p.write_bytes(b"not a jpeg at all"), "cannot be decoded as an image"),
        (lambda p: p.write_bytes(p.read_bytes()[:600]), "cannot be decoded as an image"),
        (lambda p: face(1, size=(200, 200)).save(p), "200x200 pixels; aligned CelebA images are 178x218"),
    ],
    ids=["grayscale", "cmyk", "garbage", "truncated", "size"],
)
def test_bad_images_are_named(tmp_path, write, message):
    base, _ = make_celeba(tmp_path, n=4)
    bad = base / "img_align_celeba" / "000003.jpg"
    write(bad)
    with pytest.raises(DataError, match=message) as info:
        load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    assert str(bad) in str(info.value)


def test_partition_file_problems_are_named(tmp_path):
    base, _ = make_celeba(tmp_path, n=4, partition=[0, 0, 2, 2])
    partition = base / "list_eval_partition.txt"
    partition.write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n")
    with pytest.raises(DataError, match="list_eval_partition.txt: no line for 000004.jpg"):
        load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    partition.write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(DataError, match="line 2 is '000002.jpg train'; expected 'FILE.jpg 0\\|1\\|2'"):
        load_celeba(tmp_path, cache_dir=tmp_path / "cache")
    # the partition file is not needed with split="random"
    data = load_celeba(tmp_path, cache_dir=tmp_path / "cache", split="random")
    assert data.options["split"] == "random"


def test_unknown_options_are_refused(fixture_dir, tmp_path):
    with pytest.raises(ValueError, match="crop must be"):
        load_celeba(fixture_dir, cache_dir=tmp_path, crop="middle")
    with pytest.raises(ValueError, match="attributes must be"):
        load_celeba(fixture_dir, cache_dir=tmp_path, attributes="categorical")
    with pytest.raises(ValueError, match="split must be"):
        load_celeba(fixture_dir, cache_dir=tmp_path, split="officail")
    with pytest.raises(DataError, match="unknown loader options crop"):
        load_dataset("digits", crop="aligned")


# -- the cache ----------------------------------------------------------------------------------


def count_builds(monkeypatch) -> list[int]:
    builds: list[int] = []
    original = celeba_cache.build_cache

    def counting(*args, **kwargs):
        builds.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(celeba_cache, "build_cache", counting)
    return builds


def test_cache_is_reused_and_rebuilt_when_stale(fixture_dir, tmp_path, monkeypatch):
    builds = count_builds(monkeypatch)
    cache = tmp_path / "cache"
    first = load_celeba(fixture_dir, cache_dir=cache)
    second = load_celeba(fixture_dir, cache_dir=cache)
    assert len(builds) == 1
    assert torch.equal(first.train["image"], second.train["image"])
    files = sorted(p.name for p in cache.iterdir())
    assert len([f for f in files if f.endswith(".npy")]) == 1 and not [f for f in files if f.endswith(".tmp")]
    array = np.load(next(cache.glob("*.npy")), mmap_mode="r")
    assert array.dtype == np.uint8 and array.shape == (6, 3, 64, 64)

    # another image in place of 000002.jpg: the cache is stale and rebuilt in the same slot
    face(99).save(fixture_dir / "celeba" / "img_align_celeba" / "000002.jpg", quality=50)
    third = load_celeba(fixture_dir, cache_dir=cache)
    assert len(builds) == 2 and len(list(cache.glob("*.npy"))) == 1
    assert not torch.equal(first.train["image"][1], third.train["image"][1])
    # another crop is another cache
    load_celeba(fixture_dir, cache_dir=cache, crop=(0, 0, 160, 160))
    assert len(builds) == 3 and len(list(cache.glob("*.npy"))) == 2
    # a damaged cache is rebuilt, not trusted
    for meta in cache.glob("*.json"):
        meta.write_text("{not json")
    load_celeba(fixture_dir, cache_dir=cache)
    assert len(builds) == 4


def test_cache_goes_to_the_celeba_folder_or_a_user_folder(fixture_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("JMVAE_CACHE", raising=False)
    assert celeba_cache.default_cache_dir(fixture_dir / "celeba") == fixture_dir / "celeba" / "cache"
    monkeypatch.setattr(celeba_cache, "writable", lambda folder: False)  # a read-only data folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert celeba_cache.default_cache_dir(fixture_dir / "celeba") == tmp_path / "home" / ".cache" / "jmvae" / "celeba-cache"
    monkeypatch.setenv("JMVAE_CACHE", str(tmp_path / "mine"))
    assert celeba_cache.default_cache_dir(fixture_dir / "celeba") == tmp_path / "mine" / "celeba"


def test_statistics_are_stored_with_the_cache(fixture_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    data = load_celeba(fixture_dir, cache_dir=cache)
    calls: list[int] = []
    original = celeba_cache.channel_stats
    monkeypatch.setattr(celeba_cache, "channel_stats", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = load_celeba(fixture_dir, cache_dir=cache)
    assert calls == [] and again.standardization == data.standardization
    load_celeba(fixture_dir, cache_dir=cache, split="random")  # another split: other statistics
    assert calls == [1]


# -- streaming from the memory map ----------------------------------------------------------------


def test_streamed_images_index_like_the_tensor(fixture_dir, tmp_path):
    full = load_celeba(fixture_dir, cache_dir=tmp_path / "cache", in_memory=True)
    lazy = load_celeba(fixture_dir, cache_dir=tmp_path / "cache", in_memory=False)
    images, tensor = lazy.train["image"], full.train["image"]
    assert isinstance(images, StandardizedImages) and isinstance(tensor, torch.Tensor)
    assert images.shape == tensor.shape and len(images) == 4 and images.dim() == 4
    for index in (2, -1, slice(1, 3), torch.tensor([3, 0, 3]), np.array([True, False, True, False]), [1, 2]):
        assert torch.equal(images[index], tensor[index]), index
    assert torch.equal(images.to("cpu").materialize(), tensor)
    assert torch.equal(lazy.to("cpu").test["image"][:], full.test["image"])


def test_training_streams_from_the_cache(fixture_dir, tmp_path, monkeypatch):
    """The training loop indexes streamed images per batch. Its data check reads whole tensors,
    so here it sees the materialised images (see the report's change to data/checks.py)."""
    import jmvae.training.loop

    def check(modalities, tensors, where):
        check_paired(modalities, {k: v.materialize() if isinstance(v, StandardizedImages) else v for k, v in tensors.items()}, where)

    monkeypatch.setattr(jmvae.training.loop, "check_paired", check)
    data = load_celeba(fixture_dir, cache_dir=tmp_path / "cache", in_memory=False)
    config = ModelConfig("jmvae-kl", data.modalities, latent_dim=4, hidden_dim=16, alpha=0.1)
    result = train(config, TrainConfig(epochs=1, batch_size=2, max_steps=2, seed=0), data, progress=False)
    assert result.step == 2 and all(torch.isfinite(p).all() for p in result.model.parameters())


def test_a_tiny_conv_jmvae_trains_saves_and_generates(fixture_dir, tmp_path):
    data = load_dataset("celeba", fixture_dir, cache_dir=tmp_path / "cache")
    config = ModelConfig("jmvae-kl", data.modalities, latent_dim=4, hidden_dim=16, alpha=0.1)
    run = tmp_path / "run"
    result = train(config, TrainConfig(epochs=1, batch_size=2, max_steps=2, seed=0), data, run, progress=False,
                   data_info=data.run_info())
    assert result.step == 2
    loaded = load_run(run)
    model, saved = loaded.model, loaded.config
    assert saved.model == config and saved.data == data.run_info()
    for name, value in result.model.state_dict().items():  # batch-norm statistics included
        assert torch.equal(value, model.state_dict()[name]), name
    given = {"attributes": celeba.attribute_vector(ATTRIBUTE_NAMES, ["Male", "Smiling"], data.modalities[1])}
    images = generate(model, given, 3)["image"].mean
    assert images.shape == (3, 3, 64, 64)
    shown = data.standardization["image"].undo(images)
    assert shown.min() >= 0 and shown.max() <= 1


def test_jmvae_gan_trains_on_faces_with_a_convolutional_discriminator(fixture_dir, tmp_path):
    from jmvae.checkpoint import latest_checkpoint, load_checkpoint
    from jmvae.config import AdversarialConfig
    from jmvae.runs import load_run

    data = load_dataset("celeba", fixture_dir, cache_dir=tmp_path / "cache")
    config = ModelConfig("jmvae-kl", data.modalities, latent_dim=4, hidden_dim=16, alpha=0.1)
    result = train(config, TrainConfig(epochs=1, batch_size=2, max_steps=2, seed=0), data, tmp_path / "run",
                   progress=False, data_info=data.run_info(), adversarial=AdversarialConfig())
    discriminator = result.trained_beside["discriminator"]
    assert result.step == 2 and isinstance(discriminator.features[0], torch.nn.Conv2d)
    run = load_run(tmp_path / "run")
    assert run.display_name == "jmvae-gan(alpha=0.1)"
    weights, _, _ = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert torch.equal(weights["discriminator.head.2.weight"], discriminator.head[-1].weight)
    trained = result.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in run.model.state_dict().items())


def test_attribute_accuracy_counts_attributes_predicted_right():
    """A decoder that always predicts attributes 0 and 2 on (the others off) is right on exactly
    the attributes where the data agree with that guess."""
    from jmvae.evaluation import prediction_accuracy

    image, attrs = Modality("image", (6,), "gaussian"), Modality("attributes", (5,), "bernoulli")
    model = build_model(ModelConfig("jmvae-kl", (image, attrs), latent_dim=2, hidden_dim=8, alpha=0.1))
    last = model.decoders["attributes"][-1]
    torch.nn.init.zeros_(last.weight)
    guess = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    with torch.no_grad():
        last.bias.copy_(40 * guess - 20)
    values = torch.randint(0, 2, (7, 5), generator=torch.Generator().manual_seed(0)).float()
    batch = {"image": torch.randn(7, 6), "attributes": values}
    accuracy = prediction_accuracy(model, batch, "image", "attributes")["accuracy"]
    torch.testing.assert_close(accuracy, (values == guess).double().mean(-1))
    # the paper's tanh-Gaussian attributes (-1/1): a mean of 0.3 is "on", -0.3 "off"
    attrs = Modality("attributes", (5,), "gaussian", mean_activation="tanh")
    model = build_model(ModelConfig("jmvae-kl", (image, attrs), latent_dim=2, hidden_dim=8, alpha=0.1))
    last = model.decoders["attributes"][-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.atanh(0.6 * guess - 0.3))
    batch = {"image": torch.randn(7, 6), "attributes": 2 * values - 1}
    accuracy = prediction_accuracy(model, batch, "image", "attributes")["accuracy"]
    torch.testing.assert_close(accuracy, (values == guess).double().mean(-1))


def test_cli_evaluates_faces_with_the_table_2_protocol(fixture_dir, tmp_path):
    from helpers import jmvae as run_cli

    out = tmp_path / "run"
    done = run_cli("train", "--data", "celeba", "--data-dir", str(fixture_dir), "--model", "jmvae-gan", "--max-steps", "1",
                   "--batch-size", "2", "--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--out", str(out))
    assert done.returncode == 0, done.stderr
    done = run_cli("evaluate", str(out), "--data-dir", str(fixture_dir), "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    result = json.loads(done.stdout, parse_constant=refuse)  # no NaN, even for a tiny test split
    assert (result["k"], result["n_prior"], result["n_test"]) == (10, 10, 2)
    assert set(result["log_likelihood"]) == {"image", "image|attributes", "joint"}
    assert 0 <= result["accuracy"]["attributes|image"] <= 1
    check = result["n_prior_check"]  # Table 2's N_w = 10 beside N_w = 1000 (docs/bounds.md)
    assert check["n_prior"] == 1000 and set(check["image|attributes"]) == {"multiple", "single"}
    shift = result["log_likelihood"]["image|attributes"]["multiple"] - check["image|attributes"]["multiple"]
    assert shift == pytest.approx(check["log_p_w"] - result["log_p_w"], abs=0.01)  # float32 sums of ~1e4 nats


def test_the_papers_tanh_gaussian_attributes_can_be_trained_from_the_command_line(fixture_dir, tmp_path):
    from helpers import jmvae as run_cli

    out = tmp_path / "run"
    done = run_cli("train", "--data", "celeba", "--data-dir", str(fixture_dir), "--attributes", "tanh-gaussian",
                   "--max-steps", "1", "--batch-size", "2", "--latent-dim", "4", "--hidden-dim", "16", "--no-progress",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    attributes = json.loads((out / "config.json").read_text())["model"]["modalities"][1]
    assert (attributes["likelihood"], attributes["mean_activation"]) == ("gaussian", "tanh")
    done = run_cli("evaluate", str(out), "--data-dir", str(fixture_dir), "--json", "--no-progress", "--n-prior-check", "50")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_prior_check"]["n_prior"] == 50
    done = run_cli("train", "--data", "digits", "--attributes", "tanh-gaussian", "--out", str(tmp_path / "digits"))
    assert done.returncode == 2 and "--attributes" in done.stderr


def test_paper_jmvae_gan_end_to_end_on_the_real_partial_celeba(celeba_partial_dir, tmp_path, monkeypatch):
    """The smoke run of the paper's CelebA model on the real faces: train JMVAE-GAN (paper
    architecture and optimisation) for two epochs, evaluate with Table 2's protocol, predict a
    face's attributes, edit it, draw the figures, all from the command line."""
    from helpers import jmvae as run_cli

    monkeypatch.setenv("JMVAE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    common = ["--data-dir", str(celeba_partial_dir)]
    done = run_cli("train", "--data", "celeba", "--model", "jmvae-gan", "--epochs", "2", "--batch-size", "9",
                   "--threads", "1", "--no-progress", "--out", str(run), *common)
    assert done.returncode == 0, done.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["latent_dim"] == 128 and saved["adversarial"]["weight"] == 1.0 and saved["train"]["lr"] == 1e-4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(np.isfinite(r["gan/discriminator"]) for r in records)
    done = run_cli("evaluate", str(run), "--json", "--no-progress", *common)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["k"], result["n_prior"]) == (10, 10) and result["log_likelihood"]["joint"] < 0
    face = celeba_partial_dir / "celeba_partial" / "img_align_celeba" / "000001.jpg"
    done = run_cli("predict", str(run), "--image", str(face), "--json")
    assert done.returncode == 0 and len(json.loads(done.stdout)["probabilities"]) == 40, done.stderr
    done = run_cli("edit", str(run), "--image", str(face), "--set", "Smiling=1", "--out", str(tmp_path / "edit.png"))
    assert done.returncode == 0, done.stderr
    done = run_cli("plot", str(run), "--out", str(tmp_path / "figures"), *common)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "figures" / "faces_per_attribute.png").is_file()
