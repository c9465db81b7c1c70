"""The paper's qualitative figures for a trained run, as PNG files (matplotlib).

- ``latent.png`` (Figure 3): a 2-D embedding (PCA or t-SNE) of the latent means of the test set
  under the model's training posterior (JMVAE: q(z | x, w); VAE: q(z | x); CVAE, CMMA:
  q(z | x, w)), coloured by label; with ``compare``, the other run's map beside it.
- ``generation.png`` (Appendix E, Figure 7): one row per label, images drawn from the label alone:
  z ~ q(z | w) for JMVAE (its unimodal encoder for JMVAE-kl, the joint encoder with the image
  zero-filled for JMVAE-zero), z ~ p(z | w) for the CMMA, z ~ N(0, I) with w for the CVAE; each
  image is the Bernoulli mean of p(x | z).
- ``reconstructions.png`` (Appendix C): test images, their reconstructions through the joint
  encoder q(z | x, w) and through the image-only encoder q(z | x) (mean of q, then p(x | z)).
- ``curves.png``: every logged loss term (reconstruction per modality, KL to the prior, the
  alpha-weighted unimodal KLs, the GAN variants' terms) against the epoch, from ``metrics.jsonl``.

For attribute data (CelebA: colour faces, 40 binary attributes), instead of ``generation.png``:

- ``faces_per_attribute.png`` (Figure 4a): one row per attribute a, with w_a = that attribute on
  and the others off: first the "average face", the image mean at the mean of the generation
  latent given w_a (JMVAE: q(z | w_a)), then faces at random draws of it;
- ``attribute_editing.png`` (Figure 6, JMVAE only): test faces, their reconstructions, then each
  face with one attribute flipped from its predicted value (``jmvae.editing``, shift method);

and ``latent.png`` is coloured by one attribute (``Male`` by default) instead of a label.
Faces are shown with the run's standardization undone. Each figure is its own
``matplotlib.figure.Figure``, drawn by the Agg renderer when saved: no pyplot, no global backend
or figure state, so plotting from a thread, a notebook or a server changes nothing around it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from jmvae.data import load_dataset
from jmvae.errors import JMVAEError
from jmvae.generation import generate
from jmvae.imageio import displayable, image_grid
from jmvae.models import MultimodalModel
from jmvae.runs import load_run
from jmvae.training import read_history

logger = logging.getLogger(__name__)


def save_figure(fig: Figure, path: Path, dpi: int = 120, rect: Sequence[float] = (0, 0, 1, 1)) -> Path:
    """Lay ``fig`` out tightly within ``rect`` (figure fractions) and write it to ``path``."""
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=dpi)
    return path


def image_and_label(model: MultimodalModel) -> tuple[str, str | None]:
    """The image modality (the first) and the categorical label, if the model uses one."""
    usable = set(model.generated) | set(model.conditions)  # the VAE ignores the label
    label = next((m.name for m in model.config.modalities[1:] if m.likelihood == "categorical" and m.name in usable), None)
    return model.config.names[0], label


@torch.inference_mode()
def latent_means(model: MultimodalModel, test: dict[str, Tensor], points: int, batch_size: int = 500) -> Tensor:
    """Means of the model's training posterior for the first ``points`` test examples, (N, L)."""
    out = []
    for start in range(0, points, batch_size):
        batch = {k: v[start : min(points, start + batch_size)] for k, v in test.items() if k in model.config.names}
        out.append(model.posterior(batch, model.inputs).mean)
    return torch.cat(out)


def embed(means: Tensor, method: str, seed: int) -> tuple[np.ndarray, tuple[str, str]]:
    """(N, L) -> (N, 2) with scikit-learn's PCA or t-SNE, and the two axes' labels: for PCA each
    component's share of the variance of the means, for t-SNE (whose axes have no units) its name."""
    values = means.double().cpu().numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, random_state=seed, init="pca").fit_transform(values), ("t-SNE 1", "t-SNE 2")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed)
    points = pca.fit_transform(values)
    shares = np.nan_to_num(pca.explained_variance_ratio_)  # 0/0 where the means do not vary at all
    return points, tuple(f"PC {i + 1} ({100 * share:.0f}% of the variance)" for i, share in enumerate(shares))


def draw_latent(ax: Any, points2d: np.ndarray, labels: np.ndarray | None, classes: tuple[str, ...], title: str,
                axes: tuple[str, str] = ("", "")) -> None:
    """A scatter of 2-D points on ``ax``, one colour per class of ``labels`` (none: one colour)."""
    if labels is None:
        ax.scatter(points2d[:, 0], points2d[:, 1], s=3, alpha=0.6)
    else:
        cmap = matplotlib.colormaps["tab10"]
        for c in range(len(classes)):
            mask = labels == c
            ax.scatter(points2d[mask, 0], points2d[mask, 1], s=3, alpha=0.7, color=cmap(c % 10), label=classes[c])
        ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(axes[0], fontsize=8)
    ax.set_ylabel(axes[1], fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def latent_colours(data, points: int, attribute: str = "Male") -> tuple[np.ndarray | None, tuple[str, ...]]:
    """(labels for colouring the latent map, their names): the label, or one binary attribute."""
    if "label" in data.test:
        return data.test["label"][:points].cpu().numpy(), data.classes
    for name, names in data.feature_names.items():
        if attribute in names:
            on = data.test[name][:points, names.index(attribute)].cpu().numpy() > 0.5
            return on.astype(np.int64), (f"not {attribute}", attribute)
    return None, ()


def plot_latent(runs: list[tuple[MultimodalModel, str]], data, path: Path, embedding: str, points: int, seed: int) -> Path:
    """Figure 3: per (model, its run's name), a 2-D embedding of E[z | x, w] over the first ``points`` test examples."""
    points = min(points, len(next(iter(data.test.values()))))
    fig = Figure(figsize=(5 * len(runs), 5))
    axes = fig.subplots(1, len(runs), squeeze=False)
    labels, classes = latent_colours(data, points)
    name = {"pca": "PCA", "tsne": "t-SNE"}.get(embedding, embedding)
    for ax, (model, title) in zip(axes[0], runs):
        means = latent_means(model, data.test, points)
        points2d, axis_labels = embed(means, embedding, seed)
        draw_latent(ax, points2d, labels, classes, f"{title}: {name} of E[z | {', '.join(model.inputs)}]", axis_labels)
    if embedding != "tsne":
        fig.text(0.5, 0.005, "PCA of the test set's latent means; the paper's Figure 3 is a t-SNE (jmvae plot --embedding tsne)",
                 ha="center", va="bottom", fontsize=7)
    return save_figure(fig, path, rect=(0, 0.03, 1, 1))


@torch.inference_mode()
def generation_grid(model: MultimodalModel, classes: tuple[str, ...], per_class: int, seed: int) -> np.ndarray:
    """(rows = classes) x (columns = samples) grid of images generated from each label alone."""
    image, label = image_and_label(model)
    shape = model.config.modality(image).shape
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    rows = []
    for c in range(len(classes)):
        given = {label: torch.tensor([c])}
        rows.append(generate(model, given, per_class, generator)[image].mean.reshape(per_class, *shape))
    return image_grid(torch.cat(rows), columns=per_class)


def plot_generation(model: MultimodalModel, classes: tuple[str, ...], path: Path, seed: int, per_class: int = 10,
                    title: str | None = None) -> Path:
    """Appendix E: per label c, ``per_class`` means of p(x | z), z drawn from the generation latent given c."""
    grid = generation_grid(model, classes, per_class, seed)
    fig = Figure(figsize=(per_class * 0.6 + 1.2, len(classes) * 0.6 + 0.6))
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
    rows = len(classes)
    ax.set_yticks([(grid.shape[0] / rows) * (i + 0.5) for i in range(rows)], classes, fontsize=7)
    ax.set_xticks([])
    source = {"jmvae-kl": "q(z|w)", "jmvae-zero": "joint encoder, image = 0", "cmma": "p(z|w)", "cvae": "N(0, I) and w"}
    latent = source.get(model.config.kind, "q(z|w)")
    ax.set_title(f"{title or model.config.display_name}: x ~ p(x|z), z from {latent}", fontsize=8)
    return save_figure(fig, path)


def shown(images: Tensor, data, name: str = "image") -> Tensor:
    """``displayable`` images of modality ``name`` of ``data`` (its standardization undone, if any)."""
    return displayable(images, getattr(data, "standardization", {}).get(name) if data is not None else None)


@torch.inference_mode()
def plot_reconstructions(model: MultimodalModel, test: dict[str, Tensor], path: Path, n: int = 12, data=None) -> Path:
    """Appendix C: test images, then the means of p(x | z) at z = E[q(z | inputs)] and E[q(z | x)]."""
    image, label = image_and_label(model)
    shape = model.config.modality(image).shape
    n = min(n, len(test[image]))
    batch = {k: v[:n] for k, v in test.items() if k in model.config.names}
    rows, titles = [batch[image]], ["test images"]
    rows.append(model.decode(model.posterior(batch, model.inputs).mean, batch)[image].mean)
    titles.append(f"through q(z | {', '.join(model.inputs)})")
    if model.inputs != (image,):
        try:
            z = model.posterior(batch, (image,)).mean
            rows.append(model.decode(z, batch)[image].mean)
            titles.append(f"through q(z | {image})")
        except ValueError:  # the CVAE and CMMA have no image-only encoder
            pass
    fig = Figure(figsize=(n * 0.6, len(rows) * 0.9))
    axes = fig.subplots(len(rows), 1)
    for ax, row, title in zip(np.atleast_1d(axes), rows, titles):
        ax.imshow(image_grid(shown(row.reshape(n, *shape), data, image), columns=n), cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return save_figure(fig, path)


CURVE_TITLES = MappingProxyType({
    "loss": "training loss (negative bound)",
    "kl_prior": "KL(q(z|all) || p(z))",
    "recon": "E_q log p({} | z)",
    "kl": "KL(q(z|all) || q(z|{}))",
    "gan": "GAN: {}",
})


def plot_curves(history: list[dict[str, Any]], title: str, path: Path) -> Path:
    """``curves_figure`` of ``history``, written to ``path``."""
    return save_figure(curves_figure(history, title), path)


def curves_figure(history: list[dict[str, Any]], title: str) -> Figure:
    """One panel per logged loss term against the epoch (whole-number ticks), not yet laid out."""
    keys = [k for k in history[0] if k not in ("epoch", "step", "seconds", "kl_weight")]
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    fig = Figure(figsize=(3.4 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    epochs = [r["epoch"] for r in history]
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        ax.plot(epochs, [r[key] for r in history], marker="o" if len(epochs) < 10 else None, markersize=3)
        ax.set_title(CURVE_TITLES.get(key.split("/")[0], "{}").format(key.partition("/")[2] or key), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.suptitle(title, fontsize=10)
    return fig


def plot_run(
    run_dir: Path,
    out: Path,
    compare: Path | None = None,
    embedding: str = "pca",
    points: int = 2000,
    seed: int = 0,
    device: str = "cpu",
    data_dir: str | None = None,
) -> list[Path]:
    """Every figure that applies to the run in ``run_dir``, written into ``out``; returns their paths."""
    loaded = load_run(run_dir, device)
    model, run = loaded.model, loaded.config
    data = load_dataset(run.data.name, data_dir, **run.data.options).to(device)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(model, run.display_name)]
    if compare is not None:
        compared = load_run(compare, device)
        other, other_run = compared.model, compared.config
        if other_run.data != run.data:
            raise JMVAEError(f"the compared run {compare} was trained on {other_run.data.name}, {run_dir} on {run.data.name}",
                             ("compare",))
        runs.append((other, other_run.display_name))
    written = [plot_latent(runs, data, out / "latent.png", embedding, points, seed)] if enough_for_a_map(data) else []
    written += model_figures(model, run_dir, data, out, seed, latent=False, name=run.display_name)
    return written


def enough_for_a_map(data, minimum: int = 3) -> bool:
    """Whether the test split has enough points for a 2-D latent map (a warning if not)."""
    n = len(next(iter(data.test.values())))
    if n < minimum:
        logger.warning("latent.png skipped: the test split has %d point(s); a 2-D map needs %d", n, minimum)
    return n >= minimum


def model_figures(model: MultimodalModel, run_dir: Path, data, out: Path, seed: int = 0, latent: bool = True,
                  points: int = 2000, name: str | None = None) -> list[Path]:
    """The figures of one model (``jmvae reproduce`` calls this after evaluating each row), titled
    by ``name``, the run's name (default the model's; a GAN run's is its ``RunConfig.display_name``)."""
    name = name or model.config.display_name
    out.mkdir(parents=True, exist_ok=True)
    data = data.to(next(model.parameters()).device)
    written = [plot_latent([(model, name)], data, out / "latent.png", "pca", points, seed)] if latent and enough_for_a_map(data) else []
    _, label = image_and_label(model)
    if label is not None:
        written.append(plot_generation(model, data.classes, out / "generation.png", seed, title=name))
    used = set(model.generated) | set(model.conditions)  # the VAE keeps the attributes in its config but ignores them
    attributes = next(((m, names) for m, names in data.feature_names.items() if m in used and m != model.config.names[0]), None)
    if attributes is not None:
        written.append(plot_faces_per_attribute(model, data, attributes[0], attributes[1], out / "faces_per_attribute.png", seed,
                                                title=name))
        if model.config.kind in ("jmvae-zero", "jmvae-kl"):
            written.append(plot_attribute_editing(model, data, attributes[1], out / "attribute_editing.png", title=name))
    written.append(plot_reconstructions(model, data.test, out / "reconstructions.png", data=data))
    history = read_history(run_dir)
    if history:
        written.append(plot_curves(history, name, out / "curves.png"))
    return written


EDITED_ATTRIBUTES = ("Smiling", "Male", "Eyeglasses", "Blond_Hair", "Young", "Mustache")


@torch.inference_mode()
def plot_faces_per_attribute(model: MultimodalModel, data, name: str, names: tuple[str, ...], path: Path, seed: int,
                             per_row: int = 7, title: str | None = None) -> Path:
    """Figure 4(a): per attribute, the average face and ``per_row`` random faces (module docstring)."""
    from jmvae.data.celeba import attribute_vector

    image = model.config.names[0]
    shape = model.config.modality(image).shape
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = []
    for attribute in names:
        given = {name: attribute_vector(names, [attribute], model.config.modality(name)).to(device)}
        latent = model.generation_latent(given, (name,))
        average = model.decode(latent.mean.reshape(1, -1), given)[image].mean
        rows += [average.reshape(1, *shape), generate(model, given, per_row, generator)[image].mean.reshape(per_row, *shape)]
    grid = image_grid(shown(torch.cat(rows), data, image), columns=per_row + 1)
    fig = Figure(figsize=((per_row + 1) * 0.9 + 1.6, len(names) * 0.9 + 0.6))
    ax = fig.subplots()
    ax.imshow(grid)
    ax.set_yticks([(grid.shape[0] / len(names)) * (i + 0.5) for i in range(len(names))], names, fontsize=7)
    ax.set_xticks([grid.shape[1] / (per_row + 1) * 0.5], ["average"], fontsize=7)
    ax.set_title(f"{title or model.config.display_name}: faces from one attribute (the others off); first column: the mean of z",
                 fontsize=8)
    return save_figure(fig, path, dpi=100)


@torch.inference_mode()
def plot_attribute_editing(model: MultimodalModel, data, names: tuple[str, ...], path: Path, n: int = 6,
                           attributes: tuple[str, ...] = EDITED_ATTRIBUTES, title: str | None = None) -> Path:
    """Figure 6: test faces, reconstructions, and one attribute flipped per column (shift edits)."""
    from jmvae.editing import Prediction, apply_changes, definite, edit_batch, predict_w_from_image

    image = model.config.names[0]
    shape = model.config.modality(image).shape
    attributes = tuple(a for a in attributes if a in names)
    device = next(model.parameters()).device
    faces = data.test[image][: min(n, len(data.test[image]))].to(device)
    columns: list[list[Tensor]] = [[], []] + [[] for _ in attributes]
    for face in faces:
        face = face.unsqueeze(0)
        prediction: Prediction = predict_w_from_image(model, face, names)
        w = definite(model, prediction)
        flipped = [apply_changes(model, w, {a: float(w[0, names.index(a)] <= 0.5)}, names) for a in attributes]
        reconstruction = edit_batch(model, face, w, w)[0]
        columns[0].append(face)
        columns[1].append(reconstruction)
        for column, w_new in zip(columns[2:], flipped):
            column.append(edit_batch(model, face, w, w_new)[1])
    images = torch.stack([torch.cat(c).reshape(-1, *shape) for c in columns], dim=1).reshape(-1, *shape)
    grid = image_grid(shown(images, data, image), columns=len(columns))
    titles = ["face", "reconstruction"] + [f"flip {a}" for a in attributes]
    fig = Figure(figsize=(len(columns) * 1.1 + 0.4, len(faces) * 1.1 + 0.6))
    ax = fig.subplots()
    ax.imshow(grid)
    ax.set_xticks([(grid.shape[1] / len(columns)) * (i + 0.5) for i in range(len(columns))], titles, fontsize=7, rotation=30)
    ax.set_yticks([])
    ax.set_title(f"{title or model.config.display_name}: attribute editing (z + q(z|w') - q(z|w))", fontsize=8)
    return save_figure(fig, path, dpi=100)
