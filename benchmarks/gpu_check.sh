#!/usr/bin/env bash
# The GPU checks of issue 15 in one short run, for a session whose task is lent a device machine
# (the `device` tool; none has been lent so far). Prepare here, once:
#     mkdir -p .gpu-data/mnist && cp ../shared/data/mnist/*.gz .gpu-data/mnist/ && echo /.gpu-data/ >> .git/info/exclude
# then call the tool's run with command "bash benchmarks/gpu_check.sh", carry [".gpu-data"] and a
# timeout_s of about 560. It uses the device machine's own python3 (PyTorch with CUDA) and this
# checkout's src/ without installing; each part writes to $OUT as it goes, so a part cut off by its
# own timeout leaves the others' results:
#   gpu.csv, torch.txt             the GPU and torch seen there
#   tests.txt                      tests/test_cuda.py: a group on the GPU against single runs, resume, bf16
#   group_sweep.jsonl              nine JMVAE-kl models together against one after another (fp32, bf16)
#   converged_table_time.jsonl     the converged table's groups timed and projected on the GPU
set -uo pipefail
export PYTHONPATH="$PWD/src:$PWD/tests:$PWD/benchmarks" PYTHONUNBUFFERED=1 JMVAE_DATA="$PWD/.gpu-data"
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$out/torch.txt" 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$out/tests.txt" 2>&1
timeout 150 python3 benchmarks/group_sweep.py --device cuda --steps 50 --warmup 10 --rounds 2 > "$out/group_sweep.jsonl" 2>&1
timeout 200 python3 benchmarks/converged_table_time.py --device cuda --steps 100 --warmup 10 --jobs 1 --eval-images 1000 \
    > "$out/converged_table_time.jsonl" 2>&1
tail -n 3 "$out"/*
