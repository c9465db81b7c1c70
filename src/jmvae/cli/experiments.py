"""``jmvae reproduce`` (Table 1) and ``jmvae bench`` (throughput and memory)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path


from jmvae.data import load_dataset
from jmvae.errors import JMVAEError

from jmvae.cli.common import check_writable, remove_if_empty
from jmvae.cli.evaluate import eval_config
from jmvae.cli.train import train_config


def command_reproduce(args: argparse.Namespace) -> int:
    from jmvae.experiments.table1.reproduction import RunMismatch

    out = Path(args.out)
    created = not out.exists()
    try:
        return reproduce_table(args, out)
    except BaseException as exc:
        if created:
            remove_if_empty(out)  # a bad flag or missing data leaves no empty folder behind
        if isinstance(exc, RunMismatch):  # the library says what is wrong; the flags that change it:
            raise RunMismatch(f"{exc}; use another --runs (or --out) folder, or remove that run folder") from None
        raise


def reproduce_table(args: argparse.Namespace, out: Path) -> int:
    from jmvae.experiments.table1.reproduction import ReproduceConfig
    from jmvae.experiments.table1.rows import ROWS, row_name
    from jmvae.experiments.table1.runner import reproduce
    from jmvae.progress import write_line

    check_writable(out)
    rows = tuple(row_name(k, a) for k, a in ROWS)
    if args.models:
        chosen = tuple(m.strip() for m in args.models.split(","))
        unknown = [m for m in chosen if m not in rows]
        if unknown:
            raise JMVAEError(f"--models: unknown {unknown}; rows are {', '.join(rows)}")
        rows = chosen
    if args.seeds and any(a == "--seed" or a.startswith("--seed=") for a in args.argv):
        raise JMVAEError("give --seed or --seeds, not both")
    training = train_config(args, args.dataset)
    if args.jobs > 1:
        from jmvae.distributed import launched_by_torchrun

        if launched_by_torchrun():
            raise JMVAEError("--jobs runs its own worker processes; do not combine it with torchrun")
    data = load_dataset(args.dataset, args.data_dir)
    config = ReproduceConfig(
        out=out,
        runs=Path(args.runs) if args.runs else out / "runs",
        train=dataclasses.replace(training, seed=args.seeds[0]) if args.seeds else training,
        seeds=args.seeds or (),
        jobs=args.jobs,
        group=args.group,
        evaluation=eval_config(args),
        latent_dim=args.latent_dim or 64,
        hidden_dim=args.hidden_dim or 512,
        rows=rows,
    )
    command = "jmvae " + " ".join(shlex.quote(a) for a in args.argv)
    table_file = out / "table1.json"
    stamp = lambda: table_file.stat().st_mtime_ns if table_file.exists() else None  # noqa: E731
    before = stamp()
    table = reproduce(data, config, command, progress=not args.no_progress, log=write_line)
    written = "wrote" if stamp() != before else "unchanged:"
    verdicts = [c.get("verdict") for c in table["claims"]]
    held, unsure = verdicts.count("holds"), sum(1 for v in verdicts if v and v.startswith("not established"))
    print(f"{written} {out / 'table1.md'} and table1.json: {len(table['models'])} model{'s' * (len(table['models']) != 1)}, "
          f"{held} claim{' holds' if held == 1 else 's hold'}" + (f", {unsure} not established" if unsure else ""),
          file=sys.stderr)
    return 0


def command_bench(args: argparse.Namespace) -> int:
    from jmvae.experiments.bench import BenchConfig, bench

    config = BenchConfig(device=args.device, model=args.model, train_steps=args.steps, warmup_steps=args.warmup_steps,
                         eval_points=args.eval_points, k=args.k, chunk=args.chunk, threads=args.threads, precision=args.precision,
                         data_dir=args.data_dir, compile=args.compile)
    result = bench(config, log=lambda message: print(f"jmvae bench: {message}", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model} on {result['hardware']}")
        print(f"  training:   {result['train_samples_per_s']:9.0f} samples/s (batch 100), peak RSS {result['train_peak_rss_mb']:.0f} MB")
        print(f"  evaluation: {result['eval_samples_per_s']:9.0f} importance samples/s (k={args.k}), peak RSS {result['eval_peak_rss_mb']:.0f} MB")
        if "peak_gpu_mb" in result:
            print(f"  peak GPU memory: {result['peak_gpu_mb']:.0f} MB")
    return 0
