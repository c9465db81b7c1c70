"""table1.json: the measured rows, merged seed by seed under a file lock, written atomically.

Every write re-reads the table under an exclusive ``fcntl`` lock on ``OUT/.table1.lock``, merges
the new (row, seed) measurements into it and rewrites table1.json, table1.md and report.md by
atomic renames, so worker processes and separate commands sharing one OUT add up instead of
overwriting each other, and a reader never sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jmvae import checkpoint as ckpt
from jmvae.experiments.hardware import hardware
from jmvae.experiments.table1.claims import check_claims
from jmvae.experiments.table1.report import render_markdown, render_report
from jmvae.experiments.table1.rows import ROW_NAMES, judged_coherence, seed_rows

PROTOCOL_DEFAULTS = {"precision": "fp32", "train_precision": "fp32", "batch_size": 100, "lr": 1e-3, "clip": 5.0,
                     "warmup": 0.0, "warmup_all_kl": False, "latent_dim": 64, "hidden_dim": 512}
"""What a row written before a protocol key existed is taken to have been measured with: the
library's MNIST defaults. (Rows trained with a warm-up before the key existed, such as
results/mnist-500's, say so only in their table's command; such a row is not reused by a command
with a warm-up, and is measured again there.)"""


def same_protocol(row: dict[str, Any], protocol: dict[str, Any]) -> bool:
    return {**PROTOCOL_DEFAULTS, **row.get("protocol", {})} == protocol


def read_table(out: Path) -> dict[str, Any]:
    """The rows of ``OUT/table1.json`` measured so far (empty if none)."""
    path = out / "table1.json"
    return json.loads(path.read_text())["models"] if path.is_file() else {}


def read_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """The row ``reproduce`` stored in a run folder after evaluating it (None if there is none)."""
    path = run_dir / "evaluation.json"
    return ckpt.read_json(path) if path.is_file() else None


def tree_statistic(trees: list[Any], statistic: Callable[[list[float]], float | None]) -> Any:
    """``statistic`` of each leaf across nested dicts of the same shape; a None leaf stays None."""
    first = trees[0]
    if isinstance(first, dict):
        return {key: tree_statistic([tree[key] for tree in trees], statistic) for key in first}
    return None if first is None else statistic(trees)


def combine_seeds(done: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The table row of a model from its seeds' rows: the run itself for one seed; for several the
    mean of every cell over the seeds, the sample standard deviation (``seed_std``) and each
    seed's row (``per_seed``)."""
    if len(done) == 1:
        return next(iter(done.values()))
    order = sorted(done)
    rows = [done[s] for s in order]
    first = rows[0]
    coherence = None
    values = [judged_coherence(r) for r in rows]
    if first.get("coherence") and None not in values:
        key = next(k for k in first["coherence"] if "|" in k)
        coherence = {**first["coherence"], key: statistics.fmean(values), "n_seeds": len(rows),
                     "judge_test_accuracy": statistics.fmean(r["coherence"]["judge_test_accuracy"] for r in rows)}
    protocol = {k: v for k, v in first["protocol"].items() if k != "seed"}
    units = all(r.get("active_units") for r in rows)  # rows evaluated before active units were counted lack them

    def over_seeds(statistic: Callable[[list[float]], float]) -> dict[str, Any]:
        """``statistic`` over the seeds of every cell, accuracy and active-unit count."""
        return {key: tree_statistic([r[key] for r in rows], statistic) if key != "active_units" or units else {}
                for key in ("log_likelihood", "accuracy", "active_units")}

    return {
        "model": first["model"], "k": first["k"], "n_prior": first["n_prior"], "n_test": first["n_test"],
        **over_seeds(statistics.fmean),
        "coherence": coherence,
        "seed_std": {**over_seeds(statistics.stdev), "coherence": statistics.stdev(values) if coherence else None},
        "seeds": order, "epochs": first["epochs"], "steps": first["steps"],
        "train_seconds": round(statistics.fmean(r["train_seconds"] for r in rows), 1),
        "eval_seconds": round(statistics.fmean(r["eval_seconds"] for r in rows), 2),
        "protocol": {**protocol, "seeds": order},
        "per_seed": {str(s): done[s] for s in order},
    }


def write_outputs(out: Path, command: str, runs: dict[str, dict[int, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Merge newly measured ``runs`` ({row: {seed: its row}}) into table1.json under a lock, re-check
    the claims, rewrite table1.md and report.md. Every other seed of a row already in the table
    with the same protocol is kept (a row shows all the seeds measured with its protocol), so
    commands that measure different seeds of one row add up instead of overwriting each other;
    seeds of another protocol are replaced."""
    with open(out / ".table1.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        models = read_table(out)
        for name, new in (runs or {}).items():
            measured = {**PROTOCOL_DEFAULTS, **next(iter(new.values())).get("protocol", {})}
            kept = {seed: row for seed, row in seed_rows(models.get(name)).items()
                    if same_protocol(row, {**measured, "seed": seed})}
            models[name] = combine_seeds({**kept, **new})
        order = list(ROW_NAMES)
        models = dict(sorted(models.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))
        table = {"models": models, "claims": check_claims(models), "command": command, "hardware": hardware()}
        ckpt.write_json(out / "table1.json", table)
        ckpt.write_atomic(out / "table1.md", render_markdown(table).encode())
        ckpt.write_atomic(out / "report.md", render_report(table, out).encode())
    return table
