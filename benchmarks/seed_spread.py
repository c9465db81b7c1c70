"""Do two training configurations give different models? Runs of each, compared cell by cell.

    .venv/bin/python benchmarks/seed_spread.py --row 'jmvae-kl(alpha=0.1)' \
        --group float32 results/mnist-seeds-fp32/table1.json \
        --group bf16 results/mnist-seeds-bf16/table1.json results/mnist-bf16-compile/table1.json

A FILE is a ``table1.json`` of ``jmvae reproduce`` (every seed of ``--row``: its ``per_seed``
rows, or the row itself for one seed), a run folder's ``evaluation.json``, or a JSON object
with an ``evaluation`` key (``jmvae evaluate --json`` wrapped with its command, as in
benchmarks/results). Every cell gets each group's mean, sample standard deviation and number of
runs, the difference of the first two groups' means and Welch's t-test of it (two-sided; the
runs of a group are taken as independent draws, which different seeds are). Runs must share
the evaluation protocol (k, N_w, test images); the script refuses to mix them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from scipy import stats

CELLS = (("image", "multiple"), ("image", "single"), ("image|label", "multiple"), ("image|label", "single"), ("joint",))


def runs_in(path: Path, row: str) -> list[dict[str, Any]]:
    """The evaluated runs a file holds (see the module docstring)."""
    data = json.loads(path.read_text())
    if "models" in data:
        entry = data["models"].get(row)
        if entry is None:
            raise SystemExit(f"{path}: no row {row!r}; rows are {', '.join(data['models'])}")
        return list(entry["per_seed"].values()) if "per_seed" in entry else [entry]
    return [data["evaluation"] if "evaluation" in data else data]


def value(run: dict[str, Any], cell: tuple[str, ...]) -> float | None:
    found: Any = run["log_likelihood"]
    for key in cell:
        found = found[key]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", default="jmvae-kl(alpha=0.1)", help="the Table 1 row read from table1.json files")
    parser.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "FILE"),
                        help="a name and the files of its runs; give --group two or more times")
    args = parser.parse_args()
    groups = {name: [run for file in files for run in runs_in(Path(file), args.row)] for name, *files in args.group}
    if len(groups) < 2 or any(not runs for runs in groups.values()):
        raise SystemExit("give at least two --group NAME FILE... with runs in each")
    protocols = {(r["k"], r["n_prior"], r["n_test"]) for runs in groups.values() for r in runs}
    if len(protocols) > 1:
        raise SystemExit(f"the runs were evaluated with different protocols (k, N_w, test images): {sorted(protocols)}")
    names = list(groups)
    header = ["cell"] + [f"{name} (n={len(groups[name])})" for name in names] + [f"{names[0]} - {names[1]}", "Welch p"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cell in CELLS:
        values = {name: [value(r, cell) for r in runs] for name, runs in groups.items()}
        if any(v is None for vs in values.values() for v in vs):
            continue
        shown = [f"{statistics.fmean(vs):.2f} ± {statistics.stdev(vs):.2f}" if len(vs) > 1 else f"{vs[0]:.2f}"
                 for vs in values.values()]
        a, b = values[names[0]], values[names[1]]
        difference = statistics.fmean(a) - statistics.fmean(b)
        p = stats.ttest_ind(a, b, equal_var=False).pvalue if min(len(a), len(b)) > 1 else float("nan")
        label = "log p(x,w)" if cell == ("joint",) else f"log p({cell[0]}) {cell[1]}".replace("|", "\\|")
        print(f"| {label} | " + " | ".join(shown) + f" | {difference:+.2f} | {p:.2f} |")
    shown = next((cell for cell in CELLS if all(value(r, cell) is not None for runs in groups.values() for r in runs)), None)
    for name, runs in groups.items():
        if shown:
            print(f"{name}: " + ", ".join(f"{value(r, shown):.2f}" for r in runs) + f"  ({' '.join(shown)}, run by run)")


if __name__ == "__main__":
    main()
