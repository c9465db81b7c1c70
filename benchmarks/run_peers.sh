#!/usr/bin/env bash
# Runs every peer benchmark once and prints their JSON lines (one per benchmark) on stdout.
# Run it on a quiet machine (nothing else using the CPU): timings under load are meaningless.
#
#   STEPS=300 WARMUP=30 THREADS=1 bash benchmarks/run_peers.sh > peers.jsonl
#
# THREADS empty (the default) leaves torch's default thread count. Extra arguments are passed
# to every script (e.g. --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-300}
WARMUP=${WARMUP:-30}
THREADS=${THREADS:-}
MAIN_PY=${MAIN_PY:-.venv/bin/python}
PEERS_PY=${PEERS_PY:-/work/peers-venv/bin/python}

common=(--steps "$STEPS" --warmup "$WARMUP")
[[ -n "$THREADS" ]] && common+=(--threads "$THREADS")
common+=("$@")

"$MAIN_PY" benchmarks/plain_loop.py "${common[@]}"
"$PEERS_PY" benchmarks/plain_loop.py "${common[@]}"
"$PEERS_PY" benchmarks/peer_pixyz.py "${common[@]}"
"$PEERS_PY" benchmarks/peer_multivae.py --mode bare "${common[@]}"
"$PEERS_PY" benchmarks/peer_multivae.py --mode trainer --quiet "${common[@]}"
"$PEERS_PY" benchmarks/peer_multivae.py --mode trainer --dataset base --quiet "${common[@]}"
