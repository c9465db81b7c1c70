"""``jmvae evaluate``: the test log-likelihoods of a run, as aligned text or JSON."""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path


from jmvae import presets
from jmvae.config import EvalConfig, ModelConfig
from jmvae.data import load_dataset

from jmvae.cli.common import start_distributed, tensorboard_dir
from jmvae.evaluation import Evaluation


def eval_config(args: argparse.Namespace, dataset: str = "mnist") -> EvalConfig:
    """The evaluation flags over the data set's protocol (``jmvae.presets``): Table 1's k = 1000,
    N_w = 5000, or Table 2's k = 10, N_w = 10 on CelebA (with the x|w cells also reported at
    N_w = 1000: see ``EvalConfig.n_prior_check``)."""
    return presets.eval_config(dataset, k=args.k, n_prior=args.n_prior, n_prior_check=getattr(args, "n_prior_check", None),
                               limit=args.limit, batch_size=args.eval_batch_size, chunk=args.chunk, seed=args.eval_seed,
                               precision=args.precision)


def command_evaluate(args: argparse.Namespace) -> int:
    from jmvae.evaluation import evaluate
    from jmvae.runs import load_run
    from jmvae.training.sinks import require_tensorboard, write_scalars

    board = tensorboard_dir(args.tensorboard, Path(args.run_dir))
    if board is not None:
        require_tensorboard()  # before the evaluation's minutes: a missing package is one line
    world = start_distributed(args)
    loaded = load_run(args.run_dir, args.device)
    model, run, state = loaded.model, loaded.config, loaded.state
    data = load_dataset(run.data.name, args.data_dir, **run.data.options)
    config = eval_config(args, presets.recipe_name(run.data))
    with warnings.catch_warnings():
        if min(config.limit or math.inf, len(next(iter(data.test.values())))) < 2:  # active units: a variance over points
            warnings.filterwarnings("ignore", message=r"var\(\): degrees of freedom")
        result = evaluate(model, data.test, config, progress=not args.no_progress, name=loaded.display_name)
    if not world.is_main:
        return 0
    if board is not None:
        write_scalars(board, evaluation_scalars(result), state["step"])
    if args.json:
        print(result.to_json())
    else:
        print("\n".join(evaluation_lines(result, model.config, state["epoch"])))
    return 0


def evaluation_scalars(result: Evaluation) -> dict[str, float]:
    """``evaluate --tensorboard``'s scalars: the ``--json`` object's cells, under ``eval/`` and the
    path of their keys (``eval/log_likelihood/image|label/multiple``, ``eval/accuracy/label|image``,
    ``eval/log_p_w``, ``eval/n_prior_check/...``); cells without a value are left out."""
    found: dict[str, float] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}/{key}", inner)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix] = float(value)

    table = result.to_dict()
    for part in ("log_likelihood", "accuracy", "log_p_w", "n_prior_check"):
        walk(f"eval/{part}", table[part])
    return found


def evaluation_lines(result: Evaluation, config: ModelConfig, epochs: int) -> list[str]:
    """``evaluate``'s text: one aligned row per cell, mean ± standard error over the test points,
    each cell named by what it bounds (the "joint" cell is log p(image, label))."""
    keys, w = result.keys, ", ".join(result.keys.ws)
    cells = [(f"log p({keys.x})", result.log_likelihood.x, result.stderr.x)]
    if keys.ws:
        cells.append((f"log p({keys.x} | {w})", result.log_likelihood.x_given_w, result.stderr.x_given_w))
    rows = []
    for name, bounds, errors in cells:
        for bound in ("multiple", "single"):
            value, error = getattr(bounds, bound), getattr(errors, bound)
            if value is not None:
                rows.append((name, bound, f"{value:9.3f}" + (f" ± {error:.3f}" if error is not None else "")))
    if keys.ws and result.log_likelihood.joint is not None:
        error = result.stderr.joint
        rows.append((f"log p({keys.x}, {w})", "", f"{result.log_likelihood.joint:9.3f}"
                     + (f" ± {error:.3f}" if error is not None else "")))
    if result.log_p_w is not None:  # the estimate the x|w cells subtract (docs/bounds.md)
        rows.append((f"log p^({w}), N_w={result.n_prior}", "", f"{result.log_p_w:9.3f}"))
    check = result.n_prior_check
    if check:
        rows.append((f"log p^({w}), N_w={check.n_prior}", "", f"{check.log_p_w:9.3f}"))
        for bound in ("multiple", "single"):
            if getattr(check.x_given_w, bound) is not None:
                rows.append((f"log p({keys.x} | {w}), N_w={check.n_prior}", bound, f"{getattr(check.x_given_w, bound):9.3f}"))
    if keys.accuracy and result.accuracy is not None:
        rows.append((f"accuracy {keys.accuracy}", "", f"{result.accuracy:9.4f}"))
    width = max((len(name) for name, _, _ in rows), default=0)
    points = result.n_test
    lines = [f"{result.model} after {epochs} epoch{'s' * (epochs != 1)}: k={result.k}, N_w={result.n_prior}, "
             + f"{points} test point{'s' * (points != 1)} (nats, ± standard error over test points)"]
    lines += [f"  {name:<{width}}  {bound:<8}  {value}" for name, bound, value in rows]
    if result.n_per_cell is not None:  # partially paired test data: each cell over the points with its modalities
        counts = sorted(set(result.n_per_cell.values()))
        lines.append(f"  some test points lack a modality: each cell averages those that have its modalities "
                     f"({', '.join(f'{c:,}' for c in counts)} of {points:,}; --json's n_per_cell says which)")
    if points < 2:
        lines.append("  active units: need 2 or more test points (a variance over them)")
    else:
        units = ", ".join(f"q(z|{given.replace('+', ',')}) {count}" for given, count in result.active_units.items())
        lines.append(f"  active units of {config.latent_dim}: {units}")
    return lines
