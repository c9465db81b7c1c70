"""How far Table 2's log p(w) from N_w prior samples falls below log p(w), on real CelebA attributes.

    JMVAE_DATA=../shared/data python benchmarks/table2_log_pw_bias.py [--epochs 10] [--threads 1]

The JMVAE's log p(x | w) = L_k[log p(x, w)] - log p^(w), with log p^(w) = log (1/N_w) sum_i
p(w | z_i), z_i ~ p(z) (``jmvae.estimators.log_marginal_by_prior``, what ``evaluate`` uses). A
log-mean-exp of N_w draws is low in expectation, so the subtraction inflates the conditional
figure. Only ten CelebA images are here, so the p(w | z) measured is that of a VAE on the
attributes alone, with the paper's attribute network (z = 128, 512-unit layers), trained on the
first 18,000 of the 20,000 attribute rows in ``shared/data/celeba_partial``: as peaked a p(w | z)
as the attributes support. For each attribute likelihood (Bernoulli 0/1, the default here; the
paper's tanh-Gaussian -1/1) it prints one JSON line: mean log p^(w) over 500 held-out rows at
N_w = 10, 100, 1000, 10000 and an importance-weighted lower bound with the encoder q(z | w) at
k = 1000 and 5000 (the reference: log p(w) is at least this), and the gap of each N_w to the
reference (at least the bias, as the reference is itself below log p(w)).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from jmvae import ModelConfig, build_model
from jmvae.config import Modality
from jmvae.data.celeba import find_list, read_attributes
from jmvae.estimators import iw_log_likelihood, log_marginal_by_prior
from jmvae.experiments.hardware import hardware


def attribute_rows(data_dir: Path) -> torch.Tensor:
    folder = data_dir / "celeba_partial"
    path = find_list(folder, "list_attr_celeba", required=True)
    return torch.from_numpy(read_attributes(path).values.astype("float32"))  # (N, 40) in {-1, 1}


def fit(model, train: torch.Tensor, epochs: int, seed: int) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for rows in torch.randperm(len(train), generator=generator).split(100):
            loss = model.loss({"attributes": train[rows]}).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    values = attribute_rows(Path(os.environ.get("JMVAE_DATA", "../shared/data")))
    for likelihood in ("bernoulli", "tanh-gaussian"):
        if likelihood == "bernoulli":
            modality, data = Modality("attributes", (40,), "bernoulli"), (values + 1) / 2
        else:
            modality, data = Modality("attributes", (40,), "gaussian", scale=1.0, mean_activation="tanh"), values
        torch.manual_seed(args.seed)
        model = build_model(ModelConfig("vae", (modality,), latent_dim=128, hidden_dim=512))
        fit(model, data[:18_000], args.epochs, args.seed)
        test = {"attributes": data[18_000:18_500]}
        result = {"likelihood": likelihood, "epochs": args.epochs, "test_rows": 500, "hardware": hardware(),
                  "log_p_w": {}, "reference": {}}
        for k in (1000, 5000):
            bound = iw_log_likelihood(model, test, ["attributes"], k=k, generator=torch.Generator().manual_seed(1))
            result["reference"][f"iw_k{k}"] = round(float(bound.mean()), 4)
        for n in (10, 100, 1000, 10_000):
            estimate = log_marginal_by_prior(model, test, ["attributes"], n, generator=torch.Generator().manual_seed(2))
            result["log_p_w"][f"n_w{n}"] = round(float(estimate.mean()), 4)
        reference = max(result["reference"].values())
        result["gap_to_reference"] = {n: round(v - reference, 4) for n, v in result["log_p_w"].items()}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
