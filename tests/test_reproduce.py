"""``jmvae reproduce`` over several training seeds: per-seed runs, means and spreads, reuse."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jmvae.experiments.table1.report import render_markdown
from jmvae.experiments.table1.rows import seed_rows
from jmvae.experiments.table1.store import combine_seeds

ROW = "jmvae-kl(alpha=0.1)"
TINY = ("--models", ROW, "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "16", "--k", "5", "--n-prior", "10",
        "--limit", "20", "--no-progress")


def reproduce(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jmvae", "reproduce", "digits", "--out", str(out), *TINY, *args],
                          capture_output=True, text=True, timeout=600)


def cells(row: dict) -> list[float | None]:
    ll = row["log_likelihood"]
    return [ll["image"]["multiple"], ll["image"]["single"], ll["image|label"]["multiple"], ll["image|label"]["single"],
            ll["joint"]]


def test_several_seeds_give_means_and_spreads_and_reuse_a_single_seed_run(tmp_path):
    out = tmp_path / "table"
    single = reproduce(out, "--seed", "0")
    assert single.returncode == 0, single.stderr
    seed0 = json.loads((out / "table1.json").read_text())["models"][ROW]
    assert seed0["seed"] == 0 and "per_seed" not in seed0

    both = reproduce(out, "--seeds", "0,1")
    assert both.returncode == 0, both.stderr
    assert both.stderr.count("already in") == 1 and both.stderr.count("training to step") == 1  # seed 0 reused
    assert (out / "runs" / "jmvae-kl-alpha0.1-seed1" / "evaluation.json").is_file()
    assert not (out / "runs" / "jmvae-kl-alpha0.1-seed0").exists()  # seed 0 stays in the single-seed folder
    row = json.loads((out / "table1.json").read_text())["models"][ROW]
    assert row["seeds"] == [0, 1] and row["protocol"]["seeds"] == [0, 1] and "seed" not in row["protocol"]
    runs = [row["per_seed"]["0"], row["per_seed"]["1"]]
    assert runs[0] == seed0 and runs[1]["seed"] == 1
    assert cells(runs[0]) != cells(runs[1])  # another seed trains another model
    for mean, std, *values in zip(cells(row), cells({"log_likelihood": row["seed_std"]["log_likelihood"]}),
                                  *map(cells, runs)):
        assert mean == pytest.approx(statistics.fmean(values)) and std == pytest.approx(statistics.stdev(values))
    coherence = [r["coherence"]["image|label"] for r in runs]
    assert row["coherence"]["image|label"] == pytest.approx(statistics.fmean(coherence))
    assert row["coherence"]["n_seeds"] == 2
    units = [r["active_units"]["image+label"] for r in runs]
    assert row["active_units"]["image+label"] == pytest.approx(statistics.fmean(units))
    # the table was assembled by two commands: each seed names its own, not the last one's
    assert all(r["measured"]["command"].startswith("jmvae reproduce digits") for r in runs)
    assert "--seed 0" in runs[0]["measured"]["command"] and "--seeds 0,1" in runs[1]["measured"]["command"]
    lines = (out / "table1.md").read_text().splitlines()
    assert "## Where each row was measured" in lines and lines[2].startswith("Rows measured by several commands")
    for seed, r in enumerate(runs):
        line = f"| {ROW} | {seed} | fp32 | {r['measured']['hardware']} | `{r['measured']['command']}` |"
        assert line in lines, line
    assert row["seed_std"]["active_units"]["image+label"] == pytest.approx(statistics.stdev(units))
    table = (out / "table1.md").read_text()
    assert f"{row['log_likelihood']['joint']:.2f} ± {row['seed_std']['log_likelihood']['joint']:.2f}" in table
    assert "| 0, 1 |" in table and "mean ± the sample standard deviation" in table

    again = reproduce(out, "--seeds", "0,1")
    assert again.returncode == 0 and again.stderr.count("already in") == 2 and "training" not in again.stderr

    # rows measured before active units were counted get them from their checkpoints, the same counts
    table = json.loads((out / "table1.json").read_text())
    for seed, seed_row in table["models"][ROW]["per_seed"].items():
        del seed_row["active_units"]
        folder = out / "runs" / ("jmvae-kl-alpha0.1" if seed == "0" else "jmvae-kl-alpha0.1-seed1")
        stored = json.loads((folder / "evaluation.json").read_text())
        (folder / "evaluation.json").write_text(json.dumps({k: v for k, v in stored.items() if k != "active_units"}))
    (out / "table1.json").write_text(json.dumps(table))
    filled = reproduce(out, "--seeds", "0,1")
    assert filled.returncode == 0 and "training" not in filled.stderr
    assert filled.stderr.count("adding what it was measured without: active_units") == 2
    after = json.loads((out / "table1.json").read_text())["models"][ROW]["per_seed"]
    assert [after[s]["active_units"] for s in "01"] == [r["active_units"] for r in runs]

    one = reproduce(out, "--seed", "0")  # a single-seed command keeps the row's other seeds
    assert one.returncode == 0 and "training" not in one.stderr
    assert json.loads((out / "table1.json").read_text())["models"][ROW]["seeds"] == [0, 1]


def test_a_run_folder_of_another_seed_is_refused_and_the_table_kept(tmp_path):
    out = tmp_path / "table"
    assert reproduce(out, "--seed", "0").returncode == 0
    before = (out / "table1.json").read_bytes()
    other = reproduce(out, "--seed", "1")
    assert other.returncode == 2
    assert other.stderr.strip().splitlines()[-1].endswith(
        "holds a run trained with seed 0, not 1; use another --runs (or --out) folder, or remove that run folder")
    assert (out / "table1.json").read_bytes() == before


@pytest.mark.parametrize("flags, message", [(("--seeds", "0,0"), "repeats a seed"),
                                            (("--seeds", "0,x"), "not a comma-separated list of integers"),
                                            (("--seed", "3", "--seeds", "0,1"), "give --seed or --seeds, not both")])
def test_bad_seed_flags_exit_2(tmp_path, flags, message):
    done = reproduce(tmp_path / "t", *flags)
    assert done.returncode == 2 and message in done.stderr and not (tmp_path / "t" / "table1.json").exists()


def test_one_seed_is_its_own_row():
    row = {"model": ROW, "k": 5, "n_prior": 10, "n_test": 20, "epochs": 1, "steps": 15, "seed": 3,
           "log_likelihood": {"image": {"multiple": -90.0, "single": -89.0}, "image|label": {"multiple": -88.0, "single": None},
                              "joint": -91.0},
           "accuracy": {"label|image": 0.9}, "coherence": None, "train_seconds": 1.0, "eval_seconds": 2.0,
           "protocol": {"data": "digits", "seed": 3}}
    assert combine_seeds({3: row}) is row and seed_rows(row) == {3: row}
    markdown = render_markdown({"models": {ROW: row}, "claims": [], "command": "c", "hardware": "h"})
    assert "| -90.00 | -89.00 | -88.00 | — | -91.00 | 0.9000 | — | — | 3 |" in markdown
    two = combine_seeds({3: row, 1: {**row, "seed": 1, "protocol": {"data": "digits", "seed": 1}}})
    assert two["seeds"] == [1, 3] and seed_rows(two) == {1: two["per_seed"]["1"], 3: row}
    assert two["seed_std"]["log_likelihood"]["image"] == {"multiple": 0.0, "single": 0.0}
    assert two["seed_std"]["log_likelihood"]["image|label"]["single"] is None


def test_a_table_of_one_command_names_it_alone_and_older_rows_say_not_recorded():
    """The header names the command that measured every row (and the one that last wrote the file
    where that measured none), and the training precision; rows from before rows kept their own
    record read "not recorded" beside a row that has one."""
    row = {"model": ROW, "k": 5, "n_prior": 10, "n_test": 20, "epochs": 1, "steps": 15, "seed": 3,
           "log_likelihood": {"image": {"multiple": -90.0, "single": -89.0}, "image|label": {"multiple": -88.0, "single": None},
                              "joint": -91.0},
           "accuracy": {"label|image": 0.9}, "coherence": None, "train_seconds": 1.0, "eval_seconds": 2.0,
           "protocol": {"data": "digits", "seed": 3, "train_precision": "bf16"},
           "measured": {"command": "jmvae reproduce a", "hardware": "cpu A", "day": "2026-12-07"}}
    alone = render_markdown({"models": {ROW: row}, "claims": [], "command": "jmvae reproduce a", "hardware": "cpu A"})
    assert "Command: `jmvae reproduce a`  \nHardware: cpu A  \nTraining precision: bf16\n" in alone
    assert "Where each row was measured" not in alone and "written last" not in alone
    reread = render_markdown({"models": {ROW: row}, "claims": [], "command": "jmvae reproduce b", "hardware": "cpu B"})
    assert "Command: `jmvae reproduce a`  \nHardware: cpu A  \nTraining precision: bf16  \n" in reread
    assert "written last by `jmvae reproduce b`, which measured none of its rows" in reread
    older = {key: value for key, value in row.items() if key != "measured"}
    fp32 = {**older, "model": "vae", "protocol": {"data": "digits", "seed": 3}}
    before = render_markdown({"models": {ROW: older, "vae": fp32}, "claims": [], "command": "c", "hardware": "h"})
    assert f"Command: `c`  \nHardware: h  \nTraining precision: per row, {ROW} bf16, vae fp32\n" in before
    assert "Where each row was measured" not in before
    mixed = render_markdown({"models": {ROW: {**row, "measured": {"command": "jmvae reproduce 'a|b'", "hardware": "cpu A"}},
                                        "vae": fp32}, "claims": [], "command": "jmvae reproduce b", "hardware": "cpu B"})
    assert "the last to write this file: `jmvae reproduce b`" in mixed
    assert f"| {ROW} | 3 | bf16 | cpu A | `jmvae reproduce 'a\\|b'` |" in mixed
    assert "| vae | 3 | fp32 | not recorded | not recorded |" in mixed


def test_coherence_judged_by_commands_whose_judges_differ_gives_their_range():
    def row(name: str, accuracy: float) -> dict:
        return {"model": name, "k": 5, "n_prior": 10, "n_test": 20, "epochs": 1, "steps": 15, "seed": 0,
                "log_likelihood": {"image": {"multiple": None, "single": None},
                                   "image|label": {"multiple": -88.0, "single": None}, "joint": None},
                "accuracy": {}, "train_seconds": 1.0, "eval_seconds": 2.0, "protocol": {"data": "digits", "seed": 0},
                "coherence": {"image|label": 0.9, "per_class": 10, "chance": 0.1, "judge_test_accuracy": accuracy}}

    one = render_markdown({"models": {"cvae": row("cvae", 0.97)}, "claims": [], "command": "c", "hardware": "h"})
    assert "(an MLP fitted on the real training images; 0.9700 accurate" in one
    two = render_markdown({"models": {"cvae": row("cvae", 0.97), "cmma": row("cmma", 0.9741)}, "claims": [],
                           "command": "c", "hardware": "h"})
    assert "0.9700 to 0.9741 accurate on the real test images: each command fits its own" in two


def test_worker_processes_give_the_table_of_one_process(tmp_path):
    flags = ("--seeds", "0,1", "--threads", "1", "--no-group")  # each seed a unit of its own
    one, two = tmp_path / "one", tmp_path / "two"
    assert reproduce(one, *flags).returncode == 0
    done = reproduce(two, *flags, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "in 2 worker processes, 1 thread each" in done.stderr and done.stderr.count("] done") == 2
    assert "Where each row was measured" not in (two / "table1.md").read_text()  # one command measured every row
    rows = [json.loads((out / "table1.json").read_text())["models"][ROW] for out in (one, two)]
    for seed in ("0", "1"):  # bit for bit: each seed trains on one thread either way
        a, b = (row["per_seed"][seed] for row in rows)
        assert a["log_likelihood"] == b["log_likelihood"] and a["coherence"] == b["coherence"]
    assert rows[0]["seed_std"] == rows[1]["seed_std"]


def test_a_single_seed_command_resumes_that_seeds_run_of_a_several_seed_command(tmp_path):
    """``--seeds 1,2`` trains in RUNS/<row>-seed1 and -seed2; ``--seed 1`` afterwards (one seed left
    to finish, on more threads) continues RUNS/<row>-seed1 instead of starting again elsewhere."""
    out = tmp_path / "table"
    assert reproduce(out, "--seeds", "1,2", "--max-steps", "3").returncode == 0
    one = reproduce(out, "--seed", "1", "--max-steps", "6")
    assert one.returncode == 0, one.stderr
    assert f"training to step 6 (at 3) in {out / 'runs' / 'jmvae-kl-alpha0.1-seed1'}" in one.stderr
    assert not (out / "runs" / "jmvae-kl-alpha0.1").exists()
    row = json.loads((out / "table1.json").read_text())["models"][ROW]
    assert row["seed"] == 1 and row["steps"] == 6  # measured anew at 6 steps (another protocol: seed 2's 3 steps go)


def test_a_failing_worker_stops_the_run_with_one_line(tmp_path):
    out = tmp_path / "table"
    assert reproduce(out, "--seeds", "0,1", "--max-steps", "3").returncode == 0
    seed1 = out / "runs" / "jmvae-kl-alpha0.1-seed1"
    config = json.loads((seed1 / "config.json").read_text())
    config["train"]["seed"] = 7  # as if another seed's run sat in seed 1's folder
    (seed1 / "config.json").write_text(json.dumps(config))
    before = (out / "table1.json").read_bytes()
    done = reproduce(out, "--seeds", "0,1", "--jobs", "2")  # more steps: both seeds train again
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("holds a run trained with seed 7, not 1; use another --runs "
                                                         "(or --out) folder, or remove that run folder")
    table = json.loads((out / "table1.json").read_text())["models"][ROW]
    assert table["per_seed"]["1"] == json.loads(before)["models"][ROW]["per_seed"]["1"]  # seed 1's row is kept


def test_ctrl_c_stops_every_worker_with_a_checkpoint_and_the_command_resumes(tmp_path):
    out = tmp_path / "table"
    command = [sys.executable, "-m", "jmvae", "reproduce", "digits", "--out", str(out), *TINY, "--epochs", "100",
               "--seeds", "0,1,2", "--jobs", "2", "--no-group"]  # 1,500 steps a seed; seed 2 waits for a free worker
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    latest = [out / "runs" / f"jmvae-kl-alpha0.1-seed{seed}" / "checkpoints" / "latest" for seed in (0, 1)]
    deadline = time.monotonic() + 300
    while not all(path.exists() for path in latest) and time.monotonic() < deadline:  # both seeds training
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: signal the whole process group
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 130, rest
    assert rest.count("checkpoint saved") == 2 and rest.strip().endswith("interrupted"), rest
    assert not (out / "table1.json").exists() or ROW not in json.loads((out / "table1.json").read_text())["models"]
    for path in latest:
        assert 0 < int(path.read_text().strip().split("-")[1]) < 1500  # stopped part way, with a checkpoint
    assert not (out / "runs" / "jmvae-kl-alpha0.1-seed2").exists()  # nothing starts after Ctrl-C
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("(at 0)") == 1 and resumed.stderr.count("training to step 1500") == 3
    assert json.loads((out / "table1.json").read_text())["models"][ROW]["seeds"] == [0, 1, 2]


def test_an_mnist_table_shows_each_joint_cell_beside_the_published_one():
    """A user's MNIST table shows the paper's Table 3 cell and the reproductions beside its own
    (and how far apart); other data sets get no such section."""
    import copy

    from jmvae.experiments.table1.references import PAPER_TABLE_3

    committed = json.loads((Path(__file__).resolve().parents[1] / "results" / "mnist" / "table1.json").read_text())
    markdown = render_markdown(committed)
    ours = committed["models"]["jmvae-kl(alpha=0.1)"]["log_likelihood"]["joint"]
    paper = PAPER_TABLE_3["jmvae-kl(alpha=0.1)"]
    assert f"| jmvae-kl(alpha=0.1) | {ours:.2f} | {paper:.2f} | {ours - paper:+.2f} | the paper (Table 3) |" in markdown
    assert "| MultiVae (500 epochs" in markdown
    digits = copy.deepcopy(committed)
    for row in digits["models"].values():
        row["protocol"]["data"] = "digits"
    assert "Beside the published numbers" not in render_markdown(digits)


def test_a_row_is_reused_only_under_the_same_training_settings(tmp_path):
    """The protocol holds the training settings that shape the model: a row trained without a KL
    warm-up is not reported for a command with one, and its run folder is not resumed under it."""
    out = tmp_path / "table"
    assert reproduce(out, "--max-steps", "3").returncode == 0
    row = json.loads((out / "table1.json").read_text())["models"][ROW]
    assert {k: row["protocol"][k] for k in ("warmup", "warmup_all_kl", "lr", "batch_size", "clip", "latent_dim")} == {
        "warmup": 0.0, "warmup_all_kl": False, "lr": 1e-3, "batch_size": 100, "clip": 5.0, "latent_dim": 4}
    again = reproduce(out, "--max-steps", "3")
    assert again.returncode == 0 and "nothing to do" in again.stderr  # the same settings: kept
    before = (out / "table1.json").read_bytes()
    warm = reproduce(out, "--max-steps", "3", "--warmup", "1")
    assert warm.returncode == 2
    assert warm.stderr.strip().splitlines()[-1].endswith(
        "holds a run trained with KL warm-up epochs 0.0, not 1.0; use another --runs (or --out) folder, or remove that run folder")
    assert (out / "table1.json").read_bytes() == before  # nothing already saved is lost
    other = reproduce(tmp_path / "warm", "--max-steps", "3", "--warmup", "1")
    assert other.returncode == 0, other.stderr
    warm_row = json.loads((tmp_path / "warm" / "table1.json").read_text())["models"][ROW]
    assert warm_row["protocol"]["warmup"] == 1.0


def test_rows_stored_before_the_training_settings_were_recorded_read_as_the_defaults():
    from jmvae.experiments.table1.store import same_protocol

    old = {"protocol": {"data": "mnist", "steps": 60000, "seed": 0, "k": 1000, "n_prior": 5000, "limit": None,
                        "eval_seed": 0}}
    now = {**old["protocol"], "precision": "fp32", "train_precision": "fp32", "batch_size": 100, "lr": 1e-3,
           "clip": 5.0, "warmup": 0.0, "warmup_all_kl": False, "latent_dim": 64, "hidden_dim": 512}
    assert same_protocol(old, now) and not same_protocol(old, {**now, "warmup": 100.0})
