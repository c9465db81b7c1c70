"""The one-line description of the machine that measurements (Table 1, ``jmvae bench``) came from."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from jmvae import precision


def hardware() -> str:
    """The GPU, or the CPU model with its bfloat16 instructions (``jmvae.precision``), its core count and
    this process's torch threads; and torch's version."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if precision.cpu_flags():  # bf16 is fast or 14x slow by these flags: a measurement says which it had
        cpu = f"{cpu} ({precision.bf16_instructions() or 'no bf16 instructions'})"
    threads = torch.get_num_threads()  # with several workers: a worker's, which the parent takes too (jmvae.cli)
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' * (threads != 1)}, torch {torch.__version__}"
