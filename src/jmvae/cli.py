"""The ``jmvae`` command line: train, evaluate, sample, predict, edit, reproduce, bench, plot, serve.

Errors in the user's input (data, flags, run folders, checkpoints) print one line and exit 2,
argparse's own errors too (``Parser``); ``--debug``, before or after the command, shows the
traceback instead. Python warnings (CelebA's partial data, say) print as one-line notes. Every
option's default shows in ``--help``. docs/cli-behaviour.md lists these promises and the tests
that check them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from jmvae import __version__, presets
from jmvae.config import GAN_MODELS, MODEL_KINDS, PRECISIONS, AdversarialConfig, EvalConfig, ModelConfig, TrainConfig, model_kind
from jmvae.data import DATASETS, load_dataset
from jmvae.errors import CheckpointError, JMVAEError

TABLE1_DATASETS = tuple(d for d in DATASETS if d != "celeba")  # reproduce: the MNIST protocol of Table 1
MAX_SAMPLES = 1024
"""``sample --n`` at most: a 32 x 32 grid (a 2,800-pixel-wide PNG of MNIST digits at --scale 3).
Without a cap, --n 1000000 took 19 GB of memory and wrote a 484 MB PNG."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's formatter that appends "(default: ...)" to each option's help, except where
    there is nothing to show (None, False, an empty list) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        nothing = action.default is None or action.default is False or action.default == []  # not 0: a default
        if nothing or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and a hint (``jmvae train: error: ...``),
    not the usage block, with defaults in ``--help``; its subcommands' parsers are of this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n{self.prog} --help lists the options\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def sample_count(text: str) -> int:
    """``sample --n``: an integer from 1 to ``MAX_SAMPLES`` (one PNG grid)."""
    value = positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_SAMPLES} images for one grid; "
                                         f"run sample again with another --seed for more")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """A comma-separated list of distinct integer seeds."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a seed")
    return seeds


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def learning_rate(text: str) -> float:
    """``--lr``: a finite number > 0 (nan and inf are refused before any run folder is made)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0, e.g. 1e-3")
    return value


def device_name(text: str) -> str:
    """``--device``: cpu, cuda or cuda:N, checked while parsing so that a typo (``gpu``) or a
    missing GPU is one line and exit 2 rather than torch's traceback."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu or cuda (cuda:N for the N-th GPU)") from None
    if device.type == "cpu":
        return text
    if device.type != "cuda":
        raise argparse.ArgumentTypeError(f"{text!r}: jmvae runs on cpu or cuda")
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has no CUDA GPU that torch can use; use --device cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return text


THREADS_HELP = ("torch CPU threads (default: one per core that other processes leave free when the command starts, "
                "at least 1; torch's choice where OMP_NUM_THREADS is set)")


def add_debug(p: argparse.ArgumentParser) -> None:
    """``--debug`` after the command too; SUPPRESS keeps the root's value when it is not given here."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def add_distributed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of a torchrun launch (also implied by torchrun's environment)")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    p.add_argument("--data-dir", help="data folder holding mnist/, fashion_mnist/ and celeba/ (or celeba_partial/) (default: $JMVAE_DATA)")
    p.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_debug(p)


def add_training(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, help="epochs (default: 50 on digits, 100 on MNIST)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many optimisation steps")
    p.add_argument("--batch-size", type=positive_int, default=100, help="training batch size")
    p.add_argument("--lr", type=learning_rate, help="Adam learning rate (default 1e-3; 1e-4 on CelebA)")
    p.add_argument("--warmup", type=non_negative_float, help="linear KL warm-up, in epochs (default 0: off; 20 on CelebA)")
    p.add_argument("--warmup-all-kl", action="store_true", help="warm up the alpha KL terms too (MultiVae), not only KL to the prior")
    p.add_argument("--clip", type=non_negative_float, default=5.0, help="gradient-norm clipping (0: off)")
    p.add_argument("--seed", type=int, default=0, help="training seed: initialisation, shuffling, binarisation, noise")
    p.add_argument("--latent-dim", type=positive_int, help="latent dims (default 64; 128 on CelebA)")
    p.add_argument("--hidden-dim", type=positive_int, help="hidden units (default 512; 1024 on CelebA, attributes 512)")
    p.add_argument("--train-precision", choices=PRECISIONS, default="fp32",
                   help="bf16: training's matrix products in bfloat16, the rest float32 (faster on CPUs with AMX or avx512_bf16 and on GPUs)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the loss (fused kernels; compiling takes tens of seconds at the start; see docs/benchmarks.md)")


def add_evaluation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=positive_int, help="importance samples per bound (default 1000; 10 on CelebA, Table 2)")
    p.add_argument("--n-prior", type=positive_int, help="prior samples for log p(w) (default 5000; 10 on CelebA, Table 2)")
    p.add_argument("--n-prior-check", type=positive_int,
                   help="also report log p(w) and the x|w cells with this many prior samples, to show the bias "
                        "of a small --n-prior (default: none; 1000 on CelebA)")
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N test points")
    p.add_argument("--eval-batch-size", type=positive_int, default=100, help="test points per evaluation batch")
    p.add_argument("--chunk", type=positive_int, help="importance samples per pass (default: about 2,500 latent rows on a CPU, 200,000 on a GPU)")
    p.add_argument("--eval-seed", type=int, default=0, help="seed of the importance samples")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: matrix products in bfloat16 (faster on CPUs with AMX or avx512_bf16 and on GPUs; docs/benchmarks.md)")


TRAIN_MODELS = MODEL_KINDS + tuple(GAN_MODELS)


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="jmvae", description="Joint multimodal VAEs (Suzuki et al. 2016) and baselines.")
    root.add_argument("--version", action="version", version=f"jmvae {__version__}")
    root.add_argument("--debug", action="store_true", help="show tracebacks (also accepted after the command)")
    sub = root.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model; checkpoints and metrics go to --out")
    t.set_defaults(command_parser=t)
    t.add_argument("--data", choices=DATASETS, default="digits", help="data set (digits: scikit-learn's 8x8 digits, no download)")
    t.add_argument("--model", choices=TRAIN_MODELS, default="jmvae-kl",
                   help="the *-gan variants add a discriminator on the image (jmvae-gan: JMVAE-kl with one)")
    t.add_argument("--alpha", type=non_negative_float, help="JMVAE-kl weight of the unimodal KL terms (default 0.1)")
    t.add_argument("--attributes", choices=("bernoulli", "tanh-gaussian"),
                   help="CelebA's attribute likelihood: bernoulli (0/1, the default) or tanh-gaussian "
                        "(the paper's: -1/1 values, tanh mean, unit variance; docs/bounds.md)")
    t.add_argument("--gan-weight", type=non_negative_float,
                   help="GAN variants: weight of the decoder's generator loss (default 1, the paper's)")
    t.add_argument("--gan-real-label", type=float,
                   help="GAN variants: target of real images for the discriminator (< 1: one-sided label smoothing; default 1)")
    t.add_argument("--out", help="run folder (required, unless --resume names it)")
    t.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (or --out) from its latest checkpoint, with its own settings (only "
                        + ", ".join(f"--{d.replace('_', '-')}" for d in RESUME_MAY_CHANGE) + " may change); "
                        "a run folder with no checkpoint yet starts from its saved settings")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    add_training(t)
    add_common(t)
    add_distributed(t)

    e = sub.add_parser("evaluate", help="test log-likelihoods and accuracy of a trained run")
    e.add_argument("run_dir", help="run folder (the --out of jmvae train)")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_evaluation(e)
    add_common(e)
    add_distributed(e)

    s = sub.add_parser("sample", help="generate images from a label (or attributes), or from the prior p(z)")
    s.add_argument("run_dir")
    s.add_argument("--given", action="append", default=[],
                   help="the condition, e.g. label=3, label=Sneaker, Smiling=1,Male=0 (attributes by name, 1 or 0; those "
                        "not named off) or attributes=Male,Smiling (those on); a bare value (3) is the run's only "
                        "condition; each name once (default: none, z from the prior p(z))")
    s.add_argument("--n", type=sample_count, default=64, help=f"images, at most {MAX_SAMPLES}")
    s.add_argument("--out", required=True, help="PNG file")
    s.add_argument("--seed", type=int, default=0, help="seed of the latent draws")
    s.add_argument("--scale", type=positive_int, default=3, help="pixel magnification of the PNG")
    add_common(s)

    pr = sub.add_parser("predict", help="the other modality of an image file: each attribute's or class's probability")
    pr.add_argument("run_dir")
    pr.add_argument("--image", required=True, help="PNG or JPEG file (a face for CelebA runs, a digit for MNIST runs)")
    pr.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pr.add_argument("--top", type=positive_int, help="show only the N most probable (in --json too; default: all)")
    add_common(pr)

    ed = sub.add_parser("edit", help="change attributes (or the label) of an image and decode it again (Figure 6)")
    ed.add_argument("run_dir")
    ed.add_argument("--image", required=True, help="PNG or JPEG file")
    ed.add_argument("--set", action="append", required=True, dest="changes",
                    help="what to change, in sample --given's words: Smiling=1,Male=0 (attributes by name, 1 or 0; "
                         "those not named keep their predicted value), label=3, label=Sneaker or 3; repeat for several "
                         "edits (one column each)")
    ed.add_argument("--out", required=True, help="PNG file: the image, its reconstruction, then each edit, each column labelled")
    ed.add_argument("--method", choices=("shift", "joint"), default="shift",
                    help="shift: move z by q(z|w') - q(z|w); joint: encode q(z|x,w') (see docs/editing.md)")
    ed.add_argument("--scale", type=positive_int, default=3, help="pixel magnification of the PNG")
    add_common(ed)

    b = sub.add_parser("bench", help="training and evaluation throughput and peak memory on the paper's MNIST model")
    b.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    b.add_argument("--model", choices=MODEL_KINDS, default="jmvae-kl", help="model to time")
    b.add_argument("--steps", type=positive_int, default=300, help="timed training steps (after --warmup-steps)")
    b.add_argument("--warmup-steps", type=positive_int, default=30, help="untimed training steps first")
    b.add_argument("--eval-points", type=positive_int, default=100, help="test points for the evaluation timing")
    b.add_argument("--k", type=positive_int, default=1000, help="importance samples per test point")
    b.add_argument("--chunk", type=positive_int, help="importance samples per pass (default: about 2,500 latent rows on a CPU, 200,000 on a GPU)")
    b.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    b.add_argument("--precision", choices=PRECISIONS, default="fp32", help="precision of both timings' matrix products")
    b.add_argument("--compile", action="store_true", help="time training with --compile (compilation falls in the warm-up steps)")
    b.add_argument("--data-dir", help="time on real MNIST from this folder (default: MNIST-shaped random data)")
    b.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_debug(b)

    pl = sub.add_parser("plot", help="the paper's figures for a run: latent space, generation, reconstructions, curves")
    pl.add_argument("run_dir")
    pl.add_argument("--out", help="folder for the PNG files (default: RUN_DIR/figures)")
    pl.add_argument("--compare", help="another run (e.g. a VAE or CVAE) whose latent space is drawn beside this one")
    pl.add_argument("--embedding", choices=("pca", "tsne"), default="pca",
                    help="2-D embedding of the latent means (the paper's Figure 3 is a t-SNE; PCA is faster and linear)")
    pl.add_argument("--points", type=positive_int, default=2000, help="test points in the latent map")
    pl.add_argument("--seed", type=int, default=0, help="seed of the embedding and of the generated images")
    add_common(pl)

    sv = sub.add_parser("serve", help="a local web page to explore a trained run")
    sv.add_argument("run_dir")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on")
    add_common(sv)

    r = sub.add_parser("reproduce", help="train and evaluate every model of Table 1; write table1.md/json")
    r.add_argument("dataset", choices=TABLE1_DATASETS)
    r.add_argument("--out", required=True, help="folder for table1.md and table1.json")
    r.add_argument("--runs", help="folder for the models' run folders (default: OUT/runs)")
    r.add_argument("--models", help="comma-separated subset of rows, e.g. 'vae,jmvae-kl(alpha=0.01)' (default: all)")
    r.add_argument("--jobs", type=positive_int, default=1, help="train this many models side by side in worker "
                   "processes, each with --threads threads (without --threads: the free cores shared out among them)")
    r.add_argument("--seeds", type=seed_list, help="train every row once per seed, e.g. 0,1,2: cells are the mean "
                   "and standard deviation over seeds (instead of --seed)")
    add_training(r)
    add_evaluation(r)
    add_common(r)
    return root


# -- train: new runs, resumed runs ------------------------------------------------------------

RESUME_MAY_CHANGE = ("epochs", "max_steps", "device", "threads", "compile")
"""The ``train`` settings ``--resume`` honours: how far to train and where; the rest is the run's."""

NOT_SETTINGS = frozenset({"out", "resume", "overwrite", "data_dir", "no_progress", "distributed", "debug",
                          "command", "command_parser"})
"""``train`` flags that are not settings of the run (where its data and files are, what to show)."""


def given_options(args: argparse.Namespace) -> set[str]:
    """The destinations of the options given on the command line, not left at their defaults:
    the command's own parser is run again on the command's arguments, into a namespace where every
    destination already holds a marker (argparse leaves a destination it finds set alone)."""
    unset = object()
    argv = args.argv[args.argv.index(args.command) + 1:]
    namespace = argparse.Namespace(**{dest: unset for dest in vars(args)})
    args.command_parser.parse_args(argv, namespace)
    return {dest for dest, value in vars(namespace).items() if value is not unset}


def model_name(run: Any) -> str:
    """The ``--model`` name of a saved run (a ``RunConfig``): its kind, or its GAN variant's name."""
    if run.adversarial is not None:
        return next(name for name, kind in GAN_MODELS.items() if kind == run.model.kind)
    return run.model.kind


def saved_settings(run: Any) -> dict[str, Any]:
    """The value each ``train`` flag stands for in a saved run (a ``RunConfig``)."""
    m, t, game = run.model, run.train, run.adversarial
    return {"data": run.data["name"], "model": model_name(run), "alpha": m.alpha,
            "gan_weight": game.weight if game else None, "gan_real_label": game.real_label if game else None, "lr": t.lr, "batch_size": t.batch_size, "warmup": t.warmup_epochs,
            "warmup_all_kl": t.warmup_all_kl, "clip": t.clip_grad_norm or 0.0, "seed": t.seed,
            "latent_dim": m.latent_dim, "hidden_dim": m.hidden_dim, "train_precision": t.precision,
            "attributes": run.data.get("options", {}).get("attributes")}


def check_resume_flags(args: argparse.Namespace, run: Any, out: Path) -> None:
    """``--resume`` keeps the run's own settings: a flag that would change one is an error naming
    it, not silently ignored (a flag that repeats the saved value is fine)."""
    saved = saved_settings(run)
    conflicts = []
    for dest in sorted(given_options(args) - NOT_SETTINGS - set(RESUME_MAY_CHANGE)):
        value = getattr(args, dest)
        if dest not in saved or value != saved[dest]:
            conflicts.append(f"--{dest.replace('_', '-')} {value} (the run's: {saved.get(dest, 'fixed')})")
    if conflicts:
        raise JMVAEError(
            f"--resume continues {out} with its own settings, and cannot change {'; '.join(conflicts)}; drop "
            f"{'it' if len(conflicts) == 1 else 'them'}, or pass --overwrite instead of --resume to start that run anew "
            f"(only {', '.join('--' + d.replace('_', '-') for d in RESUME_MAY_CHANGE)} may change on resume)"
        )


def train_config(args: argparse.Namespace, dataset: str) -> TrainConfig:
    """The training flags over the data set's recipe (``jmvae.presets``)."""
    return presets.train_config(dataset, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                                lr=args.lr, warmup_epochs=args.warmup, warmup_all_kl=args.warmup_all_kl,
                                clip_grad_norm=args.clip or None, seed=args.seed, device=args.device,
                                threads=args.threads, precision=args.train_precision, compile=args.compile)


def eval_config(args: argparse.Namespace, dataset: str = "mnist") -> EvalConfig:
    """The evaluation flags over the data set's protocol (``jmvae.presets``): Table 1's k = 1000,
    N_w = 5000, or Table 2's k = 10, N_w = 10 on CelebA (with the x|w cells also reported at
    N_w = 1000: see ``EvalConfig.n_prior_check``)."""
    return presets.eval_config(dataset, k=args.k, n_prior=args.n_prior, n_prior_check=getattr(args, "n_prior_check", None),
                               limit=args.limit, batch_size=args.eval_batch_size, chunk=args.chunk, seed=args.eval_seed,
                               precision=args.precision)


def new_run(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig, Any, AdversarialConfig | None]:
    """The model, training settings, data and (GAN variants) adversarial game of a new run, from
    the command line's flags."""
    kind, adversarial = model_kind(args.model)
    if kind != "jmvae-kl" and args.alpha:
        raise JMVAEError(f"--alpha applies to --model jmvae-kl and jmvae-gan only, not {args.model}")
    if not adversarial and (args.gan_weight is not None or args.gan_real_label is not None):
        raise JMVAEError(f"--gan-weight and --gan-real-label apply to the GAN variants (e.g. --model jmvae-gan), not {args.model}")
    args.gan_weight = 1.0 if args.gan_weight is None else args.gan_weight
    args.gan_real_label = 1.0 if args.gan_real_label is None else args.gan_real_label
    if not 0.5 < args.gan_real_label <= 1:
        raise JMVAEError(f"--gan-real-label {args.gan_real_label}: must be in (0.5, 1]; 0.9 is the usual smoothing")
    if args.attributes and args.data != "celeba":
        raise JMVAEError(f"--attributes applies to --data celeba only, not {args.data}")
    celeba_options = {"progress": not args.no_progress, "attributes": args.attributes or "bernoulli"}
    data = load_dataset(args.data, args.data_dir, **(celeba_options if args.data == "celeba" else {}))
    model_config, game = presets.model_config(args.data, args.model, data.modalities, args.alpha, args.latent_dim,
                                              args.hidden_dim, args.gan_weight, args.gan_real_label)
    config = train_config(args, args.data)
    return model_config, config, data, game


def resumed_run(args: argparse.Namespace, out: Path) -> tuple[ModelConfig, TrainConfig, Any, AdversarialConfig | None]:
    """``--resume``: the run's own model, training settings and data (its config.json), so
    ``jmvae train --resume --out RUN`` needs no other flag. ``--epochs`` and ``--max-steps``
    (to train further), ``--device``, ``--threads`` and ``--compile`` may be given; they replace the
    saved ones. Any other setting given is an error unless it repeats the saved value."""
    from jmvae.checkpoint import load_run_config

    run = load_run_config(out)
    check_resume_flags(args, run, out)
    changes = {key: value for key, value in (("epochs", args.epochs), ("max_steps", args.max_steps),
                                             ("threads", args.threads)) if value is not None}
    if args.compile:
        changes["compile"] = True
    config = dataclasses.replace(run.train, device=args.device, **changes)
    name = run.data["name"]
    options = dict(run.data.get("options", {}))
    if name == "celeba":
        options["progress"] = not args.no_progress
    data = load_dataset(name, args.data_dir, **options)
    return run.model, config, data, run.adversarial


def command_train(args: argparse.Namespace) -> int:
    from jmvae import distributed
    from jmvae.training import train

    out = run_folder_of(args)
    world = start_distributed(args)
    if args.resume and args.overwrite:
        raise JMVAEError("--resume and --overwrite contradict each other; choose one")
    if (out / "config.json").exists() and not (args.resume or args.overwrite):
        raise CheckpointError(f"{out} already holds a run; pass --resume to continue it, --overwrite to replace it, or another --out")
    if args.resume and not (out / "config.json").exists():
        raise CheckpointError(f"--resume: {out} holds no run to continue (no config.json); start one with --out {out}")
    created = not out.exists()
    try:
        check_writable(out)
        model_config, config, data, game = resumed_run(args, out) if args.resume else new_run(args)
        distributed.barrier(world)  # every rank has checked the folder before rank 0 writes to it
        result = train(model_config, config, data, out, resume=args.resume, overwrite=args.overwrite,
                       progress=not args.no_progress, data_info=data.run_info(), adversarial=game)
    except BaseException:
        if created and world.is_main:
            remove_if_empty(out)  # train() took back what it wrote; a bad flag or data leaves no empty folder
        raise
    last = result.history[-1] if result.history else {}
    if not world.is_main:
        return 130 if result.interrupted else 0
    status = "stopped (checkpoint saved; --resume continues)" if result.interrupted else "trained"
    threads = torch.get_num_threads()
    name = game.display_name(model_config) if game else model_config.display_name
    print(f"{status} {name} on {data.name}: epoch {result.epoch}, step {result.step}, "
          f"{result.seconds:.1f} s on {threads} thread{'s' * (threads > 1)}, "
          + (f"last epoch's loss {last['loss']:.3f}" if last else "no full epoch yet")
          + f"; run folder {out}", file=sys.stderr)
    return 130 if result.interrupted else 0


def run_folder_of(args: argparse.Namespace) -> Path:
    """``train``'s run folder: ``--out``, or the folder ``--resume RUN_DIR`` names (then ``--resume``
    is True). Both may be given if they agree."""
    if isinstance(args.resume, str):
        if args.out is not None and Path(args.out) != Path(args.resume):
            raise JMVAEError(f"--resume {args.resume} and --out {args.out} name two run folders; give one")
        args.out, args.resume = args.resume, True
    if args.out is None:
        raise JMVAEError("train needs a run folder: --out RUN_DIR for a new run, or --resume RUN_DIR to continue one")
    return Path(args.out)


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


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise JMVAEError(f"cannot write to {folder} ({exc.strerror}); choose a writable --out") from None


def command_evaluate(args: argparse.Namespace) -> int:
    from jmvae.evaluation import evaluate
    from jmvae.runs import load_run

    world = start_distributed(args)
    loaded = load_run(args.run_dir, args.device)
    model, run, state = loaded.model, loaded.config, loaded.state
    data = load_dataset(run.data["name"], args.data_dir, **run.data.get("options", {}))
    config = eval_config(args, run.data["name"])
    with warnings.catch_warnings():
        if min(config.limit or math.inf, len(next(iter(data.test.values())))) < 2:  # active units: a variance over points
            warnings.filterwarnings("ignore", message=r"var\(\): degrees of freedom")
        result = evaluate(model, data.test, config, progress=not args.no_progress, name=loaded.display_name)
    if not world.is_main:
        return 0
    if args.json:
        print(result.to_json())
    else:
        print("\n".join(evaluation_lines(result.to_dict(), model.config, state["epoch"])))
    return 0


def evaluation_lines(result: dict[str, Any], config: ModelConfig, epochs: int) -> list[str]:
    """``evaluate``'s text: one aligned row per cell, mean ± standard error over the test points,
    each cell named by what it bounds (the "joint" cell is log p(image, label))."""
    x, *ws = config.names
    w = ", ".join(ws)
    names = {x: f"log p({x})", f"{x}|{'+'.join(ws)}": f"log p({x} | {w})", "joint": f"log p({x}, {w})"}
    rows = []
    for key, cell in result["log_likelihood"].items():
        errors = result.get("stderr", {}).get(key)
        for bound, value in (cell.items() if isinstance(cell, dict) else [("", cell)]):
            error = errors.get(bound) if isinstance(errors, dict) else errors
            if value is not None:
                rows.append((names.get(key, f"log p({key})"), bound, f"{value:9.3f}" + (f" ± {error:.3f}" if error is not None else "")))
    if result.get("log_p_w") is not None:  # the estimate the x|w cells subtract (docs/bounds.md)
        rows.append((f"log p^({w}), N_w={result['n_prior']}", "", f"{result['log_p_w']:9.3f}"))
    check = result.get("n_prior_check")
    if check:
        rows.append((f"log p^({w}), N_w={check['n_prior']}", "", f"{check['log_p_w']:9.3f}"))
        for bound, value in check[f"{x}|{'+'.join(ws)}"].items():
            if value is not None:
                rows.append((f"log p({x} | {w}), N_w={check['n_prior']}", bound, f"{value:9.3f}"))
    for key, value in result["accuracy"].items():
        if value is not None:
            rows.append((f"accuracy {key}", "", f"{value:9.4f}"))
    width = max((len(name) for name, _, _ in rows), default=0)
    points = result["n_test"]
    lines = [f"{result['model']} after {epochs} epoch{'s' * (epochs != 1)}: k={result['k']}, N_w={result['n_prior']}, "
             + f"{points} test point{'s' * (points != 1)} (nats, ± standard error over test points)"]
    lines += [f"  {name:<{width}}  {bound:<8}  {value}" for name, bound, value in rows]
    if result["n_test"] < 2:
        lines.append("  active units: need 2 or more test points (a variance over them)")
    else:
        units = ", ".join(f"q(z|{given.replace('+', ',')}) {count}" for given, count in result["active_units"].items())
        lines.append(f"  active units of {config.latent_dim}: {units}")
    return lines


def command_sample(args: argparse.Namespace) -> int:
    from jmvae.conditions import Vocabulary
    from jmvae.generation import generate
    from jmvae.imageio import check_png_path, displayable, image_grid, run_standardization, save_png
    from jmvae.runs import load_model

    check_png_path(args.out)
    model, run, _ = load_model(args.run_dir, args.device)
    x = run.model.modalities[0]
    vocabulary = Vocabulary.of_run(run.model, run.data, class_names(run.data["name"]))
    given = vocabulary.tensors(vocabulary.parse_all(args.given, "--given"))
    if not given and model.conditions:
        raise JMVAEError(f"{model.config.display_name} generates {x.name} only given {', '.join(model.conditions)}; "
                         f"add e.g. --given {model.conditions[0]}=3")
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    dist = generate(model, given, args.n, generator)[x.name]
    images = displayable(dist.mean.reshape(args.n, *x.shape), run_standardization(run.data, x.name))
    path = save_png(image_grid(images), args.out, args.scale)
    source = ("given " + " and ".join(args.given)) if given else "from the prior p(z)"
    print(f"wrote {args.n} samples of {x.name} {source} to {path}", file=sys.stderr)
    return 0


def class_names(dataset: str) -> tuple[str, ...] | None:
    from jmvae.data.mnist import FASHION_MNIST

    return FASHION_MNIST.classes if dataset == "fashion-mnist" else None


def command_predict(args: argparse.Namespace) -> int:
    from jmvae.conditions import Vocabulary
    from jmvae.editing import other_modality, predict_w_from_image
    from jmvae.imageio import load_image
    from jmvae.runs import load_model

    model, run, _ = load_model(args.run_dir, args.device)
    names = Vocabulary.of_run(run.model, run.data, class_names(run.data["name"])).names(other_modality(model))
    image, notes = load_image(args.image, run.model.modalities[0], run.data)
    prediction = predict_w_from_image(model, image.to(args.device), names)
    order = prediction.probabilities.argsort(descending=True).tolist()[: args.top]
    for note in notes:
        print(f"{args.image}: {note}", file=sys.stderr)
    if args.json:  # the --top most probable, most probable first
        shown = {names[i]: float(prediction.probabilities[i]) for i in order}
        print(json.dumps({"image": str(args.image), "kind": prediction.kind, "probabilities": shown}))
        return 0
    what = "P(attribute | image)" if prediction.kind == "attributes" else "P(class | image)"
    print(f"{what} from {model.config.display_name}:")
    width = max(len(names[i]) for i in order)
    for i in order:
        print(f"  {names[i]:<{width}}  {float(prediction.probabilities[i]):.3f}")
    return 0


def command_edit(args: argparse.Namespace) -> int:
    from jmvae.conditions import Vocabulary
    from jmvae.editing import edit_image, other_modality
    from jmvae.imageio import check_png_path, displayable, labelled_row, load_image, run_standardization, save_png
    from jmvae.runs import load_model

    check_png_path(args.out)
    model, run, _ = load_model(args.run_dir, args.device)
    w, x = other_modality(model), run.model.modalities[0]
    vocabulary = Vocabulary.of_run(run.model, run.data, class_names(run.data["name"]))
    edits = [vocabulary.parse(text, "--set")[w] for text in args.changes]
    image, notes = load_image(args.image, x, run.data)
    _, reconstruction, edited = edit_image(model, image.to(args.device), edits, vocabulary.names(w), args.method)
    images = displayable(torch.cat([image.to(reconstruction.device), reconstruction, *edited]), run_standardization(run.data, x.name))
    titles = ["image", "reconstruction", *(text.strip() for text in args.changes)]  # each column says what it is
    path = save_png(labelled_row(images, titles, args.scale), args.out)
    for note in notes:
        print(f"{args.image}: {note}", file=sys.stderr)
    print(f"wrote {path}: the image, its reconstruction, then " + "; ".join(args.changes), file=sys.stderr)
    return 0


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
        evaluation=eval_config(args),
        latent_dim=args.latent_dim or 64,
        hidden_dim=args.hidden_dim or 512,
        rows=rows,
    )
    command = "jmvae " + " ".join(shlex.quote(a) for a in args.argv)
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    table = reproduce(data, config, command, progress=not args.no_progress, log=log)
    verdicts = [c.get("verdict") for c in table["claims"]]
    held, unsure = verdicts.count("holds"), sum(1 for v in verdicts if v and v.startswith("not established"))
    print(f"wrote {out / 'table1.md'} and table1.json: {len(table['models'])} model{'s' * (len(table['models']) != 1)}, "
          f"{held} claim{' holds' if held == 1 else 's hold'}" + (f", {unsure} not established" if unsure else ""),
          file=sys.stderr)
    return 0


def command_bench(args: argparse.Namespace) -> int:
    from jmvae.experiments.bench import BenchConfig, bench

    config = BenchConfig(device=args.device, model=args.model, train_steps=args.steps, warmup_steps=args.warmup_steps,
                         eval_points=args.eval_points, k=args.k, chunk=args.chunk, threads=args.threads, precision=args.precision,
                         data_dir=args.data_dir, compile=args.compile)
    result = bench(config)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model} on {result['hardware']}")
        print(f"  training:   {result['train_samples_per_s']:9.0f} samples/s (batch 100), peak RSS {result['train_peak_rss_mb']:.0f} MB")
        print(f"  evaluation: {result['eval_samples_per_s']:9.0f} importance samples/s (k={args.k}), peak RSS {result['eval_peak_rss_mb']:.0f} MB")
        if "peak_gpu_mb" in result:
            print(f"  peak GPU memory: {result['peak_gpu_mb']:.0f} MB")
    return 0


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


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "sample": command_sample, "predict": command_predict,
            "edit": command_edit, "reproduce": command_reproduce, "bench": command_bench, "plot": command_plot, "serve": command_serve}


def choose_threads(args: argparse.Namespace) -> None:
    """Set torch's threads before the command does any work: ``--threads``, else one per core
    that other processes leave free (``jmvae.cores``; torch's own default collapses beside a busy
    process). ``reproduce --jobs N`` shares the free cores out among its N workers, and this
    process takes a worker's share too, so the table's hardware line states what each used."""
    from jmvae.cores import default_threads

    jobs = getattr(args, "jobs", 1)
    threads = getattr(args, "threads", None) or default_threads(jobs)
    if threads:
        torch.set_num_threads(threads)
        if args.command == "bench" or jobs > 1:  # handed on to its worker processes
            args.threads = threads


def note_warning(command: str):
    """A ``warnings.showwarning`` that prints a Python warning as one line, ``jmvae CMD: note: ...``."""
    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
        print(f"jmvae {command}: note: {' '.join(str(message).split())}", file=sys.stderr)

    return show


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
                 "distributed": "--distributed"}
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
