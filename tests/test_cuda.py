"""The CUDA paths, where a GPU is present (skipped elsewhere; ``benchmarks/gpu_check.sh`` runs them
on the device machine): a group trained on the GPU equals single runs on the GPU, resumes bit for
bit after an interruption, trains under bf16, and leaves run folders that evaluate on the CPU."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from jmvae import EvalConfig, evaluate, load_run, train
from jmvae.training.group import train_group

from helpers import tiny_config, tiny_train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")

PAIRS = [(0.1, 0), (1.0, 1)]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], **tolerance) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].cpu(), b[key].cpu(), **tolerance, msg=key)


def test_a_group_on_the_gpu_equals_single_runs_on_the_gpu(digits, tmp_path):
    settings = dict(epochs=2, max_steps=30, device="cuda")
    result = train_group(tiny_config(digits), tiny_train(**settings), digits, tmp_path, PAIRS, progress=False)
    for (alpha, seed), member in zip(PAIRS, result.members):
        alone = train(tiny_config(digits, alpha=alpha), tiny_train(seed=seed, **settings), digits, None, progress=False)
        assert_close(member.model.state_dict(), alone.model.state_dict(), rtol=1e-4, atol=1e-5)
        assert next(member.model.parameters()).device.type == "cuda"


def test_a_gpu_group_resumed_ends_where_an_uninterrupted_one_does(digits, tmp_path):
    whole = train_group(tiny_config(digits), tiny_train(max_steps=20, device="cuda"), digits, tmp_path / "whole", PAIRS,
                        progress=False)
    train_group(tiny_config(digits), tiny_train(max_steps=9, device="cuda"), digits, tmp_path / "split", PAIRS,
                progress=False)
    resumed = train_group(tiny_config(digits), tiny_train(max_steps=20, device="cuda"), digits, tmp_path / "split",
                          PAIRS, resume=True, progress=False)
    for a, b in zip(whole.members, resumed.members):
        assert_close(a.model.state_dict(), b.model.state_dict(), rtol=0, atol=0)


def test_a_bf16_gpu_group_trains_and_its_folders_evaluate_on_the_cpu(digits, tmp_path):
    config = dataclasses.replace(tiny_train(max_steps=10, device="cuda", warmup_epochs=1.0), precision="bf16")
    result = train_group(tiny_config(digits), config, digits, tmp_path, PAIRS, progress=False)
    assert all(member.diverged is None for member in result.members)
    run = load_run(tmp_path / result.members[0].name)  # on the CPU
    evaluation = evaluate(run.model, digits.test, EvalConfig(k=5, n_prior=10, limit=20))
    assert evaluation.log_likelihood.joint is not None and evaluation.log_likelihood.joint < 0
