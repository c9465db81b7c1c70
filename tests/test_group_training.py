"""Several models of one architecture trained together (jmvae.training.group): each member equals
its single run, diverges alone, resumes after a kill, and leaves an ordinary run folder."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from jmvae import checkpoint as ckpt
from jmvae import load_run, train
from jmvae.cli import main
from jmvae.data import DataInfo
from jmvae.models import build_model
from jmvae.training.group import GROUP_RECORD, GroupTraining, train_group

from helpers import jmvae, tiny_config, tiny_train

PAIRS = [(0.1, 0), (1.0, 1)]  # (alpha, seed): 24 steps of 64 an epoch on digits


def single(digits, alpha: float, seed: int, **train_settings):
    config = tiny_config(digits, alpha=alpha)
    return train(config, tiny_train(seed=seed, **train_settings), digits, None, progress=False)


def assert_weights_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], **tolerance) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], **tolerance, msg=key)


def test_members_start_from_their_single_runs_weights_exactly(digits, tmp_path):
    training = GroupTraining(tiny_config(digits), tiny_train(), digits, tmp_path, PAIRS, DataInfo("digits"), None)
    for (alpha, seed), member in zip(PAIRS, training.members):
        torch.manual_seed(seed)
        own = build_model(tiny_config(digits, alpha=alpha)).state_dict()
        assert all(torch.equal(own[k], v) for k, v in member.model.state_dict().items())
        assert member.batches.seed == seed and member.run.model.alpha == alpha and member.run.train.seed == seed


def test_members_trained_together_equal_their_single_runs(digits, tmp_path):
    """Within float tolerance, not bit for bit: a member's products are rows of batched products
    (bmm), a single run's are mm, and they sum in another order. The draws (order, binarisation,
    noise) and the initial weights are exactly a single run's (above)."""
    result = train_group(tiny_config(digits), tiny_train(epochs=2, max_steps=30), digits, tmp_path, PAIRS,
                         progress=False)
    assert result.step == 30 and result.epoch == 1
    for (alpha, seed), member in zip(PAIRS, result.members):
        alone = single(digits, alpha, seed, epochs=2, max_steps=30)
        assert_weights_close(member.model.state_dict(), alone.model.state_dict(), rtol=1e-4, atol=1e-5)
        assert [r["epoch"] for r in member.history] == [1]
        for key, value in alone.history[0].items():
            if key != "seconds":
                assert member.history[0][key] == pytest.approx(value, rel=1e-5, abs=1e-5), key
        run = load_run(tmp_path / member.name)  # an ordinary run folder
        assert run.config.model.alpha == alpha and run.config.train.seed == seed and run.state["step"] == 30
        assert_weights_close(run.model.state_dict(), member.model.state_dict(), rtol=0, atol=0)
    assert json.loads((tmp_path / GROUP_RECORD).read_text())["step"] == 30


def test_a_members_checkpoint_is_a_single_runs(digits, tmp_path):
    """The same files, tensors and state keys as a single run's, so the member folder resumes alone."""
    train_group(tiny_config(digits), tiny_train(max_steps=5), digits, tmp_path / "group", PAIRS, progress=False)
    train(tiny_config(digits, alpha=1.0), tiny_train(seed=1, max_steps=5), digits, tmp_path / "one", progress=False)
    member, one = ckpt.latest_checkpoint(tmp_path / "group" / "alpha1-seed1"), ckpt.latest_checkpoint(tmp_path / "one")
    for name in ("model.safetensors", "training_state.safetensors"):
        a, b = load_file(member / name), load_file(one / name)
        assert a.keys() == b.keys()
        for key in a:  # the streams' states are the same exactly; weights and moments to float tolerance
            exact = key.startswith("rng/") or key.endswith("/step")
            torch.testing.assert_close(a[key], b[key], rtol=0 if exact else 1e-4, atol=0 if exact else 1e-5, msg=key)
    assert json.loads((member / "state.json").read_text()).keys() == json.loads((one / "state.json").read_text()).keys()
    result = train(tiny_config(digits, alpha=1.0), tiny_train(seed=1, max_steps=10), digits,
                   tmp_path / "group" / "alpha1-seed1", resume=True, progress=False)
    assert result.step == 10


def test_a_poisoned_member_stops_alone_and_says_which(digits, tmp_path):
    config = tiny_train(epochs=2, max_steps=40)
    training = GroupTraining(tiny_config(digits), config, digits, tmp_path, PAIRS, DataInfo("digits"), None)

    def poison(step: int) -> None:  # after step 26 (in epoch 2), member 1's first weight becomes NaN
        if step == 26:
            with torch.no_grad():
                training.stack.parameters[0][1].fill_(float("nan"))

    training.on_step = poison
    result = training.run(False, False, False)
    good, bad = result.members
    assert good.diverged is None and bad.diverged is not None
    assert "member alpha1-seed1 diverged at step 27 (epoch 2)" in bad.diverged
    said = json.loads((tmp_path / "alpha1-seed1" / "divergence.json").read_text())
    assert said["member"] == "alpha1-seed1" and said["step"] == 27
    assert "alpha1-seed1" in json.loads((tmp_path / GROUP_RECORD).read_text())["diverged"]
    assert load_run(tmp_path / "alpha1-seed1").state["step"] == 24, "its last good checkpoint is kept"
    assert result.step == 40 and load_run(tmp_path / "alpha0.1-seed0").state["step"] == 40
    alone = single(digits, 0.1, 0, epochs=2, max_steps=40)
    assert_weights_close(good.model.state_dict(), alone.model.state_dict(), rtol=1e-4, atol=1e-5)
    resumed = train_group(tiny_config(digits), tiny_train(epochs=2), digits, tmp_path, PAIRS, resume=True,
                          progress=False)
    assert resumed.step == 48 and resumed.members[1].diverged is not None, "a diverged member stays out"


class Crash(Exception):
    pass


@pytest.mark.parametrize("where", ["between members' writes", "between members' commits"])
def test_a_crash_inside_a_group_checkpoint_resumes_like_the_uninterrupted_group(digits, tmp_path, monkeypatch, where):
    pairs = [(0.1, 0), (0.1, 1), (1.0, 0)]
    whole = train_group(tiny_config(digits), tiny_train(epochs=3), digits, tmp_path / "whole", pairs, progress=False)
    from jmvae.training import group

    calls = {"n": 0}
    name = "save_checkpoint" if where == "between members' writes" else "commit_checkpoint"
    original = getattr(group.ckpt, name)

    def crash_on_the_fifth(*args, **kwargs):  # epoch 1: three calls; epoch 2: the second member's
        calls["n"] += 1
        if calls["n"] == 5:
            raise Crash
        return original(*args, **kwargs)

    monkeypatch.setattr(group.ckpt, name, crash_on_the_fifth)
    with pytest.raises(Crash):
        train_group(tiny_config(digits), tiny_train(epochs=3), digits, tmp_path / "cut", pairs, progress=False)
    monkeypatch.setattr(group.ckpt, name, original)
    expected_step = 24 if name == "save_checkpoint" else 48  # the group's record is the commit
    assert json.loads((tmp_path / "cut" / GROUP_RECORD).read_text())["step"] == expected_step
    resumed = train_group(tiny_config(digits), tiny_train(epochs=3), digits, tmp_path / "cut", pairs, resume=True,
                          progress=False)
    for a, b in zip(whole.members, resumed.members):
        assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items()), "bit for bit"
        lines = (tmp_path / "cut" / b.name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


GROUP = ["train", "--seeds", "0,1", "--alpha", "0.1,1", "--epochs", "12", "--latent-dim", "4", "--hidden-dim", "32",
         "--no-progress", "--threads", "1"]


def weights_of(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: load_file(ckpt.latest_checkpoint(p) / "model.safetensors") for p in sorted(out.iterdir()) if p.is_dir()}


def test_sigkill_of_a_group_then_resume_ends_like_the_uninterrupted_group(tmp_path):
    assert main([*GROUP, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "cut"
    process = subprocess.Popen([sys.executable, "-m", "jmvae", *GROUP, "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / GROUP_RECORD).exists() or json.loads((out / GROUP_RECORD).read_text() or "{}").get("step") is None:
        assert time.monotonic() < deadline and process.poll() is None, "no group checkpoint appeared"
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    resumed = jmvae("train", "--resume", str(out), "--no-progress", "--threads", "1")
    assert resumed.returncode == 0, resumed.stderr
    whole, cut = weights_of(tmp_path / "whole"), weights_of(out)
    assert whole.keys() == cut.keys() == {"alpha0.1-seed0", "alpha0.1-seed1", "alpha1-seed0", "alpha1-seed1"}
    for name in whole:
        assert all(torch.equal(v, cut[name][k]) for k, v in whole[name].items()), name
        assert len((out / name / "metrics.jsonl").read_text().splitlines()) == 12


def test_cli_group_folders_evaluate_and_one_seed_is_a_single_run(tmp_path):
    out = tmp_path / "sweep"
    assert main(["train", "--seeds", "0,1", "--alpha", "0.1", "--max-steps", "5", "--latent-dim", "4",
                 "--hidden-dim", "16", "--no-progress", "--threads", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alpha0.1-seed0", "alpha0.1-seed1", GROUP_RECORD]
    evaluated = jmvae("evaluate", str(out / "alpha0.1-seed1"), "--k", "3", "--n-prior", "5", "--limit", "10",
                      "--threads", "1")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "log p(image" in evaluated.stdout
    one = tmp_path / "one"
    assert main(["train", "--seeds", "3", "--max-steps", "5", "--latent-dim", "4", "--hidden-dim", "16",
                 "--no-progress", "--threads", "1", "--out", str(one)]) == 0
    assert (one / "config.json").exists() and not (one / GROUP_RECORD).exists()
    assert load_run(one).config.train.seed == 3


def test_bf16_group_trains(digits, tmp_path):
    config = dataclasses.replace(tiny_train(max_steps=5), precision="bf16")
    result = train_group(tiny_config(digits), config, digits, tmp_path, PAIRS, progress=False)
    assert result.step == 5 and all(m.diverged is None for m in result.members)


def test_a_compiled_group_follows_the_eager_group(digits, tmp_path):
    """``--compile`` on a group: the stacked loss goes through torch.compile (one vmapped graph);
    after a few steps through a KL warm-up the members' weights equal the eager group's up to
    float rounding."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    settings = dict(max_steps=4, warmup_epochs=1.0)
    eager = train_group(tiny_config(digits), tiny_train(**settings), digits, tmp_path / "eager", PAIRS, progress=False)
    torch._dynamo.reset()
    counters.clear()
    compiled = train_group(tiny_config(digits), tiny_train(**settings, compile=True), digits, tmp_path / "compiled",
                           PAIRS, progress=False)
    assert counters["stats"]["unique_graphs"] == 1  # the warm-up's weight, a tensor, recompiles nothing
    assert json.loads((tmp_path / "compiled" / "alpha0.1-seed0" / "config.json").read_text())["train"]["compile"]
    for a, b in zip(eager.members, compiled.members):
        assert_weights_close(b.model.state_dict(), a.model.state_dict(), rtol=1e-4, atol=1e-5)
