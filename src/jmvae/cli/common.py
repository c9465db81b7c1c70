"""What several commands share: run folders that are writable and left clean, data parallelism,
``--tensorboard``'s folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


from jmvae.errors import JMVAEError


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if nothing is in it (a folder a failed command made and left empty)."""
    try:
        folder.rmdir()
    except OSError:  # not empty, or already gone
        pass


def start_distributed(args: argparse.Namespace):
    """Join a torchrun launch (``--distributed`` or torchrun's environment); sets ``args.device``."""
    from jmvae import distributed

    if args.distributed and not distributed.launched_by_torchrun():
        raise JMVAEError("--distributed needs a torchrun launch, e.g. torchrun --nproc-per-node 2 -m jmvae train ...")
    world, args.device = distributed.setup(args.device)
    return world


def tensorboard_dir(flag: str | bool | None, run_dir: Path) -> Path | None:
    """``--tensorboard [DIR]``'s folder: DIR, or RUN_DIR/tensorboard; None without the flag."""
    if not flag:
        return None
    return run_dir / "tensorboard" if flag is True else Path(flag)


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise JMVAEError(f"cannot write to {folder} ({exc.strerror}); choose a writable --out") from None
