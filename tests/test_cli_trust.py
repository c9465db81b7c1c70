"""The command line a user can trust (issue 18): defaults that hold on a shared machine, flags
never silently ignored, one-line errors. Each test checks a behaviour (exit code, files, what the
command did), not the wording of a message; docs/cli-behaviour.md lists them by item."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config
from PIL import Image

from jmvae import TrainConfig, cores, load_dataset, train
from jmvae.cli import main
from jmvae.cli.parser import TRAIN_MODELS
from jmvae.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[1]


def jmvae(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m jmvae ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "jmvae", *args], capture_output=True, text=True, timeout=600, env=env, check=False)


TINY = ["--latent-dim", "4", "--hidden-dim", "16", "--no-progress", "--threads", "1"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """main() runs in this process: whatever thread count a test makes it choose is undone."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A JMVAE-kl trained two epochs on the digits (30 steps)."""
    out = tmp_path_factory.mktemp("trust") / "run"
    assert main(["train", "--epochs", "2", *TINY, "--out", str(out)]) == 0
    return out


def one_line_error(done: subprocess.CompletedProcess, command: str) -> str:
    """The error of a command that failed as promised: exit 2, no traceback, one line (argparse's
    errors: and one hint line), naming the command."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr, done.stderr
    assert 1 <= len(lines) <= 2 and lines[0].startswith(f"jmvae {command}: error: "), done.stderr
    return lines[0]


def digit_png(path: Path) -> Path:
    digits = load_dataset("digits")
    pixels = (digits.test["image"][0].numpy() * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").resize((32, 32), Image.NEAREST).save(path)
    return path


# -- 1. default threads beside busy processes ---------------------------------------------------


def busy_loops(n: int) -> list[subprocess.Popen]:
    """n busy-loop processes, each ending by itself within a minute whatever happens to the test."""
    loop = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(n)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def test_busy_cores_are_measured_and_left_to_their_processes():
    """With every core taken by a busy loop, the default is one thread (torch's default, one per
    core, trained 10 times slower beside one busy process: docs/benchmarks.md)."""
    loops = busy_loops(cores.usable_cores())
    try:
        time.sleep(1.0)  # until they spin
        assert cores.busy_cores(0.5) > cores.usable_cores() - 0.6
        assert cores.free_cores() == 1 and cores.default_threads() == 1
    finally:
        stop(loops)


@pytest.mark.parametrize("busy, env, flag, expected", [
    (0.0, {}, [], "all"),                         # a quiet machine: every core
    (1.0, {}, [], "all but one"),                 # one core busy elsewhere: it is left alone
    (1.0, {}, ["--threads", "2"], 2),             # --threads is obeyed
    (1.0, {"OMP_NUM_THREADS": "1"}, [], None),    # the launcher's (torchrun's) choice is obeyed
])
def test_the_default_thread_count_is_the_free_cores(run, tmp_path, monkeypatch, busy, env, flag, expected):
    monkeypatch.setattr(cores, "busy_cores", lambda seconds=cores.SAMPLE_SECONDS: busy)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if not env:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.png"), *flag]) == 0
    n = cores.usable_cores()
    want = {"all": n, "all but one": max(1, n - 1)}.get(expected, expected)
    assert calls == ([] if want is None else [want])


# -- 2. --resume refuses the flags it cannot honour ----------------------------------------------


@pytest.mark.parametrize("flags", [["--model", "vae"], ["--data", "mnist"], ["--alpha", "0.5"], ["--lr", "0.01"],
                                   ["--seed", "3"], ["--batch-size", "50"]])
def test_resume_refuses_a_setting_it_would_ignore(run, flags):
    before = (run / "config.json").read_text()
    done = jmvae("train", "--resume", "--out", str(run), *flags)
    assert flags[0] in one_line_error(done, "train")
    assert (run / "config.json").read_text() == before


def test_resume_takes_the_flags_that_may_change_and_repeats_of_saved_values(run, capsys):
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--threads", "1", "--device", "cpu",
                 "--alpha", "0.1", "--model", "jmvae-kl", "--no-progress"]) == 0
    assert "epoch 3" in capsys.readouterr().err
    metrics = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [1, 2, 3]


# -- 3. a run that fails before its first checkpoint --------------------------------------------


def test_a_run_diverging_before_its_first_checkpoint_leaves_nothing_in_the_way(tmp_path):
    out = tmp_path / "x"
    done = jmvae("train", "--lr", "1e30", "--epochs", "1", *TINY, "--out", str(out))
    message = one_line_error(done, "train")
    assert "diverged" in message and "checkpoint is kept" not in message
    assert message.endswith("(flags: --lr, --warmup, --clip)")  # the library says what; the CLI which flag
    assert not out.exists()
    done = jmvae("train", "--max-steps", "2", *TINY, "--out", str(out))  # the retry is not refused
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("lr", ["nan", "inf", "-1"])
def test_a_flag_that_fails_validation_leaves_no_run_folder(tmp_path, lr):
    out = tmp_path / "y"
    one_line_error(jmvae("train", "--lr", lr, "--out", str(out)), "train")
    assert not out.exists()


def test_missing_data_leaves_no_empty_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JMVAE_MIRROR", "http://127.0.0.1:9/")
    out = tmp_path / "z"
    assert main(["train", "--data", "mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert not out.exists()


# -- 4. the Python API refuses a folder that holds a run ----------------------------------------


def test_train_into_a_run_folder_needs_resume_or_overwrite(digits, tmp_path, one_thread):
    out = tmp_path / "api"
    train(tiny_config(digits), TrainConfig(epochs=2, batch_size=100), digits, run_dir=out, progress=False)

    def epochs() -> list[int]:
        return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]

    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny_config(digits), TrainConfig(epochs=2, batch_size=100), digits, run_dir=out, progress=False)
    assert epochs() == [1, 2]
    train(tiny_config(digits), TrainConfig(epochs=1, batch_size=100), digits, run_dir=out, overwrite=True, progress=False)
    assert epochs() == [1]
    train(tiny_config(digits), TrainConfig(epochs=2, batch_size=100), digits, run_dir=out, resume=True, progress=False)
    assert epochs() == [1, 2]


# -- 5. devices and sample sizes: one line, exit 2 -----------------------------------------------


def test_an_unknown_device_is_one_line(tmp_path):
    assert "gpu" in one_line_error(jmvae("train", "--device", "gpu", "--out", str(tmp_path / "g")), "train")
    assert not (tmp_path / "g").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_one_line(run, tmp_path):
    one_line_error(jmvae("sample", str(run), "--device", "cuda", "--out", str(tmp_path / "c.png")), "sample")


def test_sample_counts_are_capped_with_one_line(run, tmp_path):
    assert "1024" in one_line_error(jmvae("sample", str(run), "--n", "100000000", "--out", str(tmp_path / "n.png")), "sample")
    assert not (tmp_path / "n.png").exists()
    assert main(["sample", str(run), "--n", "1024", "--out", str(tmp_path / "m.png")]) == 0


# -- 6. conditions --------------------------------------------------------------------------------


def test_a_condition_given_twice_is_refused(run, tmp_path):
    done = jmvae("sample", str(run), "--given", "label=3", "--given", "label=4", "--out", str(tmp_path / "t.png"))
    assert "label" in one_line_error(done, "sample")
    assert not (tmp_path / "t.png").exists()


def test_a_bare_value_is_the_label_in_sample_as_in_edit(run, tmp_path):
    assert main(["sample", str(run), "--given", "3", "--n", "4", "--out", str(tmp_path / "bare.png")]) == 0
    assert main(["sample", str(run), "--given", "label=3", "--n", "4", "--out", str(tmp_path / "named.png")]) == 0
    assert (tmp_path / "bare.png").read_bytes() == (tmp_path / "named.png").read_bytes()


def test_a_label_out_of_range_gets_one_message_in_sample_and_edit(run, tmp_path, capsys):
    image = digit_png(tmp_path / "d.png")
    assert main(["sample", str(run), "--given", "label=12", "--out", str(tmp_path / "s.png")]) == 2
    sample = capsys.readouterr().err
    assert main(["edit", str(run), "--image", str(image), "--set", "label=12", "--out", str(tmp_path / "e.png")]) == 2
    edit = capsys.readouterr().err
    # "... --given label '12': <message>" and "... --set label '12': <message>"
    assert sample.split("label ", 1)[1] == edit.split("label ", 1)[1] and "12" in sample


def test_sample_without_a_condition_draws_from_the_prior(run, tmp_path, digits, one_thread):
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "prior.png")]) == 0  # a JMVAE
    assert Image.open(tmp_path / "prior.png").size[0] > 0
    cvae = tmp_path / "cvae"
    train(tiny_config(digits, "cvae"), TrainConfig(max_steps=1), digits, cvae, progress=False, data_info=digits.run_info())
    done = jmvae("sample", str(cvae), "--out", str(tmp_path / "cvae.png"))
    assert "--given" in one_line_error(done, "sample")  # the CVAE's decoder needs its label


@pytest.fixture(scope="module")
def face_run(tmp_path_factory) -> tuple[Path, Path]:
    """A JMVAE-kl trained one step on six CelebA-format faces (40 named attributes), and a face."""
    from test_celeba import make_celeba

    root = tmp_path_factory.mktemp("faces")
    folder, _ = make_celeba(root / "data", n=6, partition=[0, 0, 0, 1, 2, 2])
    out = root / "run"
    assert main(["train", "--data", "celeba", "--data-dir", str(root / "data"), "--max-steps", "1", "--batch-size", "2",
                 *TINY, "--out", str(out)]) == 0
    return out, next((folder / "img_align_celeba").glob("*.jpg"))


def test_attribute_names_are_condition_keys_in_sample_as_in_edit(face_run, tmp_path):
    run, face = face_run
    done = jmvae("sample", str(run), "--given", "Male=1,Smiling=1", "--n", "4", "--out", str(tmp_path / "named.png"))
    assert done.returncode == 0, done.stderr  # was: "unknown modality 'Male'"
    for name, given in (("listed", ["attributes=Male,Smiling"]), ("bare", ["Male,Smiling"]),
                        ("split", ["Male=1", "Smiling=1,Young=0"])):
        assert main(["sample", str(run), *(a for g in given for a in ("--given", g)), "--n", "4",
                     "--out", str(tmp_path / f"{name}.png")]) == 0
        assert (tmp_path / f"{name}.png").read_bytes() == (tmp_path / "named.png").read_bytes(), name
    for change in ("Smiling=1,Male=0", "attributes=Smiling", "Eyeglasses"):
        assert main(["edit", str(run), "--image", str(face), "--set", change, "--out", str(tmp_path / "e.png")]) == 0, change


def test_a_label_is_written_alike_in_sample_and_edit(run, tmp_path):
    image = digit_png(tmp_path / "d.png")
    for change in ("label=3", "3"):
        assert main(["edit", str(run), "--image", str(image), "--set", change, "--out", str(tmp_path / "e.png")]) == 0
    assert main(["sample", str(run), "--given", "label=3", "--n", "4", "--out", str(tmp_path / "s.png")]) == 0


@pytest.mark.parametrize("command", ["sample", "edit"])
def test_an_unknown_attribute_is_one_line_that_lists_the_attributes(face_run, tmp_path, command):
    run, face = face_run
    args = ["--given", "Smile=1"] if command == "sample" else ["--image", str(face), "--set", "Smile=1"]
    line = one_line_error(jmvae(command, str(run), *args, "--out", str(tmp_path / "x.png")), command)
    assert "'Smile'" in line and all(name in line for name in ("Smiling", "Male", "Young", "Eyeglasses")), line
    assert not (tmp_path / "x.png").exists()


# -- 7. argparse errors and --debug -----------------------------------------------------------------


@pytest.mark.parametrize("args, command", [(["train", "--epochs", "-3", "--out", "x"], "train"),
                                           (["train", "--model", "vea", "--out", "x"], "train"),
                                           (["sample"], "sample"), ([], "")])
def test_argparse_errors_are_one_line_and_a_hint(args, command):
    done = jmvae(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) <= 2 and "usage:" not in done.stderr, done.stderr
    assert lines[0].startswith(f"jmvae {command}".strip() + ": error: "), done.stderr


def test_debug_is_accepted_after_the_command(tmp_path):
    quiet = jmvae("evaluate", str(tmp_path / "nowhere"))
    one_line_error(quiet, "evaluate")
    for args in (["--debug", "evaluate", str(tmp_path / "nowhere")], ["evaluate", str(tmp_path / "nowhere"), "--debug"]):
        done = jmvae(*args)
        assert done.returncode == 1 and "Traceback" in done.stderr, done.stderr


# -- 8. claims judged on collapsed models, or far from the paper's protocol -------------------------


def row(active: int, epochs: int = 100, k: int = 1000, n_test: int = 10_000, **cells) -> dict:
    """A Table 1 row with every cell at -90 (``cells`` override), ``active`` active units."""
    ll = {"image": {"multiple": -90.0, "single": -90.0}, "image|label": {"multiple": -88.0, "single": -100.0}, "joint": -90.0}
    for key, value in cells.items():
        ll[key] = value
    return {"log_likelihood": ll, "accuracy": {"label|image": 0.9}, "active_units": {"image+label": active},
            "coherence": {"image|label": 0.1, "per_class": 10, "chance": 0.1, "judge_test_accuracy": 0.9},
            "epochs": epochs, "k": k, "n_prior": 5000, "n_test": n_test, "seed": 0, "train_seconds": 1.0, "eval_seconds": 1.0}


@pytest.mark.parametrize("change, established", [({}, True), ({"active": 0}, False), ({"epochs": 2}, False),
                                                 ({"k": 5}, False), ({"n_test": 40}, False)])
def test_a_claim_is_not_established_on_collapsed_models_or_a_toy_protocol(change, established):
    from jmvae.experiments.table1.claims import check_claims
    from jmvae.experiments.table1.report import render_markdown

    models = {"vae": row(**{"active": 10, **change}), "jmvae-zero": row(**{"active": 10, **change})}
    first = check_claims(models)[0]  # JMVAE-zero's log p(x) >= the VAE's: true of these numbers
    assert first["holds"] is True and first["established"] is established
    assert first["verdict"] == ("holds" if established else "not established")
    table = render_markdown({"models": models, "claims": check_claims(models), "command": "jmvae", "hardware": "cpu"})
    assert ("**holds**" in table) is established


# -- 9. polish ----------------------------------------------------------------------------------


def on_a_terminal(*args: str) -> tuple[int, str]:
    """``python -m jmvae ARGS`` with its standard error on a pseudo-terminal (120 columns), as in
    a user's shell: (exit code, what it wrote there)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    with subprocess.Popen([sys.executable, "-m", "jmvae", *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=slave) as process:
        os.close(slave)
        chunks = []
        while select.select([master], [], [], 600)[0]:  # read as it writes: a full terminal would block it
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process has exited and closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=600)
    os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_the_progress_bar_counts_epochs_from_1(tmp_path):
    """On a terminal ``train`` draws tqdm's bar (elsewhere a line a minute: tests/test_progress.py),
    its epoch counted from 1 as the summary counts it."""
    code, err = on_a_terminal("train", "--epochs", "2", "--latent-dim", "4", "--hidden-dim", "16", "--threads", "1",
                              "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert "\r" in err and "step/s" in err, err  # the bar, redrawn in place
    assert "epoch=1" in err and "epoch=2" in err and "epoch=0" not in err, err


def test_the_reproduce_summary_says_1_claim_holds(tmp_path, monkeypatch, capsys):
    import jmvae.experiments.table1.runner

    claims = [{"holds": True, "established": True, "verdict": "holds"},
              {"holds": True, "established": False, "verdict": "not established"}]
    monkeypatch.setattr(jmvae.experiments.table1.runner, "reproduce", lambda *a, **k: {"models": {"vae": {}}, "claims": claims})
    assert main(["reproduce", "digits", "--out", str(tmp_path / "t")]) == 0
    assert "1 model, 1 claim holds, 1 not established" in capsys.readouterr().err


@pytest.mark.parametrize("jobs, threads, omp", [(["--jobs", "2"], None, None), (["--jobs", "2", "--threads", "1"], 1, None),
                                              (["--jobs", "2"], None, "3")])
def test_reproduce_workers_get_and_report_their_share_of_threads(tmp_path, monkeypatch, jobs, threads, omp):
    """--jobs 2 without --threads: the free cores shared out, this process too, so table1.md's
    hardware line says what each worker used; with OMP_NUM_THREADS set, torch's count in every
    process (so each row's own hardware record equals the table's)."""
    import jmvae.experiments.hardware
    import jmvae.experiments.table1.runner

    monkeypatch.setattr(cores, "busy_cores", lambda seconds=cores.SAMPLE_SECONDS: 0.0)
    if omp:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    else:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    parent = torch.get_num_threads()
    seen = {}

    def fake(data, config, command, **kwargs):
        seen.update(train=config.train.threads, torch=torch.get_num_threads(), hardware=jmvae.experiments.hardware.hardware())
        return {"models": {}, "claims": []}

    monkeypatch.setattr(jmvae.experiments.table1.runner, "reproduce", fake)
    assert main(["reproduce", "digits", "--out", str(tmp_path / "t"), *jobs]) == 0
    want = threads or (parent if omp else max(1, cores.usable_cores() // 2))
    assert seen["train"] == seen["torch"] == want
    assert f" {want} torch thread{'s' if want > 1 else ''}," in seen["hardware"]


def test_an_out_file_without_extension_names_the_fix(run, tmp_path):
    assert ".png" in one_line_error(jmvae("sample", str(run), "--out", str(tmp_path / "x")), "sample")
    assert not (tmp_path / "x").exists()


def test_predict_says_a_bad_file_is_not_an_image_and_honours_top_in_json(run, tmp_path, capsys):
    (tmp_path / "notanimage.png").write_bytes(b"plain text")
    assert main(["predict", str(run), "--image", str(tmp_path / "notanimage.png")]) == 2
    error = capsys.readouterr().err
    assert "not an image" in error and "upload" not in error
    assert main(["predict", str(run), "--image", str(digit_png(tmp_path / "d.png")), "--json", "--top", "3"]) == 0
    probabilities = json.loads(capsys.readouterr().out)["probabilities"]
    assert len(probabilities) == 3 and list(probabilities.values()) == sorted(probabilities.values(), reverse=True)


def test_edit_columns_are_labelled(run, tmp_path):
    image = digit_png(tmp_path / "d.png")
    assert main(["edit", str(run), "--image", str(image), "--set", "7", "--out", str(tmp_path / "e.png"), "--scale", "2"]) == 0
    pixels = np.asarray(Image.open(tmp_path / "e.png"))
    header = pixels[: pixels.shape[0] - 8 * 2 - 1]  # above the images (8x8, magnified twice, 1-pixel border)
    assert header.shape[0] >= 8 and (header < 128).any(), "a title above each column"


def test_weights_are_as_readable_as_the_other_files(run):
    folder = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert len(set(modes.values())) == 1, modes
    assert modes["model.safetensors"] == 0o666 & ~os.umask(os.umask(0o022))


@pytest.mark.parametrize("command, default", [("train", "(default: 100)"), ("train", "(default: 0)"), ("sample", "(default: 64)"),
                                              ("serve", "(default: 8000)"), ("reproduce", "(default: 1)")])
def test_help_shows_the_defaults(command, default, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert default in " ".join(capsys.readouterr().out.split())


def test_the_readme_names_every_model_the_help_offers():
    readme = (ROOT / "README.md").read_text()
    assert [m for m in TRAIN_MODELS if m not in readme] == []


def test_python_warnings_print_as_one_line_notes(tmp_path):
    """CelebA with images missing warns; the command line says so in one line, not a raw warning."""
    from test_celeba import make_celeba

    make_celeba(tmp_path / "data", n=6, missing=(1, 4))
    done = jmvae("train", "--data", "celeba", "--data-dir", str(tmp_path / "data"), "--max-steps", "1", "--batch-size", "2",
                 *TINY, "--out", str(tmp_path / "faces"), env={**os.environ, "JMVAE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and notes[0].startswith("jmvae train: note: celeba: 2 of 6 images"), done.stderr
    assert "Warning" not in done.stderr and "warnings.warn" not in done.stderr, done.stderr


def test_evaluating_one_test_point_prints_no_raw_warning(run):
    done = jmvae("evaluate", str(run), "--limit", "1", "--k", "2", "--n-prior", "2", "--no-progress")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "active units" in done.stdout


def test_the_figures_name_their_axes():
    from jmvae.plots import curves_figure, embed

    _, (x, y) = embed(torch.randn(50, 4), "pca", 0)
    assert "variance" in x and "variance" in y
    figure = curves_figure([{"epoch": 1, "step": 15, "loss": 3.0}, {"epoch": 2, "step": 30, "loss": 2.0}], "run")
    ticks = figure.axes[0].get_xticks()
    assert len(ticks) and all(float(t).is_integer() for t in ticks)
