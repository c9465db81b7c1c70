#!/usr/bin/env bash
# ROUNDS rounds (default 3) of run_all.sh with BF16=1 (ours in float32 and in bf16; COMPILE=1 adds
# both with --compile); every JSON line is tagged with its round, so that ratios can be taken
# within a round (a shared VM's speed drifts by 10-20% between minutes). Run it on a quiet machine:
#   bash benchmarks/rounds.sh > benchmarks/results/$(date +%F)-cpu-rounds.jsonl
# then summarise with: .venv/bin/python benchmarks/summarize.py benchmarks/results/<that file>
set -euo pipefail
cd "$(dirname "$0")/.."
OURS=${OURS:-.venv/bin/python}
DATA=${JMVAE_DATA:-../shared/data}
for round in $(seq 1 "${ROUNDS:-3}"); do
  JMVAE_DATA="$DATA" BF16=1 COMPILE="${COMPILE:-}" bash benchmarks/run_all.sh | "$OURS" -c "
import json, sys
for line in sys.stdin:
    if line.startswith('{'):
        print(json.dumps({'round': $round, **json.loads(line)}), flush=True)"
done
