"""``jmvae sample``, ``predict`` and ``edit``: one modality from another, through one condition grammar."""

from __future__ import annotations

import argparse
import json
import sys

import torch

from jmvae.data import DataInfo
from jmvae.errors import JMVAEError


def command_sample(args: argparse.Namespace) -> int:
    from jmvae.conditions import Vocabulary
    from jmvae.generation import generate
    from jmvae.imageio import check_png_path, displayable, image_grid, save_png
    from jmvae.runs import load_run

    check_png_path(args.out)
    loaded = load_run(args.run_dir, args.device)
    model, run = loaded.model, loaded.config
    x = run.model.modalities[0]
    vocabulary = Vocabulary.of_run(run.model, run.data, class_names(run.data))
    given = vocabulary.tensors(vocabulary.parse_all(args.given, "--given"))
    if not given and model.conditions:
        raise JMVAEError(f"{run.display_name} generates {x.name} only given {', '.join(model.conditions)}; "
                         f"add e.g. --given {model.conditions[0]}=3")
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    dist = generate(model, given, args.n, generator)[x.name]
    images = displayable(dist.mean.reshape(args.n, *x.shape), run.data.standardization.get(x.name))
    path = save_png(image_grid(images), args.out, args.scale)
    source = ("given " + " and ".join(args.given)) if given else "from the prior p(z)"
    print(f"wrote {args.n} samples of {x.name} {source} to {path}", file=sys.stderr)
    return 0


def class_names(data: DataInfo) -> tuple[str, ...] | None:
    """The names of a run's classes (``data``: its ``DataInfo``) where its data set has them:
    Fashion-MNIST's, or a data folder's first categorical modality's (its ``jmvae.json``)."""
    from jmvae.data.folder import read_spec
    from jmvae.data.mnist import FASHION_MNIST

    if data.folder is not None:
        return read_spec(data.folder).classes or None
    return FASHION_MNIST.classes if data.name == "fashion-mnist" else None


def command_predict(args: argparse.Namespace) -> int:
    from jmvae.conditions import Vocabulary
    from jmvae.editing import other_modality, predict_w_from_image
    from jmvae.imageio import load_image
    from jmvae.runs import load_run

    loaded = load_run(args.run_dir, args.device)
    model, run = loaded.model, loaded.config
    names = Vocabulary.of_run(run.model, run.data, class_names(run.data)).names(other_modality(model))
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
    print(f"{what} from {run.display_name}:")
    width = max(len(names[i]) for i in order)
    for i in order:
        print(f"  {names[i]:<{width}}  {float(prediction.probabilities[i]):.3f}")
    return 0


def command_edit(args: argparse.Namespace) -> int:
    from jmvae.conditions import Vocabulary
    from jmvae.editing import edit_image, other_modality
    from jmvae.imageio import check_png_path, displayable, labelled_row, load_image, save_png
    from jmvae.runs import load_run

    check_png_path(args.out)
    loaded = load_run(args.run_dir, args.device)
    model, run = loaded.model, loaded.config
    w, x = other_modality(model), run.model.modalities[0]
    vocabulary = Vocabulary.of_run(run.model, run.data, class_names(run.data))
    edits = [vocabulary.parse(text, "--set")[w] for text in args.changes]
    image, notes = load_image(args.image, x, run.data)
    _, reconstruction, edited = edit_image(model, image.to(args.device), edits, vocabulary.names(w), args.method)
    images = displayable(torch.cat([image.to(reconstruction.device), reconstruction, *edited]), run.data.standardization.get(x.name))
    titles = ["image", "reconstruction", *(text.strip() for text in args.changes)]  # each column says what it is
    path = save_png(labelled_row(images, titles, args.scale), args.out)
    for note in notes:
        print(f"{args.image}: {note}", file=sys.stderr)
    print(f"wrote {path}: the image, its reconstruction, then " + "; ".join(args.changes), file=sys.stderr)
    return 0
