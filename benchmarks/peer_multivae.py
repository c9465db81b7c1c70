"""MultiVae's JMVAE on the paper's MNIST model: training samples/s after warm-up.

Two modes (``--mode``):

- ``trainer`` (default): ``multivae.models.JMVAE`` trained by MultiVae's own
  ``multivae.trainers.BaseTrainer`` on MultiVae's own MNIST dataset class
  ``multivae.data.datasets.MnistLabels`` (torchvision MNIST underneath, each image re-binarized
  per item in ``__getitem__``, batches from a torch DataLoader), as a user of the library would.
  Steps are counted and timed by a ``TrainingCallback`` (``on_train_step_end``); after the last
  timed step the callback stops the run (no final model save). ``--dataset base`` swaps
  MnistLabels for a plain ``MultimodalBaseDataset`` of tensors (images binarized once, so the
  per-item Bernoulli of MnistLabels is out of the measurement).
- ``bare``: the same model's forward (its loss) + backward + clip_grad_norm_(5) + Adam step in a
  hand loop over in-memory tensors re-binarized per batch (common.TensorBatches) -- MultiVae's
  model cost without its trainer and data pipeline.

Architecture (SETUP.md), as custom MultiVae/Pythae networks: joint encoder (BaseJointEncoder)
x -> 512 ReLU and w -> 512 ReLU, concatenated -> 512 ReLU -> mean and softplus variance (MultiVae
wants a log-variance, so the encoders return log(softplus(.))); unimodal encoders (BaseEncoder)
784-512-512 and 10-512-512; decoders (BaseDecoder) 64-512-512-784 (``"bernoulli"``, logits) and
64-512-512-10 (``"categorical"``, logits). JMVAEConfig: latent_dim 64, alpha 0.1, warmup 0
(MultiVae's default is a 10-epoch linear warm-up of both KL terms; the paper's objective has none).
Adam lr 1e-3, batch 100. MultiVae's trainer has no gradient clipping: the trainer mode runs
without it; the bare mode clips at 5 (``--clip``).

    /work/peers-venv/bin/python benchmarks/peer_multivae.py --mode trainer --steps 300 --warmup 30
    /work/peers-venv/bin/python benchmarks/peer_multivae.py --mode bare --steps 300 --warmup 30
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F
from torch import nn

import common

from multivae.data.datasets import MnistLabels, MultimodalBaseDataset  # noqa: E402
from multivae.models import JMVAE, JMVAEConfig  # noqa: E402
from multivae.models.nn import BaseJointEncoder  # noqa: E402
from multivae.trainers import BaseTrainer, BaseTrainerConfig  # noqa: E402
from multivae.trainers.base.callbacks import ProgressBarCallback, TrainingCallback  # noqa: E402
from pythae.data.datasets import DatasetOutput  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn.base_architectures import BaseDecoder, BaseEncoder  # noqa: E402

X, W, Z, H = common.X_DIM, common.W_DIM, common.Z_DIM, common.HIDDEN
# Shapes of MultiVae's MnistLabels items: image (1, 28, 28), one-hot label (1, 10).
SHAPES = {"images": (1, 28, 28), "labels": (1, W)}


def flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def log_var(pre: torch.Tensor) -> torch.Tensor:
    """The paper's variance is softplus(.); MultiVae's encoders return its log."""
    return torch.log(F.softplus(pre))


class JointEncoder(BaseJointEncoder):
    """q(z | x, w): x -> 512 ReLU, w -> 512 ReLU, concatenated -> 512 ReLU -> mean, log variance."""

    def __init__(self) -> None:
        BaseJointEncoder.__init__(self)
        self.latent_dim = Z
        self.fc_x = nn.Linear(X, H)
        self.fc_w = nn.Linear(W, H)
        self.fc = nn.Linear(2 * H, H)
        self.fc_mean = nn.Linear(H, Z)
        self.fc_var = nn.Linear(H, Z)

    def forward(self, x: dict) -> ModelOutput:
        h = torch.cat([F.relu(self.fc_x(flat(x["images"]))), F.relu(self.fc_w(flat(x["labels"])))], dim=-1)
        h = F.relu(self.fc(h))
        return ModelOutput(embedding=self.fc_mean(h), log_covariance=log_var(self.fc_var(h)))


class Encoder(BaseEncoder):
    """q(z | m): D -> 512 -> 512 (ReLU) -> mean, log variance."""

    def __init__(self, in_dim: int) -> None:
        BaseEncoder.__init__(self)
        self.latent_dim = Z
        self.fc1 = nn.Linear(in_dim, H)
        self.fc2 = nn.Linear(H, H)
        self.fc_mean = nn.Linear(H, Z)
        self.fc_var = nn.Linear(H, Z)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = F.relu(self.fc2(F.relu(self.fc1(flat(x)))))
        return ModelOutput(embedding=self.fc_mean(h), log_covariance=log_var(self.fc_var(h)))


class Decoder(BaseDecoder):
    """p(m | z): 64 -> 512 -> 512 (ReLU) -> D logits, shaped as the modality."""

    def __init__(self, out_shape: tuple[int, ...]) -> None:
        BaseDecoder.__init__(self)
        self.out_shape = tuple(out_shape)
        self.fc1 = nn.Linear(Z, H)
        self.fc2 = nn.Linear(H, H)
        self.fc3 = nn.Linear(H, math.prod(out_shape))

    def forward(self, z: torch.Tensor) -> ModelOutput:
        h = F.relu(self.fc2(F.relu(self.fc1(z))))
        return ModelOutput(reconstruction=self.fc3(h).reshape(*z.shape[:-1], *self.out_shape))


def build_model(alpha: float) -> JMVAE:
    config = JMVAEConfig(
        n_modalities=2,
        latent_dim=Z,
        input_dims=dict(SHAPES),
        decoders_dist={"images": "bernoulli", "labels": "categorical"},
        alpha=alpha,
        warmup=0,
    )
    # Built in the order of plain_loop.py's modules, so that with the same seed the initial
    # weights are the same (a cross-check of the objectives).
    joint = JointEncoder()
    encoders = {"images": Encoder(X), "labels": Encoder(W)}
    decoders = {"images": Decoder(SHAPES["images"]), "labels": Decoder(SHAPES["labels"])}
    return JMVAE(config, encoders=encoders, decoders=decoders, joint_encoder=joint)


# ---------------------------------------------------------------- trainer mode


class _Done(Exception):
    """Raised by the timing callback after the last timed step to end BaseTrainer.train()."""


class TimingCallback(TrainingCallback):
    def __init__(self, timer: common.StepTimer) -> None:
        self.timer = timer

    def on_train_step_end(self, training_config, **kwargs):
        if self.timer.step_done():
            raise _Done


def train_dataset(kind: str, args) -> tuple[MultimodalBaseDataset, str]:
    if kind == "mnistlabels":
        root = common.torchvision_mnist_root(args.data_dir)
        if root is not None:
            ds = MnistLabels(data_path=root, split="train", download=False, random_binarized=True)
            if args.limit is not None:
                ds.images, ds.labels = ds.images[: args.limit], ds.labels[: args.limit]
                ds.labels_one_hot = ds.labels_one_hot[: args.limit]
            return ds, "mnist"
        # No MNIST here: MnistLabels' own __getitem__ on MNIST-shaped random data.
        x, w, data = common.load_train(None, args.seed, args.limit)
        ds = MnistLabels.__new__(MnistLabels)
        ds.images = x.reshape(-1, *SHAPES["images"])
        ds.labels = w
        ds.labels_one_hot = F.one_hot(w, W).float().unsqueeze(1)
        ds.random_binarized = True
        return ds, data
    x, w, data = common.load_train(args.data_dir, args.seed, args.limit)
    g = torch.Generator().manual_seed(args.seed)
    images = torch.bernoulli(x, generator=g).reshape(-1, *SHAPES["images"])
    return MultimodalBaseDataset(data={"images": images, "labels": F.one_hot(w, W).float().unsqueeze(1)}, labels=w), data


def run_trainer(args) -> dict:
    dataset, data = train_dataset(args.dataset, args)
    model = build_model(args.alpha)
    steps_per_epoch = math.ceil(len(dataset) / args.batch_size)
    total_steps = args.warmup + args.steps
    out_dir = tempfile.mkdtemp(prefix="multivae-bench-")
    try:
        config = BaseTrainerConfig(
            output_dir=out_dir,
            per_device_train_batch_size=args.batch_size,
            num_epochs=math.ceil(total_steps / steps_per_epoch),
            learning_rate=common.LR,
            seed=args.seed,
            no_cuda=True,
        )
        timer = common.StepTimer(args.warmup, args.steps)
        trainer = BaseTrainer(model=model, train_dataset=dataset, training_config=config,
                              callbacks=[TimingCallback(timer)])
        if args.quiet:  # drop the trainer's tqdm bars (it adds ProgressBarCallback itself)
            handler = trainer.callback_handler
            handler.callbacks = [c for c in handler.callbacks if not isinstance(c, ProgressBarCallback)]
        if timer.warmup == 0:  # time from the start of train(), not from the trainer's set-up
            timer.start = time.perf_counter()
        try:
            trainer.train()
        except _Done:
            pass
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return dict(timer=timer, data=data, dataset=type(dataset).__name__, clip=None)


# ---------------------------------------------------------------- bare mode


def run_bare(args) -> dict:
    x_all, w_all, data = common.load_train(args.data_dir, args.seed, args.limit)
    batches = common.TensorBatches(x_all, w_all, args.batch_size, args.seed)
    model = build_model(args.alpha)
    optimizer = torch.optim.Adam(model.parameters(), lr=common.LR)
    model.train()
    timer = common.StepTimer(args.warmup, args.steps)
    total = 0.0
    for x, w, _ in batches:
        inputs = DatasetOutput(data={"images": x.reshape(-1, *SHAPES["images"]),
                                     "labels": w.reshape(-1, *SHAPES["labels"])})
        loss = model(inputs, epoch=1).loss
        optimizer.zero_grad()
        loss.backward()
        if args.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        total += loss.item()
        if timer.step_done():
            break
    return dict(timer=timer, data=data, dataset="tensors", clip=args.clip or None,
                final_loss=loss.item(), mean_loss=total / timer.done)


def main(argv: list[str] | None = None) -> None:
    def extra(p):
        p.add_argument("--mode", choices=["trainer", "bare"], default="trainer")
        p.add_argument("--dataset", choices=["mnistlabels", "base"], default="mnistlabels",
                       help="trainer mode: MultiVae's MnistLabels (default) or a MultimodalBaseDataset of tensors")
        p.add_argument("--alpha", type=float, default=common.ALPHA)
        p.add_argument("--clip", type=float, default=common.CLIP,
                       help="bare mode: gradient-norm clipping (0: off); the trainer has none")
        p.add_argument("--quiet", action="store_true", help="silence MultiVae's logging and progress bars")

    args = common.parse_args(__doc__.splitlines()[0], extra, argv)
    if args.quiet:
        for name in list(logging.root.manager.loggerDict):
            if name.startswith(("multivae", "pythae")):
                logging.getLogger(name).setLevel(logging.WARNING)
    common.setup_torch(args)
    result = run_trainer(args) if args.mode == "trainer" else run_bare(args)
    timer = result.pop("timer")
    import multivae

    version = getattr(multivae, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("multivae")
    name = f"multivae-{args.mode}" + ("-basedataset" if args.mode == "trainer" and args.dataset == "base" else "")
    common.emit(name, args, timer, multivae=version, **result)


if __name__ == "__main__":
    main()
