"""A user's data folder (``jmvae.data.folder``, docs/data-folder.md): the README's example run
end to end through the command line, what a good folder loads as, and one test per bad input
(exit 2, one line naming the file and the row)."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jmvae.cli import main
from jmvae.data import load_dataset
from jmvae.data.folder import load_folder, write_example
from jmvae.data.folder.example import SPEC
from jmvae.masks import observed_key

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Your own data in five minutes"):].split("\n## ", 1)[0]
TINY = ["--epochs", "1", "--latent-dim", "4", "--hidden-dim", "16", "--no-progress"]


def write_table(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(header)
        table.writerows(rows)


def tiny_folder(folder: Path, n: int = 10, modalities: list[dict] | None = None, split: dict | None = None) -> Path:
    """A folder of ``n`` rows: ``x.npy`` (n, 3) Gaussian values, ``table.csv`` with columns a, b
    (0/1), label (names of 2 classes), file (8x8 gray PNGs in ``pics/``) and split; the spec lists
    ``modalities`` (default: x, ab, label, pic)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pics").mkdir(exist_ok=True)
    np.save(folder / "x.npy", rng.normal(size=(n, 3)).astype(np.float32))
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(folder / "pics" / f"{i}.png")
        rows.append([i % 2, (i + 1) % 2, ("cat", "dog")[i % 2], f"{i}.png", "test" if i in (2, 5) else "train"])
    write_table(folder / "table.csv", ["a", "b", "label", "file", "split"], rows)
    modalities = modalities if modalities is not None else [
        {"name": "pic", "likelihood": "bernoulli", "shape": [8, 8], "images": "pics", "csv": "table.csv", "column": "file"},
        {"name": "x", "likelihood": "gaussian", "shape": [3], "npy": "x.npy"},
        {"name": "ab", "likelihood": "bernoulli", "shape": [2], "csv": "table.csv", "columns": ["a", "b"]},
        {"name": "label", "likelihood": "categorical", "csv": "table.csv", "column": "label", "classes": ["cat", "dog"]},
    ]
    spec = {"name": "tiny", "modalities": modalities, **({"split": split} if split is not None else {})}
    (folder / "jmvae.json").write_text(json.dumps(spec))
    return folder


def edit_cell(path: Path, line: int, column: str, value: str) -> None:
    """Set ``column`` of the row on ``line`` (the header is line 1) of a CSV file."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[line - 1][rows[0].index(column)] = value
    write_table(path, rows[0], rows[1:])


# -- the README's example, end to end -------------------------------------------------------------
def readme_commands() -> list[str]:
    return SECTION.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()


def test_readme_shows_the_example_folder_that_write_example_writes(tmp_path):
    folder = write_example(tmp_path / "my_data")
    shown_spec = json.loads(SECTION.split("```json\n", 1)[1].split("```", 1)[0])
    assert shown_spec == json.loads((folder / "jmvae.json").read_text()) == SPEC
    shown_table = SECTION.split("```text\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert (folder / "table.csv").read_text().splitlines()[: len(shown_table)] == shown_table


def test_readme_commands_train_and_evaluate_the_example_with_missing_entries(tmp_path, monkeypatch, capsys):
    """The README's commands as written; the example has missing entries, which the model reads
    (each test cell counts only the examples with its modalities), and the run finds its data again."""
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert commands[0] == "python -c \"from jmvae.data.folder import write_example; write_example('my_data')\""
    exec(shlex.split(commands[0])[2], {})
    data = load_dataset("my_data")
    assert all(observed_key(name) in data.train for name in ("image", "measures", "label"))
    outputs = []
    for command in commands[1:]:
        words = shlex.split(command)
        assert words[0] == "jmvae"
        assert main(words[1:]) == 0, command
        outputs.append(capsys.readouterr())
    printed = re.search(r"```text\n(trained .*?)\n```", SECTION).group(1)
    assert outputs[0].err.startswith(printed.split(", 0.4 s")[0] + ", ")
    assert "log p(image | measures, label)" in outputs[1].out
    assert (tmp_path / "discs.png").is_file()
    config = json.loads((tmp_path / "runs" / "my_data" / "config.json").read_text())
    assert config["data"] == {"name": "shapes", "options": {"folder": str((tmp_path / "my_data").resolve())}}
    assert main(["evaluate", "runs/my_data", "--k", "2", "--n-prior", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    test_masks = torch.stack([data.test[observed_key(name)] for name in ("image", "measures", "label")])
    assert result["n_per_cell"]["joint"] == int(test_masks.all(0).sum()) < result["n_test"]
    assert result["n_per_cell"]["x/single"] == int(data.test[observed_key("image")].sum())


def test_a_fully_observed_folder_trains_resumes_and_evaluates(tmp_path, capsys):
    folder = write_example(tmp_path / "full", n=40, missing=False)
    data = load_folder(folder)
    assert not any(key.endswith(":observed") for key in (*data.train, *data.test))
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(folder), "--out", run, *TINY]) == 0
    assert "trained jmvae-kl(alpha=0.1) on shapes: epoch 1" in capsys.readouterr().err
    assert main(["train", "--resume", "--data", str(folder), "--out", run, "--epochs", "2", "--no-progress"]) == 0
    assert "epoch 2" in capsys.readouterr().err
    assert main(["evaluate", run, "--k", "4", "--n-prior", "4", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["n_test"] == 4


def test_a_run_of_an_image_and_table_columns_samples_and_predicts_by_column_name(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d", n=20, modalities=[
        {"name": "pic", "likelihood": "bernoulli", "shape": [8, 8], "images": "pics", "csv": "table.csv", "column": "file"},
        {"name": "ab", "likelihood": "bernoulli", "shape": [2], "csv": "table.csv", "columns": ["a", "b"]}])
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(folder), "--out", run, *TINY]) == 0
    assert main(["sample", run, "--given", "a=1", "--n", "4", "--out", str(tmp_path / "a.png")]) == 0
    capsys.readouterr()
    assert main(["predict", run, "--image", str(folder / "pics" / "1.png"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["probabilities"]) == {"a", "b"}


# -- what a good folder loads as ------------------------------------------------------------------
def test_a_folder_loads_with_the_dtypes_shapes_and_transforms_of_its_spec(tmp_path):
    data = load_folder(tiny_folder(tmp_path / "d", n=20))
    assert [m.name for m in data.modalities] == ["pic", "x", "ab", "label"]
    assert data.name == "tiny" and data.classes == ("cat", "dog")
    assert data.train["pic"].dtype == torch.float32 and data.train["pic"].shape == (18, 8, 8)
    assert data.train["x"].dtype == torch.float32 and data.train["x"].shape == (18, 3)
    assert data.train["ab"].shape == (18, 2) and data.train["label"].dtype == torch.int64
    assert data.binarized == ("pic",)  # intensities; ab is 0/1 already
    assert set(data.test["pic"].unique().tolist()) <= {0.0, 1.0}
    assert not set(data.train["pic"].unique().tolist()) <= {0.0, 1.0}  # training keeps the intensities
    assert data.feature_names == {"ab": ("a", "b")}
    assert not any(key.endswith(":observed") for key in data.train)
    again = load_dataset(data.name, None, **data.run_info().options)
    assert torch.equal(again.test["pic"], data.test["pic"])


def test_empty_cells_npy_nan_rows_and_mask_files_become_false_in_the_masks(tmp_path):
    folder = tiny_folder(tmp_path / "d", split={"csv": "table.csv", "column": "split"})
    edit_cell(folder / "table.csv", 2, "label", "")  # row 0
    edit_cell(folder / "table.csv", 4, "file", "")  # row 2, a test row
    for column in ("a", "b"):
        edit_cell(folder / "table.csv", 5, column, "")  # row 3
    x = np.load(folder / "x.npy")
    x[4] = np.nan
    np.save(folder / "x.npy", x)
    data = load_folder(folder)
    train_rows = [0, 1, 3, 4, 6, 7, 8, 9]
    assert data.train[observed_key("label")].tolist() == [r != 0 for r in train_rows]
    assert data.train[observed_key("ab")].tolist() == [r != 3 for r in train_rows]
    assert data.train[observed_key("x")].tolist() == [r != 4 for r in train_rows]
    assert data.test[observed_key("pic")].tolist() == [False, True] and observed_key("pic") not in data.train
    assert data.train["x"][3].tolist() == [0.0, 0.0, 0.0] and data.test["pic"][0].abs().sum() == 0
    np.save(folder / "labels.npy", np.arange(10) % 3)
    np.save(folder / "labels_mask.npy", np.arange(10) != 7)
    spec = json.loads((folder / "jmvae.json").read_text())
    spec["modalities"][3] = {"name": "label", "likelihood": "categorical", "shape": [3], "npy": "labels.npy",
                             "mask": "labels_mask.npy"}
    (folder / "jmvae.json").write_text(json.dumps(spec))
    assert load_folder(folder).train[observed_key("label")].tolist() == [r != 7 for r in train_rows]


def test_labels_may_be_class_names_or_indices(tmp_path):
    folder = tiny_folder(tmp_path / "d", split={"csv": "table.csv", "column": "split"})
    edit_cell(folder / "table.csv", 2, "label", "1")
    edit_cell(folder / "table.csv", 3, "label", "cat")
    assert load_folder(folder).train["label"][:2].tolist() == [1, 0]


def test_the_split_column_is_honoured(tmp_path):
    data = load_folder(tiny_folder(tmp_path / "d", split={"csv": "table.csv", "column": "split"}))
    x = np.load(tmp_path / "d" / "x.npy")
    assert torch.equal(data.test["x"], torch.from_numpy(x[[2, 5]]))
    assert torch.equal(data.train["x"], torch.from_numpy(np.delete(x, [2, 5], axis=0)))


def test_the_seeded_split_is_reproducible_and_follows_its_seed(tmp_path):
    def test_x(seed: int, name: str) -> torch.Tensor:
        return load_folder(tiny_folder(tmp_path / name, n=40, split={"seed": seed, "test_fraction": 0.25})).test["x"]

    first = test_x(3, "a")
    assert first.shape == (10, 3)
    assert torch.equal(first, test_x(3, "b"))
    assert not torch.equal(first, test_x(4, "c"))


def test_gaussian_colour_images_are_standardised_with_the_training_statistics(tmp_path):
    folder = tiny_folder(tmp_path / "d", n=12)
    for i in range(12):
        Image.fromarray(np.full((16, 16, 3), 20 * i, dtype=np.uint8), mode="RGB").save(folder / "pics" / f"{i}.png")
    spec = json.loads((folder / "jmvae.json").read_text())
    spec["modalities"][0] = {"name": "pic", "likelihood": "gaussian", "shape": [3, 16, 16], "images": "pics",
                             "csv": "table.csv", "column": "file"}
    (folder / "jmvae.json").write_text(json.dumps(spec))
    data = load_folder(folder)
    assert data.train["pic"].shape == (11, 3, 16, 16) and "pic" in data.standardization
    assert abs(float(data.train["pic"].mean())) < 1e-5 and abs(float(data.train["pic"].std(unbiased=False)) - 1) < 1e-4
    assert data.binarized == ()  # ab is 0/1, the images Gaussian
    assert "pic" in data.run_info().standardization


# -- bad input: exit 2 and one line naming the file and the row ---------------------------------
def train_error(folder: Path, tmp_path: Path, capsys) -> str:
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "run"), *TINY]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert not (tmp_path / "run").exists()
    return lines[0]


def test_a_spec_naming_a_missing_file_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    (folder / "x.npy").unlink()
    line = train_error(folder, tmp_path, capsys)
    assert "modality 'x' names 'x.npy'" in line and "is not a file" in line


def test_a_shape_that_disagrees_with_the_array_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    np.save(folder / "x.npy", np.zeros((10, 4), dtype=np.float32))
    line = train_error(folder, tmp_path, capsys)
    assert "x.npy: array of shape (10, 4)" in line and "needs (N, 3)" in line


def test_an_image_of_another_size_than_declared_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    Image.new("L", (9, 8)).save(folder / "pics" / "3.png")
    line = train_error(folder, tmp_path, capsys)
    assert "3.png" in line and "table.csv line 5" in line and "image of 9x8" in line


def test_a_label_outside_its_classes_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    edit_cell(folder / "table.csv", 7, "label", "cow")
    line = train_error(folder, tmp_path, capsys)
    assert "table.csv line 7: 'cow' in column 'label' is neither one of the classes (cat, dog)" in line


def test_nan_in_a_bernoulli_modality_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    np.save(folder / "bits.npy", np.where(np.arange(20).reshape(10, 2) == 9, np.nan, 1.0))
    spec = json.loads((folder / "jmvae.json").read_text())
    spec["modalities"][2] = {"name": "ab", "likelihood": "bernoulli", "shape": [2], "npy": "bits.npy"}
    (folder / "jmvae.json").write_text(json.dumps(spec))
    line = train_error(folder, tmp_path, capsys)
    assert "bits.npy row 4: NaN in the bernoulli modality 'ab'" in line and "mask" in line


def test_an_image_file_that_is_not_an_image_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    (folder / "pics" / "6.png").write_text("not a picture")
    line = train_error(folder, tmp_path, capsys)
    assert "6.png (" in line and "table.csv line 8): not an image Pillow can read" in line


def test_counts_that_disagree_are_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    np.save(folder / "x.npy", np.zeros((9, 3), dtype=np.float32))
    line = train_error(folder, tmp_path, capsys)
    assert "different numbers of rows" in line and "x: 9 in" in line and "label: 10 in" in line


def test_some_but_not_all_cells_of_a_row_empty_is_one_line(tmp_path, capsys):
    folder = tiny_folder(tmp_path / "d")
    edit_cell(folder / "table.csv", 4, "b", "")
    line = train_error(folder, tmp_path, capsys)
    assert "table.csv line 4: modality 'ab' has empty cells in 'b'" in line


def test_a_folder_without_a_spec_is_one_line(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert "no jmvae.json in this folder" in train_error(tmp_path / "d", tmp_path, capsys)


@pytest.mark.parametrize("value, message", [(2, "must be a number between 0 and 1"), ("x", "must be a number")])
def test_a_bad_test_fraction_is_one_line(tmp_path, capsys, value, message):
    folder = tiny_folder(tmp_path / "d", split={"seed": 0, "test_fraction": value})
    assert message in train_error(folder, tmp_path, capsys)


def test_a_folder_takes_the_generic_recipe_whatever_its_name():
    from jmvae import presets
    from jmvae.data import DataInfo

    assert presets.recipe_name(DataInfo("celeba", {"folder": "/data/faces"})) == presets.FOLDER
    assert presets.recipe_name(DataInfo("celeba")) == "celeba"
    assert not presets.recipe(presets.FOLDER).convolutional
