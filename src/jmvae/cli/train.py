"""``jmvae train``: a new run from the flags over the data set's recipe, or a resumed one from its
own settings (``--resume``, which refuses a flag it would ignore)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from jmvae import presets
from jmvae.config import GAN_MODELS, AdversarialConfig, ModelConfig, TrainConfig, model_kind
from jmvae.data import load_dataset
from jmvae.errors import CheckpointError, JMVAEError

from jmvae.cli.common import check_writable, remove_if_empty, start_distributed, tensorboard_dir


RESUME_MAY_CHANGE = ("epochs", "max_steps", "device", "threads", "compile")
"""The ``train`` settings ``--resume`` honours: how far to train and where; the rest is the run's."""

NOT_SETTINGS = frozenset({"out", "resume", "overwrite", "data_dir", "no_progress", "distributed", "debug",
                          "command", "command_parser", "tensorboard"})
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
    return {"data": run.data.folder or run.data.name, "model": model_name(run), "alpha": m.alpha, "seeds": (t.seed,),
            "gan_weight": game.weight if game else None, "gan_real_label": game.real_label if game else None, "lr": t.lr, "batch_size": t.batch_size, "warmup": t.warmup_epochs,
            "warmup_all_kl": t.warmup_all_kl, "clip": t.clip_grad_norm or 0.0, "seed": t.seed,
            "latent_dim": m.latent_dim, "subset_inference": m.subset_inference, "hidden_dim": m.hidden_dim, "train_precision": t.precision,
            "attributes": run.data.options.get("attributes"), "labelled": run.data.options.get("labelled"),
            "labelled_seed": run.data.options.get("labelled_seed", 0),
            "labelled_only": run.data.options.get("labelled_only", False)}


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
    data = load_dataset(args.data, args.data_dir, **data_options(args))
    recipe = presets.recipe_name(data.run_info())  # a data folder's: the generic one
    model_config, game = presets.model_config(recipe, args.model, data.modalities, args.alpha, args.latent_dim,
                                              args.hidden_dim, args.gan_weight, args.gan_real_label)
    if args.subset_inference:
        if model_config.kind != "jmvae-kl" or len(model_config.modalities) < 3:
            raise JMVAEError(f"--subset-inference applies to --model jmvae-kl with three or more modalities "
                             f"({args.data} with {args.model} has {len(model_config.modalities)} and no subset to infer from)")
        model_config = dataclasses.replace(model_config, subset_inference=args.subset_inference)
    config = train_config(args, recipe)
    return model_config, config, data, game


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The loader options the flags stand for: CelebA's, or a semi-supervised split's (``--labelled``)."""
    if args.data == "celeba":
        if args.labelled:
            raise JMVAEError("--labelled applies to data sets with class labels (digits, mnist, fashion-mnist), not celeba")
        return {"progress": not args.no_progress, "attributes": args.attributes or "bernoulli"}
    if (args.labelled_only or args.labelled_seed) and not args.labelled:
        raise JMVAEError("--labelled-only and --labelled-seed apply with --labelled N only")
    if not args.labelled:
        return {}
    options: dict[str, Any] = {"labelled": args.labelled, "labelled_seed": args.labelled_seed}
    if args.labelled_only:
        options["labelled_only"] = True
    return options


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
    name = run.data.name
    options = dict(run.data.options)
    if name == "celeba":
        options["progress"] = not args.no_progress
    data = load_dataset(name, args.data_dir, **options)
    return run.model, config, data, run.adversarial


def members_of(args: argparse.Namespace) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """The seeds and alphas whose cross product ``train`` trains (``--seeds``, a list of ``--alpha``);
    ``args.seed`` and ``args.alpha`` become the first of each (one of each: a single run)."""
    if args.seeds is not None and "seed" in given_options(args):
        raise JMVAEError("--seed and --seeds: give one (--seeds 3 is --seed 3)")
    seeds, alphas = args.seeds or (args.seed,), args.alpha or (None,)
    args.seed, args.alpha = seeds[0], alphas[0]
    return seeds, alphas


def command_train(args: argparse.Namespace) -> int:
    from jmvae import distributed
    from jmvae.training import train
    from jmvae.training.group import GROUP_RECORD

    out = run_folder_of(args)
    seeds, alphas = members_of(args)
    if len(seeds) * len(alphas) > 1 or (args.resume and (out / GROUP_RECORD).exists()):
        if args.tensorboard:
            raise JMVAEError("--tensorboard logs one run; train the members one at a time to log them, or read "
                             "each member's metrics.jsonl")
        return command_train_group(args, out, seeds, alphas)
    sinks = tensorboard_sinks(args.tensorboard, out)  # before anything is written: a missing package is one line
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
                       progress=not args.no_progress, data_info=data.run_info(), adversarial=game, sinks=sinks)
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


def tensorboard_sinks(flag: str | bool | None, run_dir: Path) -> list[Any]:
    """``train --tensorboard``'s sink (``jmvae.training.sinks``; tensorboard loads only then)."""
    folder = tensorboard_dir(flag, run_dir)
    if folder is None:
        return []
    from jmvae.training.sinks import TensorBoardSink

    return [TensorBoardSink(folder)]


def command_train_group(args: argparse.Namespace, out: Path, seeds: tuple[int, ...],
                        alphas: tuple[float | None, ...]) -> int:
    """``jmvae train`` of several models together (``jmvae.training.group``): one run folder per
    (alpha, seed) under ``out``, named by ``member_name``; ``--resume OUT`` continues the group."""
    from jmvae.checkpoint import read_json
    from jmvae.training.group import GROUP_RECORD, train_group

    if start_distributed(args).enabled:
        raise JMVAEError("several models together (--seeds, a list of --alpha) train in one process; "
                         "launch them without torchrun")
    if args.resume and args.overwrite:
        raise JMVAEError("--resume and --overwrite contradict each other; choose one")
    record = out / GROUP_RECORD
    if record.exists() and not (args.resume or args.overwrite):
        raise CheckpointError(f"{out} already holds a group of runs; pass --resume to continue it, --overwrite to "
                              "replace it, or another --out")
    if len(alphas) > 1 and model_kind(args.model)[0] != "jmvae-kl":
        raise JMVAEError(f"--alpha applies to --model jmvae-kl only, not {args.model}")
    created = not out.exists()
    try:
        check_writable(out)
        if args.resume:
            members = read_json(record)["members"]
            pairs = [(m["alpha"], m["seed"]) for m in members]
            model_config, config, data, game = resumed_run(args, out / members[0]["name"])
        else:
            model_config, config, data, game = new_run(args)
            pairs = [(model_config.alpha if a is None else a, s) for a in alphas for s in seeds]
        if game is not None:
            raise JMVAEError(f"--model {args.model}: the GAN variants train one at a time, not with --seeds or a "
                             "list of --alpha")
        result = train_group(model_config, config, data, out, pairs, resume=args.resume, overwrite=args.overwrite,
                             progress=not args.no_progress, data_info=data.run_info())
    except BaseException:
        if created:
            remove_if_empty(out)
        raise
    for member in result.members:
        last = member.history[-1] if member.history else {}
        status = member.diverged or (("stopped (checkpoint saved; --resume continues)" if result.interrupted else "trained")
                                     + f" {member.run.model.display_name} seed {member.run.train.seed}: epoch "
                                     f"{result.epoch}, step {result.step}, "
                                     + (f"last epoch's loss {last['loss']:.3f}" if last else "no full epoch yet"))
        print(f"{status}; run folder {out / member.name}", file=sys.stderr)
    threads = torch.get_num_threads()
    print(f"{len(result.members)} models of {data.name} together: {result.seconds:.1f} s on {threads} "
          f"thread{'s' * (threads > 1)}", file=sys.stderr)
    if result.interrupted:
        return 130
    return 1 if any(m.diverged for m in result.members) else 0


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
