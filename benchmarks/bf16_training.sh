#!/usr/bin/env bash
# Does --train-precision bf16 train as good a model as float32? The same JMVAE-kl(alpha=0.1),
# seed and batches trained both ways on MNIST, then both evaluated in float32 at k = 1000,
# N_w = 5000 on the first LIMIT test images. Prints one JSON line per precision:
#   bash benchmarks/bf16_training.sh > benchmarks/results/$(date +%F)-bf16-training.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
EPOCHS=${EPOCHS:-10}
LIMIT=${LIMIT:-1000}
WORK=$(mktemp -d)
export JMVAE_DATA=${JMVAE_DATA:-../shared/data}
for precision in fp32 bf16; do
  "$PY" -m jmvae train --data mnist --model jmvae-kl --alpha 0.1 --epochs "$EPOCHS" --train-precision "$precision" \
    --out "$WORK/$precision" --no-progress 2>/dev/null
  "$PY" -m jmvae evaluate "$WORK/$precision" --limit "$LIMIT" --json --no-progress \
    | "$PY" -c "
import json, sys
r = json.loads(sys.stdin.read())
history = [json.loads(line) for line in open('$WORK/$precision/metrics.jsonl')]
print(json.dumps({'train_precision': '$precision', 'epochs': $EPOCHS, 'train_seconds': history[-1]['seconds'],
                  'final_train_loss': history[-1]['loss'], **r}))"
done
rm -rf "$WORK"
