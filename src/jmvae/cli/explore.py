"""``jmvae plot`` (the paper's figures for a run) and ``jmvae serve`` (the explorer)."""

from __future__ import annotations

import argparse
from pathlib import Path
from jmvae.cli.common import check_writable


def command_plot(args: argparse.Namespace) -> int:
    from jmvae.plots import plot_run

    out = Path(args.out) if args.out else Path(args.run_dir) / "figures"
    check_writable(out)
    written = plot_run(Path(args.run_dir), out, compare=Path(args.compare) if args.compare else None,
                       embedding=args.embedding, points=args.points, seed=args.seed, device=args.device,
                       data_dir=args.data_dir)
    for path in written:
        print(path)
    return 0


def command_serve(args: argparse.Namespace) -> int:
    from jmvae.explorer import serve

    serve(Path(args.run_dir), host=args.host, port=args.port, device=args.device, data_dir=args.data_dir)
    return 0
