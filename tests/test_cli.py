"""Every command of the command line end to end on small real data (scikit-learn's digits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from jmvae.cli import main
from jmvae.precision import bf16_is_emulated

from helpers import jmvae


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    done = jmvae("train", "--epochs", "2", "--latent-dim", "8", "--hidden-dim", "64", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "trained jmvae-kl(alpha=0.1) on digits: epoch 2, step 30" in done.stderr
    return out


def test_train_writes_config_metrics_and_checkpoint(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["kind"] == "jmvae-kl" and config["data"]["name"] == "digits"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"loss", "kl_prior", "recon/image", "recon/label", "kl/image", "kl/label"} <= set(metrics[0])
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step-000000030"


def test_evaluate_json_has_the_contracted_keys(run_dir):
    done = jmvae("evaluate", str(run_dir), "--k", "10", "--n-prior", "20", "--limit", "40", "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "jmvae-kl(alpha=0.1)" and result["k"] == 10 and result["n_test"] == 40
    ll = result["log_likelihood"]
    assert set(ll) == {"image", "image|label", "joint"}
    for cell in (ll["image"]["multiple"], ll["image"]["single"], ll["image|label"]["multiple"], ll["image|label"]["single"], ll["joint"]):
        assert isinstance(cell, float) and cell < 0
    assert ll["joint"] < ll["image"]["multiple"]
    assert 0 <= result["accuracy"]["label|image"] <= 1


def test_evaluate_text_output(run_dir):
    """One row per cell, named by what it bounds (the joint cell: log p(image, label)), the values
    in one column, each with its standard error."""
    done = jmvae("evaluate", str(run_dir), "--k", "5", "--n-prior", "10", "--limit", "10", "--no-progress")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("  log p(")]
    assert [row.split("  ")[1].strip() for row in rows] == ["log p(image)"] * 2 + ["log p(image | label)"] * 2 + ["log p(image, label)"]
    assert len({row.index(" ± ") for row in rows}) == 1 and len({row.index(".") for row in rows}) == 1, done.stdout
    assert "active units of 8: q(z|image,label) " in done.stdout and "q(z|label) " in done.stdout


@pytest.mark.parametrize("command", [["evaluate", "--k", "2", "--n-prior", "2", "--limit", "4", "--json"],
                                     ["sample", "--given", "label=3", "--n", "2", "--out", "{tmp}/s.png"]])
def test_threads_flag_is_applied_by_every_command(run_dir, tmp_path, monkeypatch, command):
    """evaluate and sample once ignored --threads, so a sharded evaluation (torchrun: one thread
    per process) and a --threads 1 evaluation summed in different orders and differed in the 8th digit."""
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    args = [command[0], str(run_dir), *(a.format(tmp=tmp_path) for a in command[1:]), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    assert calls == [1]


def test_sample_writes_a_png_grid(run_dir, tmp_path):
    out = tmp_path / "threes.png"
    done = jmvae("sample", str(run_dir), "--given", "label=3", "--n", "16", "--out", str(out), "--scale", "2")
    assert done.returncode == 0, done.stderr
    image = Image.open(out)
    assert image.size == (2 * (4 * 9 + 1), 2 * (4 * 9 + 1)) and image.mode == "L"


def test_train_resume_continues_and_refuses_to_clobber(run_dir, capsys):
    assert main(["train", "--epochs", "2", "--out", str(run_dir), "--no-progress"]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert main(["train", "--epochs", "3", "--latent-dim", "8", "--hidden-dim", "64", "--out", str(run_dir),
                 "--resume", "--no-progress"]) == 0
    assert "epoch 3, step 45" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "RUN", "--given", "label=12", "--out", "x.png"], "'12' is not a class; give an index 0..9"),
        (["sample", "RUN", "--given", "colour=3", "--out", "x.png"], "colour"),
        (["sample", "RUN", "--given", "label", "--out", "x.png"], "give it a value, e.g. label=3"),
        (["evaluate", "NOWHERE"], "is not a folder"),
        (["train", "--model", "vae", "--alpha", "0.5", "--out", "NEW"], "--alpha applies to --model jmvae-kl and jmvae-gan only"),
        (["train", "--data", "mnist", "--data-dir", "EMPTY", "--out", "NEW"], "put the four IDX files"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(run_dir, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("JMVAE_MIRROR", "http://127.0.0.1:9/")
    args = [str(run_dir) if a == "RUN" else str(tmp_path / a) if a in ("NOWHERE", "NEW", "EMPTY", "x.png") else a for a in args]
    done = jmvae(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_bad_flag_value_exits_2():
    done = jmvae("train", "--epochs", "-3", "--out", "x")
    assert done.returncode == 2 and "--epochs" in done.stderr


def test_reproduce_writes_table_and_claims(tmp_path):
    out = tmp_path / "table"
    done = jmvae("reproduce", "digits", "--out", str(out), "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "16",
                 "--k", "5", "--n-prior", "10", "--limit", "20", "--no-progress")
    assert done.returncode == 0, done.stderr
    table = json.loads((out / "table1.json").read_text())
    assert list(table["models"]) == ["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl(alpha=0.01)", "jmvae-kl(alpha=0.1)", "jmvae-kl(alpha=1)"]
    assert table["models"]["cvae"]["log_likelihood"]["image"] == {"multiple": None, "single": None}
    assert table["models"]["vae"]["log_likelihood"]["image"]["single"] < 0
    assert {"epochs", "seed", "train_seconds"} <= set(table["models"]["vae"])
    assert len(table["claims"]) == 7 and all(c["holds"] in (True, False) for c in table["claims"][:6])
    # one epoch, k = 5, 20 test images: whatever the numbers say, no claim is established by it
    assert all(c["verdict"] == "not established" and "far from the paper's protocol" in c["caveat"] for c in table["claims"][:6])
    assert "**holds**" not in (out / "table1.md").read_text() and "0 claims hold, 6 not established" in done.stderr
    assert table["models"]["vae"]["coherence"] is None  # the VAE cannot generate from a label
    for name in ("cvae", "cmma", "jmvae-zero", "jmvae-kl(alpha=0.1)"):
        entry = table["models"][name]["coherence"]
        assert 0 <= entry["image|label"] <= 1 and entry["chance"] == pytest.approx(0.1) and entry["judge_test_accuracy"] > 0.5
    assert table["command"].startswith("jmvae reproduce digits") and table["hardware"]
    assert "| jmvae-kl(alpha=0.01) |" in (out / "table1.md").read_text()
    report = (out / "report.md").read_text()
    assert "t-SNE" in report and "figures/jmvae-zero/generation.png" in report and (out / "figures" / "jmvae-zero" / "generation.png").is_file()
    written = {name: (out / name).read_bytes() for name in ("table1.json", "table1.md", "report.md")}
    again = jmvae("reproduce", "digits", "--out", str(out), "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "16",
                  "--k", "5", "--n-prior", "10", "--limit", "20", "--no-progress", "--threads", "1")
    assert again.returncode == 0 and again.stderr.count("already in") == 7
    assert "nothing to do" in again.stderr and "left unchanged" in again.stderr and "unchanged: " in again.stderr
    # nothing ran, so nothing is rewritten: the table still names the command and threads that measured it
    assert all((out / name).read_bytes() == content for name, content in written.items())


def test_bench_json_reports_throughput_and_memory():
    done = jmvae("bench", "--steps", "3", "--warmup-steps", "2", "--eval-points", "4", "--k", "20", "--threads", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("train_samples_per_s", "eval_samples_per_s", "peak_rss_mb"):
        assert result[key] > 0
    assert result["config"]["k"] == 20 and "1 torch thread," in result["hardware"]
    assert "jmvae bench: timing training: 2 warm-up steps, then 3 timed steps" in done.stderr  # progress, not silence
    assert "samples/s; timing evaluation: 4 test points, k = 20" in done.stderr


def test_bf16_training_is_recorded_and_resumed_in_bf16(tmp_path):
    out = tmp_path / "bf16"
    done = jmvae("train", "--max-steps", "3", "--hidden-dim", "32", "--train-precision", "bf16", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "config.json").read_text())["train"]["precision"] == "bf16"
    note = "jmvae train: note: bf16 on this CPU, which has neither amx_bf16 nor avx512_bf16"
    assert (note in done.stderr) == bf16_is_emulated(torch.device("cpu")), done.stderr  # this machine's own flags
    done = jmvae("train", "--resume", "--max-steps", "5", "--out", str(out), "--no-progress")
    assert done.returncode == 0 and "step 5" in done.stderr, done.stderr
    assert json.loads((out / "config.json").read_text())["train"]["precision"] == "bf16"
    assert jmvae("train", "--train-precision", "fp16", "--out", str(tmp_path / "x")).returncode == 2


def test_compile_flag_is_recorded_and_can_be_added_on_resume(tmp_path):
    out = tmp_path / "compiled"
    done = jmvae("train", "--max-steps", "2", "--hidden-dim", "32", "--out", str(out), "--no-progress")
    assert done.returncode == 0 and not json.loads((out / "config.json").read_text())["train"]["compile"]
    done = jmvae("train", "--resume", "--max-steps", "4", "--compile", "--out", str(out), "--no-progress")
    assert done.returncode == 0 and "step 4" in done.stderr, done.stderr
    assert json.loads((out / "config.json").read_text())["train"]["compile"] is True


def test_bf16_evaluation_stays_close_to_float32(run_dir):
    args = ["evaluate", str(run_dir), "--k", "50", "--n-prior", "50", "--limit", "50", "--json", "--no-progress"]
    fp32, bf16 = (json.loads(jmvae(*args, "--precision", p).stdout)["log_likelihood"] for p in ("fp32", "bf16"))
    for cell in ("image", "image|label"):
        for bound in ("multiple", "single"):
            assert abs(fp32[cell][bound] - bf16[cell][bound]) < 0.01 * abs(fp32[cell][bound])


def test_plot_writes_the_figures(run_dir, tmp_path):
    vae = tmp_path / "vae"
    assert main(["train", "--model", "vae", "--max-steps", "5", "--latent-dim", "8", "--hidden-dim", "64",
                 "--out", str(vae), "--no-progress"]) == 0
    done = jmvae("plot", str(run_dir), "--compare", str(vae), "--out", str(tmp_path / "fig"), "--points", "200")
    assert done.returncode == 0, done.stderr
    names = sorted(Path(line).name for line in done.stdout.split())
    assert names == ["curves.png", "generation.png", "latent.png", "reconstructions.png"]
    latent = Image.open(tmp_path / "fig" / "latent.png")
    assert latent.width > 1.5 * latent.height, "two latent maps side by side"
    done = jmvae("plot", str(vae), "--out", str(tmp_path / "vae-fig"), "--embedding", "tsne", "--points", "100")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "vae-fig" / "generation.png").exists(), "a VAE cannot generate from a label"


def test_resume_needs_only_the_run_folder(tmp_path):
    """`jmvae train --resume --out RUN` continues with the run's own settings (config.json);
    --max-steps may extend it."""
    run = tmp_path / "run"
    done = jmvae("train", "--model", "cmma-gan", "--gan-weight", "0.5", "--latent-dim", "4", "--hidden-dim", "16",
                 "--max-steps", "2", "--no-progress", "--out", str(run))
    assert done.returncode == 0, done.stderr
    before = json.loads((run / "config.json").read_text())
    done = jmvae("train", "--resume", "--max-steps", "4", "--no-progress", "--out", str(run))
    assert done.returncode == 0, done.stderr
    assert "trained cmma-gan on digits" in done.stderr and "step 4" in done.stderr
    after = json.loads((run / "config.json").read_text())
    assert after["model"] == before["model"] and after["train"]["max_steps"] == 4
