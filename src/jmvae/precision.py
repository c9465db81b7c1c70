"""bfloat16 autocast, and a one-line warning where the CPU has no bfloat16 instructions.

``precision="bf16"`` runs the networks' matrix products in bfloat16 under ``torch.autocast``;
likelihoods, KL terms and the optimiser stay float32. On a CPU this is only fast with native
bfloat16 dot products: AMX (``amx_bf16``, Intel Sapphire Rapids and later) or ``avx512_bf16``
(AMD Zen 4, Intel Cooper Lake). Without them oneDNN converts every product to float32 and back,
and a JMVAE-kl training step was measured 14x slower than in float32 (docs/benchmarks.md,
"bf16 on a CPU without bfloat16 instructions").
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from pathlib import Path

import torch

BF16_INSTRUCTIONS = ("amx_bf16", "avx512_bf16")
"""CPU flags (as /proc/cpuinfo spells them) that give native bfloat16 dot products, fastest first."""


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The first CPU's feature flags from /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_instructions(flags: frozenset[str] | None = None) -> str | None:
    """The fastest native bfloat16 instruction set among ``flags`` (default: this CPU's), or None.

    None also where the flags cannot be read at all: then nothing is known, and nothing is warned.
    """
    flags = cpu_flags() if flags is None else flags
    return next((name for name in BF16_INSTRUCTIONS if name in flags), None)


def bf16_is_emulated(device: torch.device, flags: frozenset[str] | None = None) -> bool:
    """True on a CPU whose flags are known and include neither AMX nor avx512_bf16."""
    flags = cpu_flags() if flags is None else flags
    return device.type == "cpu" and bool(flags) and bf16_instructions(flags) is None


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager:
    """The context the networks' forward pass runs in: bfloat16 autocast for ``"bf16"``, else none.

    Warns (once per call site, a ``UserWarning`` the CLI prints as one line) where bf16 is asked for
    on a CPU that has to emulate it.
    """
    if precision != "bf16":
        return nullcontext()
    if bf16_is_emulated(device):
        warnings.warn("bf16 on this CPU, which has neither amx_bf16 nor avx512_bf16: its matrix products are "
                      "emulated and much slower than fp32 (14x measured on a JMVAE-kl training step); "
                      "use precision fp32 here", UserWarning, stacklevel=2)
    return torch.autocast(device.type, dtype=torch.bfloat16)
