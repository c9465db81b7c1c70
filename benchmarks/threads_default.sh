#!/usr/bin/env bash
# `jmvae bench` with its default threads against `--threads 2` (torch's own default on a 2-core
# machine), beside 0 and 1 busy-loop processes, ROUNDS times (default 2). One JSON line each:
# {"competitors", "variant", "round", "train_samples_per_s", "hardware"}. Each busy loop ends by
# itself after 600 s and is killed by its pid when its block ends (and on exit).
#   bash benchmarks/threads_default.sh > benchmarks/results/$(date +%F)-threads-default.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BUSY='import time
end = time.monotonic() + 600
while time.monotonic() < end: pass'
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for competitors in 0 1; do
  pids=()
  for _ in $(seq 1 "$competitors"); do "$PY" -c "$BUSY" & pids+=("$!"); done
  sleep 1
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for variant in default "--threads 2"; do
      flags=(); [ "$variant" = default ] || flags=($variant)
      "$PY" -m jmvae bench --json --steps 60 --warmup-steps 10 --eval-points 10 --k 100 "${flags[@]}" |
        "$PY" -c "import json, sys; r = json.load(sys.stdin); print(json.dumps({'competitors': $competitors,
          'variant': '$variant', 'round': $round, 'train_samples_per_s': round(r['train_samples_per_s']), 'hardware': r['hardware']}))"
    done
  done
  cleanup
done
