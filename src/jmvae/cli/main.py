"""``jmvae``'s entry point: parse, choose threads, run the command, and turn the user's errors
into one line (with the flags that set what the error names) and exit 2."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

import torch

from jmvae.errors import JMVAEError, note_warning

from jmvae.cli.evaluate import command_evaluate
from jmvae.cli.experiments import command_bench, command_reproduce
from jmvae.cli.explore import command_plot, command_serve
from jmvae.cli.generate import command_edit, command_predict, command_sample
from jmvae.cli.parser import parser
from jmvae.cli.train import command_train


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "sample": command_sample, "predict": command_predict,
            "edit": command_edit, "reproduce": command_reproduce, "bench": command_bench, "plot": command_plot, "serve": command_serve}


def choose_threads(args: argparse.Namespace) -> None:
    """Set torch's threads before the command does any work: ``--threads``, else one per core
    that other processes leave free (``jmvae.cores``; torch's own default collapses beside a busy
    process). ``reproduce --jobs N`` shares the free cores out among its N workers, and this
    process takes a worker's share too, so the table's hardware line states what each used. With
    ``OMP_NUM_THREADS`` set (and no ``--threads``), every process, workers too, keeps torch's count."""
    from jmvae.cores import default_threads

    jobs = getattr(args, "jobs", 1)
    threads = getattr(args, "threads", None) or default_threads(jobs)
    if threads:
        torch.set_num_threads(threads)
    if args.command == "bench" or jobs > 1:  # handed on to its worker processes
        args.threads = threads or torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(message)s")
    threads = torch.get_num_threads()
    with warnings.catch_warnings():  # restores the usual warnings when main() returns (tests call it in-process)
        if not args.debug:
            warnings.showwarning = note_warning(args.command)
        choose_threads(args)
        try:
            return run_command(args)
        finally:
            if torch.get_num_threads() != threads:  # main() called in-process leaves torch as it found it
                torch.set_num_threads(threads)


SETTING_FLAGS = {"lr": "--lr", "warmup_epochs": "--warmup", "clip_grad_norm": "--clip", "compile": "--compile",
                 "device": "--device", "data_dir": "--data-dir", "run_dir": "--out", "threads": "--threads",
                 "distributed": "--distributed", "port": "--port", "compare": "--compare", "png_path": "--out"}
"""The flag that sets each library setting a ``JMVAEError`` names (``JMVAEError.settings``)."""


def with_flags(exc: Exception) -> str:
    """The error's message, with the flags that set the settings it names: "... (flags: --lr, --warmup)"."""
    message = str(exc) if not isinstance(exc, OSError) or not exc.filename else f"{exc.filename}: {exc.strerror}"
    flags = [SETTING_FLAGS[s] for s in getattr(exc, "settings", ()) if s in SETTING_FLAGS]
    return f"{message} (flags: {', '.join(flags)})" if flags else message


def run_command(args: argparse.Namespace) -> int:
    """The command's exit code; the user's errors as one line and 2 (``--debug``: the traceback)."""
    try:
        return COMMANDS[args.command](args)
    except (JMVAEError, ValueError, OSError) as exc:
        if args.debug:
            raise
        message = with_flags(exc)
        print(f"jmvae {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jmvae {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
