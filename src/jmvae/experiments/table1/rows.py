"""The rows of Table 1, their run folders, and what a stored row (a dict of table1.json) holds.

A stored row is ``Evaluation.to_dict()`` plus what ``jmvae reproduce`` adds (``coherence``,
``epochs``, ``steps``, ``seed``, ``train_seconds``, ``protocol``, ``measured``: the command,
hardware (the machine that evaluated it) and, where recorded, day that measured it; over several
seeds ``seeds``, ``seed_std``, ``per_seed``). The readers here are the one place that knows those
keys' shapes.
"""

from __future__ import annotations

from typing import Any

from jmvae.evaluation import Cells

ROWS: tuple[tuple[str, float], ...] = (
    ("vae", 0.0),
    ("cvae", 0.0),
    ("cmma", 0.0),
    ("jmvae-zero", 0.0),
    ("jmvae-kl", 0.01),
    ("jmvae-kl", 0.1),
    ("jmvae-kl", 1.0),
)


def row_name(kind: str, alpha: float) -> str:
    return f"{kind}(alpha={alpha:g})" if kind == "jmvae-kl" else kind


ROW_NAMES = tuple(row_name(k, a) for k, a in ROWS)
ROW_KINDS = {row_name(k, a): (k, a) for k, a in ROWS}


def run_folder_name(name: str) -> str:
    return name.replace("(", "-").replace(")", "").replace("=", "")


def cells(row: dict[str, Any] | None) -> Cells:
    """A row's log-likelihood cells (their means over seeds); empty cells for a row not measured."""
    return Cells.from_dict((row or {}).get("log_likelihood"))


def seed_spread(row: dict[str, Any]) -> Cells:
    """The sample standard deviation over seeds of a row's cells; empty cells for a single seed."""
    return Cells.from_dict((row.get("seed_std") or {}).get("log_likelihood"))


def first_value(entry: dict[str, Any] | None) -> Any:
    """The value of a one-key entry (``accuracy``: {"label|image": a}; ``active_units`` of the
    joint, or only, proposal first); None if it is empty or absent."""
    return next(iter((entry or {}).values()), None)


def joint_active_units(row: dict[str, Any] | None) -> float | None:
    """Active latent units of a row's joint (or only) proposal, as table1.md shows (None if not counted)."""
    return first_value((row or {}).get("active_units"))


def judged_coherence(row: dict[str, Any]) -> float | None:
    """A row's judged coherence of images generated from labels (None if unmeasured or undefined)."""
    return next((v for k, v in (row.get("coherence") or {}).items() if "|" in k), None)


def coherence_spread(row: dict[str, Any]) -> float | None:
    """The sample standard deviation over seeds of a row's judged coherence (None for one seed)."""
    return (row.get("seed_std") or {}).get("coherence")


def coherence_stderr(entry: dict[str, Any]) -> float:
    """Binomial standard error of a coherence entry: sqrt(p (1 - p) / n), n images judged (over all seeds)."""
    value = next(v for k, v in entry.items() if "|" in k)
    n = entry["per_class"] * round(1 / entry["chance"]) * entry.get("n_seeds", 1)
    return (value * (1 - value) / n) ** 0.5


def seed_rows(entry: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    """The per-seed rows a table entry holds: its ``per_seed`` rows, or the entry itself for one seed."""
    if not entry:
        return {}
    if "per_seed" in entry:
        return {int(seed): row for seed, row in entry["per_seed"].items()}
    seed = entry.get("protocol", {}).get("seed", entry.get("seed"))
    return {} if seed is None else {int(seed): entry}


NOT_RECORDED = "not recorded"


def provenance(row: dict[str, Any]) -> tuple[str, str, str]:
    """(command, hardware, training precision) of one seed's row: where and how it was measured.
    Rows stored before rows kept their own ``measured`` record say ``NOT_RECORDED``."""
    measured = row.get("measured") or {}
    return (measured.get("command", NOT_RECORDED), measured.get("hardware", NOT_RECORDED),
            row.get("protocol", {}).get("train_precision", "fp32"))
