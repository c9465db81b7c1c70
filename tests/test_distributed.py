"""Data parallelism: two gloo processes launched by torchrun follow the same parameters as one
process with the same global batch and seed, and sharded evaluation equals unsharded."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from jmvae.checkpoint import latest_checkpoint
from jmvae.distributed import World

MODEL = ["--latent-dim", "8", "--hidden-dim", "64", "--no-progress", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}", "--master-addr=127.0.0.1",
               f"--master-port={free_port()}", "-m", "jmvae", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def single(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jmvae", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    one, two = root / "one", root / "two"
    train = ["train", "--epochs", "2", "--batch-size", "50", *MODEL]  # 1500 digits: 30 steps, global batch 50
    done = single(*train, "--out", str(one))
    assert done.returncode == 0, done.stderr
    done = torchrun(*train, "--distributed", "--out", str(two))
    assert done.returncode == 0, done.stderr
    return one, two


def test_two_gloo_processes_match_one_process(runs):
    one, two = (load_file(latest_checkpoint(r) / "model.safetensors") for r in runs)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-4, rtol=1e-4, msg=name)
    metrics = [json.loads(line) for line in (runs[1] / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2], "rank 0 alone logs"


def test_sharded_evaluation_equals_unsharded(runs):
    args = ["evaluate", str(runs[0]), "--k", "20", "--n-prior", "30", "--limit", "57", "--eval-batch-size", "10", "--json",
            "--no-progress", "--threads", "1"]
    whole = single(*args)
    sharded = torchrun(*args)
    assert whole.returncode == 0 and sharded.returncode == 0, sharded.stderr
    a, b = json.loads(whole.stdout), json.loads(sharded.stdout.strip().splitlines()[-1])
    assert a["n_test"] == b["n_test"] == 57
    assert a["log_likelihood"] == b["log_likelihood"] and a["accuracy"] == b["accuracy"]


def test_distributed_flag_without_torchrun_is_refused(tmp_path):
    done = single("train", "--distributed", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "needs a torchrun launch" in done.stderr


@pytest.mark.parametrize("n, size", [(100, 2), (7, 3), (2, 4)])
def test_rows_split_every_global_row_once(n, size):
    parts = [World(rank, size).rows(n) for rank in range(size)]
    assert [i for p in parts for i in range(n)[p]] == list(range(n))
    assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_processes_leave_the_process_group_at_exit(tmp_path):
    """A gloo group left to the interpreter's exit aborted about one launch in three
    ("terminate called without an active exception"); setup registers the group's teardown."""
    script = tmp_path / "join.py"
    script.write_text(
        "import atexit, os, sys, torch.distributed as dist\n"
        "from jmvae import distributed\n"
        "report = os.path.join(sys.argv[1], 'rank' + os.environ['RANK'])\n"
        "atexit.register(lambda: open(report, 'a').write(f'initialized at exit: {dist.is_initialized()}'))\n"
        "world, _ = distributed.setup('cpu')\n"
        "distributed.barrier(world)\n"
        "open(report, 'w').write(f'joined {world.rank} of {world.size}; ')\n"
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1",
               f"--master-port={free_port()}", str(script), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}").read_text() == f"joined {rank} of 2; initialized at exit: False"
