"""The evaluation of ``three_modalities.py``: judges, coherence of every subset -> target, the
subset rules' bounds, the evaluator's cells; the markdown table and the figure."""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from jmvae import EvalConfig
from jmvae.coherence import Judge, cross_coherence, fit_judge
from jmvae.data import load_dataset
from jmvae.estimators import iw_log_likelihoods, mean_and_sem
from jmvae.evaluation import evaluate
from jmvae.subsets import SUBSET_RULES, floored_fraction, using_rule

JUDGE_DATA = {"image": "mnist", "fashion": "fashion-mnist"}


def judges(out: Path) -> tuple[dict[str, Judge], dict[str, Any]]:
    """One binary judge per image modality, fitted on its own data set's training split (cached)."""
    path = out / "runs" / "judges.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["judges"], saved["info"]
    fitted, info = {}, {}
    for modality, name in JUDGE_DATA.items():
        data = load_dataset(name, os.environ.get("JMVAE_DATA"))
        started = time.perf_counter()
        fitted[modality] = fit_judge(data.train["image"], data.train["label"], data.test["image"], data.test["label"],
                                     seed=0, binary=True)
        info[modality] = {"fitted_on": f"{name} train (re-binarised per epoch)", "test_set": f"{name} test, binarised once",
                          "test_accuracy": fitted[modality].test_accuracy,
                          "fit_seconds": round(time.perf_counter() - started, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"judges": fitted, "info": info}, path)
    return fitted, info


def subsets(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [s for r in range(1, len(names)) for s in itertools.combinations(names, r)]


def coherence_table(model, test, judged: dict[str, Judge]) -> list[dict[str, Any]]:
    """Every strict subset -> every target not in it, with each rule for two or more given."""
    names = model.config.names
    rows = []
    for given in subsets(names):
        targets = tuple(m for m in names if m not in given)
        for rule in SUBSET_RULES if len(given) > 1 else ("single",):
            with using_rule(model, "product" if rule == "single" else rule):
                scores = cross_coherence(model, test, test["label"], given, targets, judged, seed=0)
            n = len(test["label"])
            rows.extend({"given": "+".join(given), "rule": rule, "target": m, "coherence": v,
                         "sem": math.sqrt(v * (1 - v) / n)} for m, v in scores.items())
    return rows


def bound_table(model, test, n: int, k: int, batch_size: int = 100) -> list[dict[str, Any]]:
    """For each two-modality subset S and each proposal (the three rules, and the joint encoder as
    a reference): L_k of log p(x_S) and of log p(x_all) with that proposal; their differences from
    the product's on the same data (paired); and log p(x_target | x_S) estimated as L_k[log p(x_all)]
    with the proposal minus the one L_k[log p(x_S)] of the proposal whose mean is highest (the
    tightest bound on it), a term common to all rows of S."""
    names = model.config.names
    rows = []
    for given in [s for s in subsets(names) if len(s) == 2]:
        target = next(m for m in names if m not in given)
        per_datum: dict[str, dict[str, torch.Tensor]] = {}
        for rule in (*SUBSET_RULES, "joint"):
            started = time.perf_counter()
            values: dict[str, list[torch.Tensor]] = {"S": [], "all": [], "floored": []}
            for index, start in enumerate(range(0, n, batch_size)):
                batch = {m: test[m][start : min(n, start + batch_size)] for m in names}
                generator = torch.Generator().manual_seed(1_000_003 * 7 + index)
                with using_rule(model, "product" if rule == "joint" else rule):
                    proposal = model.posterior(batch, names if rule == "joint" else given)
                    if rule == "prior-product":
                        experts = [model.posterior(batch, (m,)) for m in given]
                        values["floored"].append(torch.tensor([floored_fraction(experts)]))
                out = iw_log_likelihoods(model, batch, [given, names], proposal, k, None, generator)
                values["S"].append(out[given])
                values["all"].append(out[names])
            per_datum[rule] = {"S": torch.cat(values["S"]).double(), "all": torch.cat(values["all"]).double()}
            row = {"given": "+".join(given), "target": target, "proposal": rule, "k": k, "n": n,
                   "seconds": round(time.perf_counter() - started, 1)}
            if values["floored"]:
                row["floored_fraction"] = float(torch.cat(values["floored"]).mean())
            rows.append(row)
        best = max(per_datum, key=lambda r: float(per_datum[r]["S"].mean()))
        for row in rows[-len(per_datum):]:
            mine, product = per_datum[row["proposal"]], per_datum["product"]
            for key, v in (("log p(x_S)", mine["S"]), ("log p(x_all)", mine["all"]),
                           ("log p(x_target | x_S)", mine["all"] - per_datum[best]["S"]),
                           ("log p(x_S) - product", mine["S"] - product["S"]),
                           ("log p(x_all) - product", mine["all"] - product["all"])):
                row[key], row[key + " sem"] = mean_and_sem(v)
            row["log p(x_S) from"] = best
            print(row, flush=True)
    return rows


def figure(rows: list[dict[str, Any]], names: tuple[str, ...], path: Path) -> None:
    """Coherence heat map: one row per (given, rule), one column per target."""
    keys = list(dict.fromkeys((r["given"], r["rule"]) for r in rows))
    grid = torch.full((len(keys), len(names)), math.nan)
    for r in rows:
        grid[keys.index((r["given"], r["rule"])), names.index(r["target"])] = r["coherence"]
    fig = Figure(figsize=(6.5, 0.42 * len(keys) + 1.4))
    ax = fig.add_subplot()
    image = ax.imshow(grid.numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (i, j), v in ((ij, float(grid[ij])) for ij in itertools.product(range(len(keys)), range(len(names)))):
        if not math.isnan(v):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white" if v < 0.6 else "black", fontsize=8)
    ax.set_xticks(range(len(names)), [f"-> {m}" for m in names])
    ax.set_yticks(range(len(keys)), [g if rule == "single" else f"{g} ({rule})" for g, rule in keys], fontsize=8)
    ax.set_title("Coherence of generation, mnist-fashion test set (JMVAE-kl)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(results: dict[str, Any]) -> str:
    lines = ["# mnist-fashion: JMVAE-kl (alpha 0.1), three modalities", "",
             f"Command: `{results['command']}`. Test data: coherence on all {results['n_coherence']}, bounds on the "
             f"first {results['n_bounds']} (k = {results['k']}).", "",
             "## Judges", "", "| modality | fitted on | test accuracy | on mnist-fashion test (vs label) |", "|---|---|---|---|"]
    for m, info in results["judges"].items():
        lines.append(f"| {m} | {info['fitted_on']} | {info['test_accuracy']:.4f} | {info['on_mnist_fashion_test']:.4f} |")
    lines += ["", "## Coherence of generation (share of test data whose generated target shows the datum's class)", "",
              "| given | rule | target | coherence ± sem |", "|---|---|---|---|"]
    lines += [f"| {r['given']} | {r['rule']} | {r['target']} | {r['coherence']:.4f} ± {r['sem']:.4f} |"
              for r in results["coherence"]]
    for k, bounds in results["bounds"].items():
        lines += ["", f"## Proposals for a two-modality subset S: importance-weighted bounds at k = {k} "
                  f"on the first {bounds[0]['n']} test data (nats, mean ± sem; differences paired)", "",
                  "| given S | target | proposal | L_k log p(x_S) | minus product's | L_k log p(x_all) | minus product's "
                  "| log p(x_target \\| x_S) | s |", "|---|---|---|---|---|---|---|---|---|"]
        for r in bounds:
            cells = [f"{r[key]:.2f} ± {r[key + ' sem']:.2f}" if r[key + " sem"] is not None else f"{r[key]:.2f}"
                     for key in ("log p(x_S)", "log p(x_S) - product", "log p(x_all)", "log p(x_all) - product",
                                 "log p(x_target | x_S)")]
            lines.append(f"| {r['given']} | {r['target']} | {r['proposal']} | " + " | ".join(cells) + f" | {r['seconds']} |")
        lines += ["", "log p(x_target | x_S): L_k log p(x_all) of the row's proposal minus L_k log p(x_S) of the proposal "
                  "with the highest mean for that S (" + ", ".join(sorted({f"{r['given']}: {r['log p(x_S) from']}"
                                                                             for r in bounds})) + ")."]
    ev = results["evaluator"]
    lines += ["", f"## The evaluator's cells (x = image, w = label+fashion; k = {ev['k']}, N_w = {ev['n_prior']}, "
              f"n = {ev['n_test']}, subset rule product)", "", "| cell | mean | sem |", "|---|---|---|"]
    for cell, value in ev["log_likelihood"].items():
        for bound, v in (value.items() if isinstance(value, dict) else [("", value)]):
            err = ev["stderr"][cell][bound] if bound else ev["stderr"][cell]
            name = "image, label, fashion" if cell == "joint" else cell.replace("|", " \\| ")
            lines.append(f"| log p({name}) {bound} | {v:.2f} | {err:.2f} |")
    lines += [f"| log p(w) by {ev['n_prior']} prior draws | {ev['log_p_w']:.2f} | |", "",
              "Active units: " + ", ".join(f"{k} {v}" for k, v in ev["active_units"].items()), ""]
    return "\n".join(lines)


def evaluate_all(run, data, out: Path, n: int, k: int, n_prior: int, command: str,
                 check: tuple[int, int] | None = None) -> dict[str, Any]:
    """Everything of the module docstring; ``check`` = (k, n): the bounds again at another k."""
    model = run.model
    model.eval()
    test = data.test
    judged, info = judges(out)
    for m, judge in judged.items():
        info[m]["on_mnist_fashion_test"] = float((judge.classify(test[m]) == test["label"]).float().mean())
    started = time.perf_counter()
    coherence = coherence_table(model, test, judged)
    coherence_seconds = round(time.perf_counter() - started, 1)
    bounds = {k: bound_table(model, test, n, k)}
    if check:
        bounds[check[0]] = bound_table(model, test, check[1], check[0])
    evaluation = evaluate(model, test, EvalConfig(k=k, n_prior=n_prior, limit=n)).to_dict()
    results = {"command": command, "n_coherence": len(test["label"]), "n_bounds": n, "k": k, "bounds_check": check, "judges": info,
               "coherence": coherence, "coherence_seconds": coherence_seconds, "bounds": bounds, "evaluator": evaluation}
    figure(coherence, model.config.names, out / "coherence.png")
    (out / "results.md").write_text(markdown(results))
    return results
