"""The ``jmvae`` command line: train, evaluate, sample, predict, edit, reproduce, bench, plot, serve.

One module per command group (train, evaluate, generate, experiments, explore), their grammar
in ``parser.py``, the entry point and the error -> flag mapping in ``main.py``.

Errors in the user's input (data, flags, run folders, checkpoints) print one line and exit 2,
argparse's own errors too (``Parser``); ``--debug``, before or after the command, shows the
traceback instead. Python warnings (CelebA's partial data, say) print as one-line notes. Every
option's default shows in ``--help``. docs/cli-behaviour.md lists these promises and the tests
that check them.
"""

from __future__ import annotations

from jmvae.cli.main import main

__all__ = ["main"]
