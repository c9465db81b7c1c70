"""Training: a tiny model overfits, seeded runs repeat exactly, resume equals never stopping."""

from __future__ import annotations

import json

import pytest
import torch

from jmvae import CheckpointError, DataError, JMVAEError, load_run, train
from jmvae.training import batches, loop, optim, step as training_step
from jmvae.checkpoint import latest_checkpoint, load_checkpoint
from jmvae.data import PairedData
from jmvae.generation import class_probabilities
from jmvae.training import DivergenceError

from helpers import tiny_config, tiny_train


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_tiny_model_overfits_a_batch(digits):
    """32 binary digits (binarization is then the identity): the bound improves a lot and the
    image encoder q(z|x) alone names every label."""
    batch = {k: v[:32] for k, v in digits.test.items()}
    small = PairedData(digits.name, digits.modalities, digits.classes, batch, batch)
    config = tiny_config(small, "jmvae-kl", alpha=1.0, latent=8, hidden=64)
    result = train(config, tiny_train(epochs=500, batch_size=32, lr=3e-3), small, progress=False)
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]
    probabilities = class_probabilities(result.model, batch, "label", ("image",))
    assert (probabilities.argmax(-1) == batch["label"]).all()


def test_seeded_runs_repeat_exactly_and_seeds_differ(digits):
    config = tiny_config(digits)
    a = params(train(config, tiny_train(max_steps=20), digits, progress=False).model)
    b = params(train(config, tiny_train(max_steps=20), digits, progress=False).model)
    c = params(train(config, tiny_train(max_steps=20, seed=1), digits, progress=False).model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_ends_bit_for_bit_where_an_uninterrupted_run_ends(digits, tmp_path):
    config = tiny_config(digits)
    whole = train(config, tiny_train(epochs=3), digits, tmp_path / "whole", progress=False)
    part = tiny_train(epochs=3, max_steps=30)  # stops mid-epoch 2 (24 steps per epoch)
    train(config, part, digits, tmp_path / "split", progress=False)
    resumed = train(config, tiny_train(epochs=3), digits, tmp_path / "split", resume=True, progress=False)
    assert resumed.step == whole.step == 72
    a, b = params(whole.model), params(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_resume_refuses_another_configuration(digits, tmp_path):
    train(tiny_config(digits), tiny_train(max_steps=2), digits, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="another model"):
        train(tiny_config(digits, "vae"), tiny_train(max_steps=4), digits, tmp_path / "run", resume=True, progress=False)


def test_nan_in_a_batch_stops_training_and_keeps_the_last_checkpoint(digits, tmp_path, monkeypatch):
    config = tiny_config(digits)
    train(config, tiny_train(epochs=1), digits, tmp_path / "run", progress=False)
    kept = latest_checkpoint(tmp_path / "run")
    weights_before = load_checkpoint(kept)[0]
    calls = []

    def poisoned_binarize(images, generator):
        calls.append(1)
        out = real_binarize(images, generator)
        return out.fill_(float("nan")) if len(calls) == 3 else out

    real_binarize = batches.binarize
    monkeypatch.setattr(batches, "binarize", poisoned_binarize)
    with pytest.raises(DivergenceError, match="step 27 .*learning rate.*checkpoint is kept"):
        train(config, tiny_train(epochs=2), digits, tmp_path / "run", resume=True, progress=False)
    assert latest_checkpoint(tmp_path / "run") == kept
    weights_after = load_checkpoint(kept)[0]
    assert all(torch.equal(weights_before[k], weights_after[k]) for k in weights_before)


HOST_READS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default"}


def test_training_steps_do_not_wait_on_the_device(digits):
    """Between the divergence checks every DIVERGENCE_CHECK_EVERY steps, a step never reads a
    tensor back to the host (item/bool/float, nonzero, boolean masks): on a GPU each such read
    stalls the queue of kernels. Counted at the dispatcher, so it holds on the CPU too."""
    from torch.utils._python_dispatch import TorchDispatchMode

    reads: list[int] = [0]
    per_step: dict[int, int] = {}

    class CountHostReads(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            reads[0] += str(func) in HOST_READS
            return func(*args, **(kwargs or {}))

    def on_step(step: int) -> None:
        per_step[step] = reads[0]

    steps_per_epoch = -(-digits.train["image"].shape[0] // 64)
    with CountHostReads():
        train(tiny_config(digits), tiny_train(max_steps=steps_per_epoch - 1), digits, progress=False, on_step=on_step)
    quiet = [s for s in range(2, steps_per_epoch) if (s - 1) % optim.DIVERGENCE_CHECK_EVERY]
    assert len(quiet) > 10 and all(per_step[s] == per_step[s - 1] for s in quiet), per_step


def test_a_skipped_bad_step_leaves_parameters_finite_until_the_check(digits, monkeypatch):
    """With the check deferred, fused Adam skips the non-finite step (found_inf): the error at the
    next check names that step, and the parameters it left behind are the previous step's."""
    calls, snapshots = [], {}
    real_binarize = batches.binarize

    def poisoned_binarize(images, generator):
        calls.append(1)
        out = real_binarize(images, generator)
        return out.fill_(float("nan")) if len(calls) == 4 else out

    monkeypatch.setattr(batches, "binarize", poisoned_binarize)
    built = []
    real_build = loop.build_model
    monkeypatch.setattr(loop, "build_model", lambda config: built.append(real_build(config)) or built[-1])

    def on_step(step: int) -> None:
        snapshots[step] = params(built[0])

    with pytest.raises(DivergenceError, match="step 4 "):  # counted from 1: the 4th step
        train(tiny_config(digits), tiny_train(max_steps=6), digits, progress=False, on_step=on_step)
    assert set(snapshots) == {1, 2, 3, 4, 5, 6}
    assert all(torch.equal(snapshots[3][k], snapshots[4][k]) for k in snapshots[3])  # step 3 (the 4th) was skipped
    assert all(torch.isfinite(v).all() for v in snapshots[6].values())
    assert not all(torch.equal(snapshots[4][k], snapshots[5][k]) for k in snapshots[4])  # later steps went on


@pytest.mark.parametrize("kind", ["vae", "cvae", "cmma", "jmvae-zero", "jmvae-kl"])
def test_every_loss_traces_as_one_graph(digits, kind):
    """What --compile relies on: no graph break in any model's loss inside the training loop."""
    import torch._dynamo

    model = loop.build_model(tiny_config(digits, kind))
    batch = {k: v[:8] for k, v in digits.train.items()}
    with model.labels_checked():
        explained = torch._dynamo.explain(model.loss)(batch, 0.5, 1.0, torch.randn(8, 4))
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons


def test_compiled_training_follows_eager_training_through_a_kl_warmup(digits):
    """--compile: the same parameters as eager up to float rounding; a KL weight that changes every
    step (warm-up) does not recompile (one static graph, then one with the weight symbolic)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    config, settings = tiny_config(digits), dict(max_steps=4, warmup_epochs=1.0)
    eager = params(train(config, tiny_train(**settings), digits, progress=False).model)
    torch._dynamo.reset()
    counters.clear()
    compiled = params(train(config, tiny_train(**settings, compile=True), digits, progress=False).model)
    assert counters["stats"]["unique_graphs"] <= 2
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-4, atol=1e-5)


def test_a_failed_compilation_is_one_line_and_saves_nothing(digits, tmp_path, monkeypatch):
    import torch._dynamo.exc

    def broken(fn):
        def call(*args):
            raise torch._dynamo.exc.InternalTorchDynamoError("No working C++ compiler found\nlong details")
        return call

    monkeypatch.setattr(training_step.torch, "compile", broken)
    with pytest.raises(JMVAEError, match=r"^torch.compile failed \(No working C\+\+ compiler found\); train without compiling$"):
        train(tiny_config(digits), tiny_train(max_steps=2, compile=True), digits, tmp_path / "run", progress=False)
    assert latest_checkpoint(tmp_path / "run") is None


def test_nan_in_the_data_is_refused_before_training(digits):
    bad = PairedData(digits.name, digits.modalities, digits.classes,
                     {**digits.train, "image": digits.train["image"].clone()}, digits.test)
    bad.train["image"][7, 0, 0] = float("nan")
    with pytest.raises(DataError, match="image.*NaN"):
        train(tiny_config(digits), tiny_train(max_steps=1), bad, progress=False)


def test_load_run_gives_the_trained_model(digits, tmp_path):
    result = train(tiny_config(digits), tiny_train(max_steps=5), digits, tmp_path / "run", progress=False)
    loaded = load_run(tmp_path / "run")
    model, run, state = loaded.model, loaded.config, loaded.state
    assert state["step"] == 5 and run.model == tiny_config(digits)
    a, b = params(result.model), params(model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corrupt_or_foreign_checkpoints_are_refused(digits, tmp_path):
    train(tiny_config(digits), tiny_train(max_steps=3), digits, tmp_path / "run", progress=False)
    folder = latest_checkpoint(tmp_path / "run")
    weights = folder / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    with pytest.raises(CheckpointError, match="truncated or modified"):
        load_run(tmp_path / "run")
    weights.write_bytes(original)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "version": 99}))
    with pytest.raises(CheckpointError, match="version 99"):
        load_run(tmp_path / "run")
    config["model"]["latent_dim"] = 5
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit this model"):
        load_run(tmp_path / "run")
    with pytest.raises(CheckpointError, match="not a folder"):
        load_run(tmp_path / "nowhere")


@pytest.mark.parametrize("fused", [True, False])
def test_clipping_inside_fused_adam_equals_clip_grad_norm(fused):
    """clip_gradients (the clip factor handed to fused Adam as its grad_scale, or applied in place)
    takes the same steps as torch's clip_grad_norm_ followed by Adam, clipped or not."""
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    optimizers = [torch.optim.Adam(n.parameters(), lr=1e-2, fused=fused) for n in nets]
    clipped_steps = 0
    for i in range(12):
        x = torch.randn(16, 5) * 3
        for net, optimizer in zip(nets, optimizers):
            optimizer.zero_grad()
            (net(x) ** 2).sum().backward()
        expected = torch.nn.utils.clip_grad_norm_(list(nets[0].parameters()), 30.0)
        got = optim.clip_gradients(optimizers[1], list(nets[1].parameters()), 30.0)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
        clipped_steps += int(expected > 30.0)
        for optimizer in optimizers:
            optimizer.step()
    assert 0 < clipped_steps < 12  # both cases were exercised
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_training_keeps_float32_weights_and_follows_the_float32_run(digits):
    """--train-precision bf16 (autocast): the matrix products take bfloat16 inputs, yet the
    weights, gradients and Adam stay float32; after 3 epochs on the digits the bound is within a
    few percent of the float32 run's, while the weights do differ (bf16 was really used)."""
    config = tiny_config(digits, hidden=64)
    runs = {p: train(config, tiny_train(epochs=3, precision=p), digits, progress=False) for p in ("fp32", "bf16")}
    weights = {p: params(r.model) for p, r in runs.items()}
    assert all(v.dtype == torch.float32 for v in weights["bf16"].values())
    assert not all(torch.equal(weights["fp32"][k], weights["bf16"][k]) for k in weights["fp32"])
    losses = {p: r.history[-1]["loss"] for p, r in runs.items()}
    assert abs(losses["bf16"] - losses["fp32"]) < 0.03 * abs(losses["fp32"]), losses
    with pytest.raises(ValueError, match="precision"):
        tiny_train(precision="fp16")
