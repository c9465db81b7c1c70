"""``--tensorboard``: the scalars TensorBoard reads back are metrics.jsonl's, at its steps; evaluate
adds its cells; resuming continues the curves without a repeated step; without the package the flag
is one line and exit 2; logging does not change what is trained."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from jmvae.cli import main

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TRAIN = ["train", "--latent-dim", "4", "--hidden-dim", "32", "--no-progress", "--threads", "1"]
STEPS_PER_EPOCH = 15  # digits' 1,500-odd training pairs in batches of 100


def events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve in ``folder``'s event files, as TensorBoard reads them (purges applied)."""
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def as_curves(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl's records as the curves TensorBoard should hold (its float32 values)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        for name, value in record.items():
            if name != "step":
                curves.setdefault(name, []).append((record["step"], float(np.float32(value))))
    return curves


def weights(run: Path) -> dict:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    return load_file(run / "checkpoints" / latest / "model.safetensors")


def test_train_logs_what_metrics_jsonl_logs_at_the_same_steps(tmp_path):
    run = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "2", "--out", str(run), "--tensorboard"]) == 0
    records = metrics(run)
    assert [r["step"] for r in records] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    curves = events(run / "tensorboard")
    assert {"loss", "kl_prior", "recon/image", "recon/label", "kl/image", "kl/label", "kl_weight", "epoch"} <= set(curves)
    assert curves == as_curves(records)


def test_tensorboard_dir_can_be_named_and_logging_changes_nothing_trained(tmp_path):
    plain, logged, board = tmp_path / "plain", tmp_path / "logged", tmp_path / "board"
    assert main([*TRAIN, "--epochs", "1", "--out", str(plain)]) == 0
    assert main([*TRAIN, "--epochs", "1", "--out", str(logged), "--tensorboard", str(board)]) == 0
    assert not (logged / "tensorboard").exists() and events(board)["loss"][0][0] == STEPS_PER_EPOCH
    a, b = weights(plain), weights(logged)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in metrics(plain)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in metrics(logged)]


def test_evaluate_adds_its_cells_at_the_runs_last_step(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "1", "--out", str(run), "--tensorboard"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--k", "3", "--n-prior", "4", "--limit", "20", "--json", "--no-progress",
                 "--threads", "1", "--tensorboard"]) == 0
    result = json.loads(capsys.readouterr().out)
    curves = events(run / "tensorboard")
    ll = result["log_likelihood"]
    expected = {"eval/log_likelihood/image/multiple": ll["image"]["multiple"],
                "eval/log_likelihood/image/single": ll["image"]["single"],
                "eval/log_likelihood/image|label/multiple": ll["image|label"]["multiple"],
                "eval/log_likelihood/joint": ll["joint"],
                "eval/accuracy/label|image": result["accuracy"]["label|image"],
                "eval/log_p_w": result["log_p_w"]}
    for tag, value in expected.items():
        assert curves[tag] == [(STEPS_PER_EPOCH, float(np.float32(value)))], tag
    assert curves["loss"] == as_curves(metrics(run))["loss"]  # the training curves are still there


def test_resume_continues_the_curves_without_a_repeated_step(tmp_path):
    run = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "1", "--out", str(run), "--tensorboard"]) == 0
    first = tmp_path / "after-epoch-1"
    shutil.copytree(run / "checkpoints", first)
    assert main([*TRAIN, "--epochs", "2", "--resume", str(run), "--tensorboard"]) == 0
    assert events(run / "tensorboard") == as_curves(metrics(run))
    # killed after epoch 3 was logged but before its checkpoint: resuming drops it from both, and logs it once
    assert main([*TRAIN, "--epochs", "3", "--resume", str(run), "--tensorboard"]) == 0
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(first, run / "checkpoints")  # back to epoch 1's checkpoint; metrics.jsonl still has epochs 1..3
    assert main([*TRAIN, "--epochs", "3", "--resume", str(run), "--tensorboard"]) == 0
    records = metrics(run)
    assert [r["step"] for r in records] == [STEPS_PER_EPOCH * e for e in (1, 2, 3)]
    assert events(run / "tensorboard") == as_curves(records)


def test_a_run_resumed_with_tensorboard_writes_its_earlier_epochs_first(tmp_path):
    run = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "1", "--out", str(run)]) == 0
    assert main([*TRAIN, "--epochs", "2", "--resume", str(run), "--tensorboard"]) == 0
    assert events(run / "tensorboard") == as_curves(metrics(run))


def test_overwrite_starts_the_curves_afresh(tmp_path):
    run = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "2", "--out", str(run), "--tensorboard"]) == 0
    assert main([*TRAIN, "--epochs", "1", "--seed", "1", "--out", str(run), "--overwrite", "--tensorboard"]) == 0
    assert events(run / "tensorboard") == as_curves(metrics(run))
    # one event file: the curves do not depend on how TensorBoard orders files made in one second
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_without_tensorboard_the_flag_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, command):
    run = tmp_path / "run"
    if command == "evaluate":
        assert main([*TRAIN, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    args = [*TRAIN, "--epochs", "1", "--out", str(run)] if command == "train" else ["evaluate", str(run), "--k", "2"]
    assert main([*args, "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"jmvae {command}: error: --tensorboard needs")
    assert "pip install 'jmvae[tensorboard]'" in err
    if command == "train":
        assert not run.exists()  # refused before anything was written
    else:
        assert not (run / "tensorboard").exists() and (run / "checkpoints").is_dir()


def test_without_the_flag_nothing_imports_tensorboard(tmp_path):
    script = ("import sys; from jmvae.cli import main; "
              f"assert main({[*TRAIN, '--epochs', '1', '--out', str(tmp_path / 'run')]!r}) == 0; "
              "loaded = [m for m in sys.modules if m.split('.')[0] == 'tensorboard' or m == 'torch.utils.tensorboard']; "
              "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
