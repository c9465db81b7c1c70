#!/usr/bin/env bash
# Several models on one machine: `jmvae reproduce` training two JMVAE-kl(alpha=0.1) seeds on MNIST
# one after the other with all threads, then side by side with `--jobs 2` (threads shared out),
# ROUNDS times (default 2), alternating. Each line: the variant, the round and the wall seconds of
# the whole command: training EPOCHS epochs (default 3) per model, a small evaluation (500 test
# images, k = 100, N_w = 100), the coherence judge and the first seed's figures. --no-group: each seed
# its own run (without it the two seeds train together as one group). Run it on a quiet machine:
#   bash benchmarks/jobs.sh > benchmarks/results/$(date +%F)-cpu-jobs.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
JMVAE=${JMVAE:-.venv/bin/jmvae}
export JMVAE_DATA=${JMVAE_DATA:-../shared/data}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for round in $(seq 1 "${ROUNDS:-2}"); do
  for jobs in 1 2; do
    out="$WORK/round$round-jobs$jobs"
    started=$(date +%s.%N)
    "$JMVAE" reproduce mnist --out "$out" --models 'jmvae-kl(alpha=0.1)' --seeds 0,1 --jobs "$jobs" --no-group \
      --epochs "${EPOCHS:-3}" --limit 500 --k 100 --n-prior 100 --no-progress 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
    ended=$(date +%s.%N)
    python3 -c "import json; print(json.dumps({'variant': 'jobs $jobs', 'round': $round, 'cores': $(nproc),
      'wall_s': round($ended - $started, 1), 'epochs': ${EPOCHS:-3}, 'models': 2}))"
  done
done
