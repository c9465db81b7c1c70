"""Medians of rounds files (benchmarks/rounds.sh): each measurement per round and its median,
then ours against every peer as the median of the per-round ratios (both sides of a ratio come
from the same round, which cancels most of a shared machine's drift). Several files are pooled:
their rounds are listed in the order given.

    .venv/bin/python benchmarks/summarize.py benchmarks/results/2026-11-30-epyc-cpu-rounds.jsonl [more files]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


Round = tuple[int, int]  # (file, round in that file)


def series(paths: list[str]) -> dict[str, dict[Round, float]]:
    """{measurement name: {(file, round): samples/s}} from the JSON lines of rounds.sh."""
    rates: dict[str, dict[Round, float]] = defaultdict(dict)
    for i, path in enumerate(paths):
        for line in open(path):
            r = json.loads(line)
            key = (i, r["round"])
            if r["name"] == "jmvae":  # jmvae bench: training and evaluation of one precision
                variant = r["config"]["precision"] + (" compiled" if r["config"].get("compile") else "")
                rates[f"jmvae train {variant}"][key] = r["train_samples_per_s"]
                if not r["config"].get("compile"):  # --compile changes only training
                    rates[f"jmvae bench eval {variant}"][key] = r["eval_samples_per_s"]
            else:
                name = r["name"] + (f" {r['mode']}" if "mode" in r else "") + f" (torch {r['torch']})"
                rates[name][key] = r["samples_per_s"]
    return rates


def ratios(ours: dict[Round, float], theirs: dict[Round, float]) -> list[float]:
    return [ours[k] / theirs[k] for k in sorted(ours) if k in theirs]


def main() -> None:
    rates = series(sys.argv[1:])
    for name, by_round in rates.items():
        values = [by_round[k] for k in sorted(by_round)]
        print(f"{name:48s} {' / '.join(f'{v:,.0f}' for v in values):32s} median {statistics.median(values):,.0f}")
    peers = [n for n in rates if n.startswith(("plain-loop", "pixyz", "multivae"))]
    for ours in (n for n in rates if n.startswith("jmvae train")):
        for peer in peers:
            r = ratios(rates[ours], rates[peer])
            print(f"{ours} vs {peer}: {' / '.join(f'{x:.2f}' for x in r)}, median {statistics.median(r):.2f}x")
    plain = next((n for n in rates if n.startswith("plain-estimator")), None)
    for ours in (n for n in rates if plain and n.startswith("jmvae-estimator")):
        r = ratios(rates[ours], rates[plain])
        print(f"{ours} vs {plain}: {' / '.join(f'{x:.2f}' for x in r)}, median {statistics.median(r):.2f}x")


if __name__ == "__main__":
    main()
