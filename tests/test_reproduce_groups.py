"""``jmvae reproduce`` trains the pending pairs of rows of one architecture together
(jmvae.experiments.table1.groups): the same table as one by one, up to float rounding; resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jmvae import load_run
from jmvae.cli import main
from jmvae.experiments.table1.groups import group_of, member_lists

from helpers import jmvae

ROWS = "jmvae-kl(alpha=0.01),jmvae-kl(alpha=0.1),vae"
TINY = ("--models", ROWS, "--seeds", "0,1", "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "16", "--k", "5",
        "--n-prior", "10", "--limit", "20", "--no-progress", "--threads", "1")
MEMBERS = ["jmvae-kl-alpha0.01-seed0", "jmvae-kl-alpha0.01-seed1", "jmvae-kl-alpha0.1-seed0", "jmvae-kl-alpha0.1-seed1",
           "vae-seed0", "vae-seed1"]
TABLE_FILES = ("table1.json", "table1.md", "report.md")


def reproduce(out: Path, *args: str, capsys) -> tuple[int, str]:
    """``jmvae reproduce digits --out OUT TINY ARGS`` in this process (its exit status and stderr)."""
    code = main(["reproduce", "digits", "--out", str(out), *TINY, *args])
    return code, capsys.readouterr().err


def leaves(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, tree


def test_grouped_rows_give_the_table_of_one_by_one_and_a_second_run_has_nothing_to_do(tmp_path, capsys):
    grouped, alone = tmp_path / "grouped", tmp_path / "alone"
    code, log = reproduce(grouped, capsys=capsys)
    assert code == 0, log
    assert "[jmvae-kl x4] training alpha 0.01,0.1 x seeds 0,1 together" in log
    assert "[vae x2] training seeds 0,1 together" in log
    assert log.count("training to step 15 (at 0)") == 2  # once a group
    runs = grouped / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted([*MEMBERS, "group-jmvae-kl-alpha0.01,0.1-seeds0,1",
                                                            "group-vae-seeds0,1"])
    for name in MEMBERS:  # each member where run_dir puts its (row, seed), an ordinary run folder, measured
        assert load_run(runs / name).state["step"] == 15 and (runs / name / "evaluation.json").is_file()
    evaluated = jmvae("evaluate", str(runs / "jmvae-kl-alpha0.1-seed1"), "--k", "3", "--n-prior", "5", "--limit", "10",
                      "--threads", "1")
    assert evaluated.returncode == 0 and "log p(image" in evaluated.stdout, evaluated.stderr

    code, log = reproduce(alone, "--no-group", capsys=capsys)
    assert code == 0 and "together" not in log and log.count("training to step 15 (at 0)") == 6, log
    a, b = (json.loads((out / "table1.json").read_text())["models"] for out in (grouped, alone))
    assert list(a) == list(b) == ["vae", "jmvae-kl(alpha=0.01)", "jmvae-kl(alpha=0.1)"]
    assert all(a[name]["seeds"] == [0, 1] for name in a)
    a_leaves, b_leaves = dict(leaves(a)), dict(leaves(b))
    assert a_leaves.keys() == b_leaves.keys()  # the same format
    for path, value in a_leaves.items():
        if path[-1] in ("train_seconds", "eval_seconds") or "measured" in path:  # each command records itself
            continue
        if isinstance(value, float):  # members equal single runs up to float rounding (test_group_training.py)
            assert value == pytest.approx(b_leaves[path], rel=1e-5, abs=1e-5), path
        else:
            assert value == b_leaves[path], path

    written = {name: (grouped / name).read_bytes() for name in TABLE_FILES}
    code, log = reproduce(grouped, capsys=capsys)
    assert code == 0 and "nothing to do" in log and "together" not in log and "training" not in log
    assert all((grouped / name).read_bytes() == content for name, content in written.items())


def test_a_group_resumes_to_more_steps_and_a_pair_trained_alone_resumes_alone(tmp_path, capsys):
    out = tmp_path / "t"
    code, log = reproduce(out, "--models", "jmvae-kl(alpha=0.1)", "--max-steps", "5", capsys=capsys)
    assert code == 0 and "[jmvae-kl x2] training alpha 0.1 x seeds 0,1 together" in log, log
    code, log = reproduce(out, "--models", "vae", "--no-group", "--max-steps", "5", capsys=capsys)
    assert code == 0 and "together" not in log, log
    code, log = reproduce(out, "--models", "jmvae-kl(alpha=0.1),vae", capsys=capsys)  # 15 steps, one epoch
    assert code == 0, log
    assert "[jmvae-kl x2] training to step 15 (at 5)" in log, "the group resumed from its record"
    assert "[vae x2]" not in log and log.count("training to step 15 (at 5)") == 3, "vae's seeds trained alone"
    for name in ("jmvae-kl-alpha0.1-seed0", "jmvae-kl-alpha0.1-seed1", "vae-seed0", "vae-seed1"):
        assert load_run(out / "runs" / name).state["step"] == 15
        lines = (out / "runs" / name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == [15], name
    assert json.loads((out / "runs" / "group-jmvae-kl-alpha0.1-seeds0,1" / "group.json").read_text())["step"] == 15
    models = json.loads((out / "table1.json").read_text())["models"]
    assert all(models[name]["steps"] == 15 and models[name]["seeds"] == [0, 1] for name in ("vae", "jmvae-kl(alpha=0.1)"))


def test_sigterm_stops_two_groups_in_workers_and_the_command_resumes_them(tmp_path):
    out = tmp_path / "t"
    command = [sys.executable, "-m", "jmvae", "reproduce", "digits", "--out", str(out), *TINY, "--models",
               "jmvae-kl(alpha=0.1),vae", "--epochs", "30", "--jobs", "2"]  # 450 steps; a group a worker
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    records = [out / "runs" / folder / "group.json" for folder in ("group-jmvae-kl-alpha0.1-seeds0,1", "group-vae-seeds0,1")]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(p.is_file() and json.loads(p.read_text() or "{}").get("step")
                                                  for p in records):
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait(timeout=180) == 130, rest
    assert "running 4 models (2 groups) in 2 worker processes" in rest and rest.count("checkpoint saved") == 2, rest
    steps = [json.loads(p.read_text())["step"] for p in records]
    assert all(0 < step < 450 for step in steps), steps
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    for tag, step in zip(("jmvae-kl x2", "vae x2"), steps):
        assert f"[{tag}] training to step 450 (at {step})" in resumed.stderr
    models = json.loads((out / "table1.json").read_text())["models"]
    assert all(models[name]["seeds"] == [0, 1] and models[name]["steps"] == 450 for name in ("vae", "jmvae-kl(alpha=0.1)"))


def test_a_groups_folder_names_its_members_whatever_their_order():
    kl = [("jmvae-kl(alpha=0.1)", 1), ("jmvae-kl(alpha=0.01)", 1), ("jmvae-kl(alpha=0.1)", 0), ("jmvae-kl(alpha=0.01)", 0),
          ("jmvae-kl(alpha=1)", 2)]
    assert member_lists("jmvae-kl", kl) == [("0.01,0.1", "0,1"), ("1", "2")]
    assert group_of("jmvae-kl", kl).folder == "group-jmvae-kl-alpha0.01,0.1-seeds0,1+alpha1-seeds2"
    assert group_of("jmvae-kl", kl).folder == group_of("jmvae-kl", list(reversed(kl))).folder
    vae = group_of("vae", [("vae", 2), ("vae", 0)])
    assert vae.folder == "group-vae-seeds0,2" and vae.tag == "vae x2" and vae.members() == "seeds 0,2"
