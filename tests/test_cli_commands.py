"""Commands as a user types them: ``train --resume RUN_DIR``, a run folder with a config but no
checkpoint, and the recipe the command line and the Python API share (``jmvae.presets``)."""

from __future__ import annotations

import json
import shutil

import pytest

from jmvae import presets, train
from jmvae.checkpoint import latest_checkpoint, load_run_config
from jmvae.data import load_dataset

from helpers import jmvae

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--threads", "1"]


def steps_of(run) -> int:
    return json.loads((latest_checkpoint(run) / "state.json").read_text())["step"]


def test_resume_takes_the_run_folder_as_its_value(tmp_path):
    run = tmp_path / "run"
    assert jmvae("train", "--max-steps", "3", *TINY, "--out", str(run)).returncode == 0
    done = jmvae("train", "--resume", str(run), "--max-steps", "6", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert steps_of(run) == 6
    done = jmvae("train", "--resume", str(run), "--out", str(run), "--max-steps", "7", "--no-progress")  # both, agreeing
    assert done.returncode == 0 and steps_of(run) == 7, done.stderr


@pytest.mark.parametrize("args, says", [
    (["--resume", "A", "--out", "B"], "name two run folders"),
    ([], "train needs a run folder"),
])
def test_train_without_one_run_folder_is_a_one_line_error(tmp_path, args, says):
    done = jmvae("train", *args, "--max-steps", "1", *TINY, cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not any(tmp_path.iterdir())


def test_resume_on_a_run_killed_before_its_first_checkpoint_starts_it(tmp_path):
    """A run SIGKILLed before its first checkpoint leaves config.json and nothing else: --resume
    starts it from its saved settings, and it ends where a run never interrupted ends."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for run in (whole, killed):
        assert jmvae("train", "--max-steps", "5", "--seed", "3", *TINY, "--out", str(run)).returncode == 0
    shutil.rmtree(killed / "checkpoints")
    (killed / "metrics.jsonl").unlink(missing_ok=True)
    done = jmvae("train", "--resume", str(killed), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert steps_of(killed) == steps_of(whole) == 5
    a = (latest_checkpoint(whole) / "model.safetensors").read_bytes()
    b = (latest_checkpoint(killed) / "model.safetensors").read_bytes()
    assert a == b


def test_the_python_api_and_the_command_line_train_the_same_run(tmp_path):
    """presets give train() exactly what jmvae train gives it (GAN betas included)."""
    done = jmvae("train", "--model", "jmvae-gan", "--max-steps", "2", *TINY, "--out", str(tmp_path / "cli"))
    assert done.returncode == 0, done.stderr
    data = load_dataset("digits")
    model, game = presets.model_config("digits", "jmvae-gan", data.modalities, latent_dim=4, hidden_dim=16)
    config = presets.train_config("digits", max_steps=2, threads=1)
    train(model, config, data, tmp_path / "api", progress=False, data_info=data.run_info(), adversarial=game)
    cli, api = load_run_config(tmp_path / "cli"), load_run_config(tmp_path / "api")
    assert cli == api
    a = (latest_checkpoint(tmp_path / "cli") / "model.safetensors").read_bytes()
    assert a == (latest_checkpoint(tmp_path / "api") / "model.safetensors").read_bytes()


def test_recipes_differ_where_the_paper_does():
    mnist, celeba = presets.train_config("mnist"), presets.train_config("celeba")
    assert (mnist.lr, mnist.betas, mnist.warmup_epochs, mnist.epochs) == (1e-3, (0.9, 0.999), 0.0, 100)
    assert (celeba.lr, celeba.betas, celeba.warmup_epochs) == (1e-4, (0.5, 0.999), 20.0)
    assert presets.train_config("digits").epochs == 50 and presets.train_config("my-own-data") == mnist
    assert (presets.eval_config("celeba").k, presets.eval_config("celeba").n_prior) == (10, 10)
    assert presets.train_config("mnist", clip_grad_norm=None).clip_grad_norm is None  # None turns clipping off
    with pytest.raises(ValueError, match="alpha applies"):
        presets.model_config("mnist", "cvae", load_dataset("digits").modalities, alpha=0.5)
