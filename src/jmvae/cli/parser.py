"""The command line's grammar: every command's flags, their value types and their help."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from jmvae import __version__
from jmvae.config import SUBSET_RULES, GAN_MODELS, MODEL_KINDS, PRECISIONS
from jmvae.data import DATASETS
from jmvae.cli.train import RESUME_MAY_CHANGE

TABLE1_DATASETS = tuple(d for d in DATASETS if d not in ("celeba", "mnist-fashion"))  # reproduce: Table 1's two-modality protocol
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


def data_argument(text: str) -> str:
    """``train --data``: a data set's name, or a folder (its absolute path; its ``jmvae.json`` is
    checked when the data are loaded, so a folder's problems get the loader's one-line message)."""
    if text in DATASETS:
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path.resolve())
    raise argparse.ArgumentTypeError(f"{text!r} is neither a data set ({', '.join(DATASETS)}) nor a folder; a folder of "
                                     f"your own data holds a jmvae.json (docs/data-folder.md)")


def alpha_list(text: str) -> tuple[float, ...]:
    """``--alpha``: one value >= 0, or a comma-separated list of distinct ones (a group of runs)."""
    values = tuple(non_negative_float(part) for part in text.split(","))
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a value")
    return values


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def non_negative_float(text: str) -> float:
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def learning_rate(text: str) -> float:
    """``--lr``: a finite number > 0 (nan and inf are refused before any run folder is made)."""
    value = number(text)
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
    p.add_argument("--no-progress", action="store_true", help="show no progress (a bar on a terminal, a line a minute in a file or pipe)")
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


def add_tensorboard(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--tensorboard", nargs="?", const=True, default=None, metavar="DIR",
                   help=f"{what} (default DIR: RUN_DIR/tensorboard; needs pip install 'jmvae[tensorboard]')")


TRAIN_MODELS = MODEL_KINDS + tuple(GAN_MODELS)


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="jmvae", description="Joint multimodal VAEs (Suzuki et al. 2016) and baselines.")
    root.add_argument("--version", action="version", version=f"jmvae {__version__}")
    root.add_argument("--debug", action="store_true", help="show tracebacks (also accepted after the command)")
    sub = root.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model; checkpoints and metrics go to --out")
    t.set_defaults(command_parser=t)
    t.add_argument("--data", type=data_argument, default="digits",
                   help=f"data set ({', '.join(DATASETS)}; digits: scikit-learn's 8x8 digits, no download), or a folder "
                        "of your own data holding a jmvae.json (docs/data-folder.md)")
    t.add_argument("--model", choices=TRAIN_MODELS, default="jmvae-kl",
                   help="the *-gan variants add a discriminator on the image (jmvae-gan: JMVAE-kl with one)")
    t.add_argument("--alpha", type=alpha_list, help="JMVAE-kl weight of the unimodal KL terms (default 0.1); a "
                   "comma-separated list (e.g. 0.01,0.1,1) trains one model per value together")
    t.add_argument("--seeds", type=seed_list, help="train one model per seed together (e.g. 0,1,2; with a list of "
                   "--alpha values, one per pair), each in its own run folder under --out (instead of --seed)")
    t.add_argument("--attributes", choices=("bernoulli", "tanh-gaussian"),
                   help="CelebA's attribute likelihood: bernoulli (0/1, the default) or tanh-gaussian "
                        "(the paper's: -1/1 values, tanh mean, unit variance; docs/bounds.md)")
    t.add_argument("--subset-inference", choices=SUBSET_RULES,
                   help="JMVAE-kl with three or more modalities: z from two of them by the prior-corrected product of "
                        "their experts (prior-product, the default), the plain product, or a mixture (docs/three-modalities.md)")
    t.add_argument("--labelled", type=positive_int, metavar="N",
                   help="semi-supervised: keep the labels of N training images (balanced per class, a multiple of the "
                        "classes), the others unlabelled; JMVAE learns from both (docs/partial-data.md)")
    t.add_argument("--labelled-seed", type=int, default=0, help="seed of the choice of --labelled images (default 0)")
    t.add_argument("--labelled-only", action="store_true",
                   help="with --labelled: train on the labelled images only (the fully paired subset)")
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
    add_tensorboard(t, "also log every term metrics.jsonl records, at the same steps, as TensorBoard scalars in DIR")
    add_training(t)
    add_common(t)
    add_distributed(t)

    e = sub.add_parser("evaluate", help="test log-likelihoods and accuracy of a trained run")
    e.add_argument("run_dir", help="run folder (the --out of jmvae train)")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_tensorboard(e, "also write the evaluation's cells as TensorBoard scalars (eval/...) at the run's last step in DIR")
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
    r.add_argument("--jobs", type=positive_int, default=1, help="train this many models (or groups of them) side by "
                   "side in worker processes, each with --threads threads (without --threads: the free cores shared "
                   "out among them)")
    r.add_argument("--group", action=argparse.BooleanOptionalAction, default=True,
                   help="train the rows that share an architecture (every jmvae-kl alpha, each other model's seeds) "
                   "together, one group each (default); --no-group trains every (row, seed) alone")
    r.add_argument("--seeds", type=seed_list, help="train every row once per seed, e.g. 0,1,2: cells are the mean "
                   "and standard deviation over seeds (instead of --seed)")
    add_training(r)
    add_evaluation(r)
    add_common(r)
    return root
