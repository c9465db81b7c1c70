"""Pixyz JMVAE-kl on the paper's MNIST model: samples/s of ``pixyz.models.Model.train`` after warm-up.

Built with Pixyz's own API, as its JMVAE example does (examples/jmvae.ipynb), with the paper's
architecture (SETUP.md) instead of the example's:

- q(z|x,w), q(z|x), q(z|w): ``pixyz.distributions.Normal`` subclasses returning
  {"loc": mean, "scale": sqrt(softplus(.))} (the paper's encoders give a softplus *variance*).
- p(x|z): ``Bernoulli`` returning {"probs": sigmoid(logits)} (Pixyz's Bernoulli takes probs only);
  p(w|z): ``Categorical`` returning {"probs": softmax(logits)}; prior ``Normal(0, 1)``, 64 dims.
- Loss: (KL(q || prior) + alpha * (KL(q || q_x) + KL(q || q_w)) - E_q[log p(x, w | z)]).mean()
  with ``pixyz.losses.KullbackLeibler`` (analytical) and ``Expectation(q, LogProb(p_x * p_w))``.
- ``pixyz.models.Model(loss, distributions, optimizer=Adam, lr 1e-3, clip_grad_norm=5)``;
  one training step is ``model.train({"x": x, "w": w})``.

Data: real MNIST held in tensors, re-binarized per batch (common.TensorBatches).

    /work/peers-venv/bin/python benchmarks/peer_pixyz.py --steps 300 --warmup 30 [--threads T]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
import torch.nn.functional as F
from torch import nn, optim

import common

from pixyz.distributions import Bernoulli, Categorical, Normal  # noqa: E402
from pixyz.losses import Expectation, KullbackLeibler, LogProb  # noqa: E402
from pixyz.models import Model  # noqa: E402

X, W, Z, H = common.X_DIM, common.W_DIM, common.Z_DIM, common.HIDDEN


class JointInference(Normal):
    """q(z | x, w): x -> 512 ReLU and w -> 512 ReLU, concatenated -> 512 ReLU -> mean, variance."""

    def __init__(self) -> None:
        super().__init__(var=["z"], cond_var=["x", "w"], name="q")
        self.fc_x = nn.Linear(X, H)
        self.fc_w = nn.Linear(W, H)
        self.fc = nn.Linear(2 * H, H)
        self.fc_mean = nn.Linear(H, Z)
        self.fc_var = nn.Linear(H, Z)

    def forward(self, x, w):
        h = torch.cat([F.relu(self.fc_x(x)), F.relu(self.fc_w(w))], dim=-1)
        h = F.relu(self.fc(h))
        return {"loc": self.fc_mean(h), "scale": F.softplus(self.fc_var(h)).sqrt()}


class UnimodalInference(Normal):
    """q(z | m): D -> 512 -> 512 (ReLU) -> mean, variance."""

    def __init__(self, var_name: str, in_dim: int) -> None:
        super().__init__(var=["z"], cond_var=[var_name], name="q")
        self.fc1 = nn.Linear(in_dim, H)
        self.fc2 = nn.Linear(H, H)
        self.fc_mean = nn.Linear(H, Z)
        self.fc_var = nn.Linear(H, Z)

    def _params(self, h):
        h = F.relu(self.fc2(F.relu(self.fc1(h))))
        return {"loc": self.fc_mean(h), "scale": F.softplus(self.fc_var(h)).sqrt()}


class InferenceX(UnimodalInference):
    def __init__(self) -> None:
        super().__init__("x", X)

    def forward(self, x):  # Pixyz binds the network's arguments to cond_var by name
        return self._params(x)


class InferenceW(UnimodalInference):
    def __init__(self) -> None:
        super().__init__("w", W)

    def forward(self, w):
        return self._params(w)


class GeneratorX(Bernoulli):
    """p(x | z): 64 -> 512 -> 512 -> 784, Bernoulli."""

    def __init__(self) -> None:
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc1 = nn.Linear(Z, H)
        self.fc2 = nn.Linear(H, H)
        self.fc3 = nn.Linear(H, X)

    def forward(self, z):
        h = F.relu(self.fc2(F.relu(self.fc1(z))))
        return {"probs": torch.sigmoid(self.fc3(h))}


class GeneratorW(Categorical):
    """p(w | z): 64 -> 512 -> 512 -> 10, Categorical."""

    def __init__(self) -> None:
        super().__init__(var=["w"], cond_var=["z"], name="p")
        self.fc1 = nn.Linear(Z, H)
        self.fc2 = nn.Linear(H, H)
        self.fc3 = nn.Linear(H, W)

    def forward(self, z):
        h = F.relu(self.fc2(F.relu(self.fc1(z))))
        return {"probs": F.softmax(self.fc3(h), dim=-1)}


def build(alpha: float, clip: float | None) -> Model:
    q, q_x, q_w = JointInference(), InferenceX(), InferenceW()
    p_x, p_w = GeneratorX(), GeneratorW()
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"], features_shape=[Z], name="p_{prior}")
    p = p_x * p_w
    loss = (KullbackLeibler(q, prior) + alpha * (KullbackLeibler(q, q_x) + KullbackLeibler(q, q_w))
            - Expectation(q, LogProb(p))).mean()
    return Model(loss=loss, distributions=[q, q_x, q_w, p_x, p_w], optimizer=optim.Adam,
                 optimizer_params={"lr": common.LR}, clip_grad_norm=clip)


def main(argv: list[str] | None = None) -> None:
    def extra(p):
        p.add_argument("--alpha", type=float, default=common.ALPHA)
        p.add_argument("--clip", type=float, default=common.CLIP, help="gradient-norm clipping (0: off)")
        p.add_argument("--print-model", action="store_true", help="print the Pixyz model (to stderr)")

    args = common.parse_args(__doc__.splitlines()[0], extra, argv)
    common.setup_torch(args)
    x_all, w_all, data = common.load_train(args.data_dir, args.seed, args.limit)
    batches = common.TensorBatches(x_all, w_all, args.batch_size, args.seed)
    model = build(args.alpha, args.clip or None)
    if args.print_model:
        print(model, file=sys.stderr)

    timer = common.StepTimer(args.warmup, args.steps)
    total = 0.0
    for x, w, _ in batches:
        loss = model.train({"x": x, "w": w})
        total += loss.item()
        if timer.step_done():
            break
    import pixyz

    common.emit("pixyz", args, timer, data=data, clip=args.clip or None, pixyz=pixyz.__version__,
                final_loss=loss.item(), mean_loss=total / timer.done)


if __name__ == "__main__":
    main()
