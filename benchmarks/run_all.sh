#!/usr/bin/env bash
# Every training and evaluation benchmark in one run, on the same MNIST data and architecture.
# Prints JSON lines (one per measurement). Needs the project's .venv and the peers' venv
# (benchmarks/README.md); run it on a quiet machine:
#   bash benchmarks/run_all.sh > benchmarks/results/$(date +%F).jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
OURS=${OURS:-.venv/bin/python}
PEERS=${PEERS:-/work/peers-venv/bin/python}
STEPS=${STEPS:-300}
WARMUP=${WARMUP:-30}
DATA=${JMVAE_DATA:-../shared/data}
T=()
[ -n "${THREADS:-}" ] && T=(--threads "$THREADS")
PRECISIONS=(fp32)
[ -n "${BF16:-}" ] && PRECISIONS+=(bf16)  # BF16=1: also `jmvae bench --precision bf16`
COMPILES=("")
[ -n "${COMPILE:-}" ] && COMPILES+=(--compile)  # COMPILE=1: each precision also with `--compile`
for precision in "${PRECISIONS[@]}"; do
  for compile in "${COMPILES[@]}"; do
    "$OURS" -m jmvae bench --json --steps "$STEPS" --warmup-steps "$WARMUP" --eval-points 200 --data-dir "$DATA" \
      --precision "$precision" ${compile:+"$compile"} "${T[@]}" \
      | "$OURS" -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"name": "jmvae", **r}))'
  done
done
"$OURS"  benchmarks/plain_loop.py --steps "$STEPS" --warmup "$WARMUP" "${T[@]}"
"$PEERS" benchmarks/plain_loop.py --steps "$STEPS" --warmup "$WARMUP" "${T[@]}"
"$PEERS" benchmarks/peer_pixyz.py --steps "$STEPS" --warmup "$WARMUP" "${T[@]}"
"$PEERS" benchmarks/peer_multivae.py --mode bare --steps "$STEPS" --warmup "$WARMUP" "${T[@]}"
"$PEERS" benchmarks/peer_multivae.py --mode trainer --quiet --steps "$STEPS" --warmup "$WARMUP" "${T[@]}"
"$OURS"  benchmarks/estimator.py --images 200 "${T[@]}"
