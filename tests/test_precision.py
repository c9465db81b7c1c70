"""bfloat16 autocast and the warning where a CPU has to emulate bfloat16 (``jmvae.precision``)."""

from __future__ import annotations

import warnings

import pytest
import torch

from jmvae import precision
from jmvae.experiments.hardware import hardware

ZEN3 = frozenset({"fpu", "avx2", "fma"})  # no avx512 at all
ZEN4 = ZEN3 | {"avx512f", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_tile", "amx_bf16"}
CPU = torch.device("cpu")


def test_the_fastest_bf16_instructions_are_named():
    assert precision.bf16_instructions(SAPPHIRE_RAPIDS) == "amx_bf16"
    assert precision.bf16_instructions(ZEN4) == "avx512_bf16"
    assert precision.bf16_instructions(ZEN3) is None


def test_bf16_counts_as_emulated_only_on_a_cpu_whose_flags_lack_it():
    assert precision.bf16_is_emulated(CPU, ZEN3)
    assert not precision.bf16_is_emulated(CPU, ZEN4)
    assert not precision.bf16_is_emulated(CPU, frozenset())  # flags unknown: nothing to claim
    assert not precision.bf16_is_emulated(torch.device("cuda"), ZEN3)  # the GPU does the products


@pytest.mark.parametrize("flags, warns", [(ZEN3, True), (ZEN4, False), (SAPPHIRE_RAPIDS, False)])
def test_bf16_autocast_warns_once_where_it_is_emulated(monkeypatch, flags, warns):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        context = precision.autocast_for(CPU, "bf16")
    assert [str(w.message).startswith("bf16 on this CPU, which has neither amx_bf16 nor avx512_bf16") for w in caught] == [True] * warns
    a = torch.randn(4, 8)
    with context:
        assert (a @ a.T).dtype == torch.bfloat16


def test_fp32_runs_without_autocast_and_without_a_warning(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context = precision.autocast_for(CPU, "fp32")
    a = torch.randn(4, 8)
    with context:
        assert (a @ a.T).dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the line names the GPU")
def test_the_hardware_line_says_whether_the_cpu_has_bf16_instructions(monkeypatch):
    for flags, said in [(ZEN3, "(no bf16 instructions)"), (ZEN4, "(avx512_bf16)"), (SAPPHIRE_RAPIDS, "(amx_bf16)")]:
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        assert said in hardware()
