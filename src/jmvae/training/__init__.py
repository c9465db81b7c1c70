"""Training: the loop (``loop.py``), what one step minimises (``step.py``), the batches and their
draws (``batches.py``), the optimiser and its guards (``optim.py``), the run folder (``state.py``)."""

from __future__ import annotations

from jmvae.training.loop import TrainResult, resolve_device, train
from jmvae.training.optim import DivergenceError
from jmvae.training.state import read_history
from jmvae.training.step import ELBOStep, Step, StepInput

__all__ = ["DivergenceError", "ELBOStep", "Step", "StepInput", "TrainResult", "read_history", "resolve_device", "train"]
