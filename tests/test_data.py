"""Loaders: MNIST and Fashion-MNIST against their known shapes and label counts, the download
path against a local HTTP server, and clear errors for corrupt or missing files."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from jmvae import DataError, load_dataset
from jmvae.data.checks import check_paired
from jmvae.data.idx import parse_idx
from jmvae.data.mnist import FILES, MNIST, load_idx_dataset

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_shapes_label_counts_and_binarization(mnist_dir):
    data = load_dataset("mnist", mnist_dir)
    assert data.train["image"].shape == (60000, 28, 28) and data.test["image"].shape == (10000, 28, 28)
    assert torch.bincount(data.train["label"]).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(data.test["label"]).tolist() == MNIST_TEST_COUNTS
    assert 0.0 <= data.train["image"].min() and data.train["image"].max() == 1.0
    assert set(data.test["image"].unique().tolist()) == {0.0, 1.0}
    again = load_dataset("mnist", mnist_dir)
    assert torch.equal(data.test["image"], again.test["image"]), "test binarization must be seeded"
    assert not torch.equal(data.test["image"], load_dataset("mnist", mnist_dir, test_seed=1).test["image"])


def test_fashion_mnist_is_balanced(mnist_dir):
    data = load_dataset("fashion-mnist", mnist_dir)
    assert torch.bincount(data.train["label"]).tolist() == [6000] * 10
    assert torch.bincount(data.test["label"]).tolist() == [1000] * 10
    assert data.classes[9] == "Ankle boot"


def test_data_folder_comes_from_the_environment(mnist_dir, monkeypatch):
    monkeypatch.setenv("JMVAE_DATA", str(mnist_dir))
    assert load_dataset("mnist").test["label"].shape == (10000,)


def test_digits_ship_with_scikit_learn(digits):
    assert digits.train["image"].shape == (1500, 8, 8) and digits.test["image"].shape == (297, 8, 8)
    assert digits.train["image"].max() <= 1.0


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(mnist_dir):
    """A local HTTP server on 127.0.0.1 serving the four MNIST files; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(mnist_dir / "mnist"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_missing_files_are_downloaded_and_verified(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("JMVAE_MIRROR", mirror)
    arrays = load_idx_dataset(MNIST, tmp_path)
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(FILES.values())


def test_offline_error_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("JMVAE_MIRROR", "http://127.0.0.1:9/")  # nothing listens on the discard port
    with pytest.raises(DataError, match=r"could not be downloaded.*put the four IDX files.*in .*mnist"):
        load_idx_dataset(MNIST, tmp_path)
    assert not list((tmp_path / "mnist").glob("*")), "no partial file may be left behind"


def copy_mnist(mnist_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "mnist"
    shutil.copytree(mnist_dir / "mnist", folder)
    return folder


def test_corrupt_gzip_is_named(mnist_dir, tmp_path):
    folder = copy_mnist(mnist_dir, tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: not a readable gzip"):
        load_idx_dataset(MNIST, tmp_path)


def test_wrong_content_fails_the_checksum(mnist_dir, tmp_path):
    folder = copy_mnist(mnist_dir, tmp_path)
    labels = np.zeros(10000, dtype=np.uint8)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, 10000) + labels.tobytes()))
    with pytest.raises(DataError, match="SHA-256.*corrupt or not the original"):
        load_idx_dataset(MNIST, tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (struct.pack(">II", 2051, 3) + bytes(3), "magic number 2051, expected 2049"),
        (struct.pack(">II", 2049, 5) + bytes(3), "promises 13"),
    ],
)
def test_malformed_idx_content(content, message):
    with pytest.raises(DataError, match=message):
        parse_idx(content, Path("labels.idx"), "labels")


def test_parse_idx_reads_images():
    content = struct.pack(">IIII", 2051, 2, 2, 3) + bytes(range(12))
    assert parse_idx(content, Path("x"), "images").tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]


def test_paired_checks(digits):
    good = {k: v[:10] for k, v in digits.train.items()}
    check_paired(digits.modalities, good, "here")
    with pytest.raises(DataError, match="different numbers of examples"):
        check_paired(digits.modalities, {**good, "label": good["label"][:9]}, "here")
    with pytest.raises(DataError, match="no data for modality \\['label'\\]"):
        check_paired(digits.modalities, {"image": good["image"]}, "here")
    with pytest.raises(DataError, match="values in \\[0, 2\\]"):
        check_paired(digits.modalities, {**good, "image": good["image"] * 2}, "here")
    with pytest.raises(DataError, match="labels must lie in"):
        check_paired(digits.modalities, {**good, "label": good["label"] + 10}, "here")


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
