"""Coherence of generation from a label, judged by a classifier that knows nothing of the model.

Appendix E of the paper shows, by pictures, that images generated from a label alone are
recognisable digits with JMVAE-kl and collapse with JMVAE-zero. This module turns the pictures
into a number: draw n images per class c from the model (z from its generation latent given
w = c), let an independent *judge* classify them, and report

    coherence = (1 / C) * sum_c  #{generated from c and judged c} / n,

the class-balanced accuracy of the judge on generated images (chance: 1 / C). The judge is a
one-hidden-layer MLP fitted on the real training images and labels with a fixed seed; its
accuracy on the real test images is reported beside the coherence so a reader knows how much to
trust it, and it is measured on the kind of input it judges (``JUDGED_ON``): for a Bernoulli
image modality (binarised MNIST) every image the judge sees is binary: the training images
re-binarised at each epoch, the test set binarised once, and generated images drawn as binary
samples x ~ p(x | z) (not the decoder's means, which are grey levels no real binarised image
has). Other image modalities are judged on the means of p(x | z), fitted and tested on the data
as they are.

``cross_coherence`` is the coherence of generation between modalities of a data set whose every
modality shows the datum's class (``mnist-fashion``: a digit, its label, a garment of the same
class): from a subset S, one z ~ q(z | x_S) per test datum and one x_m ~ p(x_m | z) per target m,
scored by the share of data whose x_m is of the datum's class (a label: the drawn class; an
image: its judge's verdict, one judge per image modality). Not class-balanced: the share over
the test data as they come.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import Tensor, nn

from jmvae.distributions import draw
from jmvae.generation import generate
from jmvae.models import MultimodalModel


JUDGED_ON = MappingProxyType({True: "binary samples of p(x|z); judge fitted and tested on binarised images",
                              False: "means of p(x|z); judge fitted and tested on the data as given"})


@dataclass
class Judge:
    """A classifier of flat images and its accuracy on real held-out images; ``binary``: it is
    fitted, tested and applied on binary images (see the module docstring)."""

    network: nn.Module
    test_accuracy: float
    binary: bool = False

    @property
    def judged_on(self) -> str:
        return JUDGED_ON[self.binary]

    @torch.inference_mode()
    def classify(self, images: Tensor, batch_size: int = 2000) -> Tensor:
        """(N, ...) images -> (N,) predicted classes."""
        flat = images.reshape(len(images), -1).float()
        device = next(self.network.parameters()).device
        return torch.cat([self.network(flat[i : i + batch_size].to(device)).argmax(-1).cpu()
                          for i in range(0, len(flat), batch_size)])


def fit_judge(train_images: Tensor, train_labels: Tensor, test_images: Tensor, test_labels: Tensor,
              epochs: int = 5, hidden: int = 512, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
              binary: bool = False) -> Judge:
    """Fit the judge (flat pixels -> ``hidden`` ReLU -> classes, cross-entropy, Adam) on real data.

    Images have any shape after the batch dimension; labels int64. ``binary``: the training
    images are intensities in [0, 1] re-binarised (pixel ~ Bernoulli(intensity), seeded) at every
    epoch, and the test images are already binary, as the model's own training and test sets."""
    n_classes = int(train_labels.max()) + 1
    x = train_images.reshape(len(train_images), -1).float()
    y = train_labels.long()
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    for _ in range(epochs):
        seen = torch.bernoulli(x, generator=generator) if binary else x
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(network(seen[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    network.eval()
    judge = Judge(network, 0.0, binary)
    judge.test_accuracy = float((judge.classify(test_images) == test_labels.cpu()).float().mean())
    return judge


def coherence(judge: Judge, images_by_class: list[Tensor]) -> float:
    """Class-balanced accuracy of the judge on ``images_by_class[c]`` (images meant to show class c)."""
    return sum(float((judge.classify(images) == c).float().mean()) for c, images in enumerate(images_by_class)) / len(images_by_class)


@torch.inference_mode()
def images_from_labels(model: MultimodalModel, image: str, label: str, n_classes: int, per_class: int,
                       seed: int = 0, binary: bool = False) -> list[Tensor]:
    """``per_class`` images generated from each class of ``label`` alone: the means of p(x | z),
    or with ``binary`` one binary draw x ~ p(x | z) per z (Bernoulli images), both seeded."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    out = []
    for c in range(n_classes):
        means = generate(model, {label: torch.tensor([c])}, per_class, generator)[image].mean
        out.append((torch.bernoulli(means, generator=generator) if binary else means).cpu())
    return out


def label_coherence(model: MultimodalModel, judge: Judge, image: str, label: str, n_classes: int,
                    per_class: int = 100, seed: int = 0) -> float:
    """Coherence (see the module docstring) of ``per_class`` images generated from each label,
    of the kind the judge was fitted on (binary draws for a binary judge, else means)."""
    return coherence(judge, images_from_labels(model, image, label, n_classes, per_class, seed, judge.binary))


@torch.inference_mode()
def cross_coherence(model: MultimodalModel, test: dict[str, Tensor], classes: Tensor, given: tuple[str, ...],
                    targets: tuple[str, ...], judges: dict[str, Judge], batch_size: int = 500,
                    seed: int = 0) -> dict[str, float]:
    """Coherence of generation from the modalities in ``given``: for every datum one z ~ q(z | x_given)
    (``distributions.draw``, seeded), and for every m in ``targets`` one x_m ~ p(x_m | z); the share
    of data whose generated x_m shows the datum's class ``classes`` (a categorical target: the
    drawn class itself; an image: ``judges[m]``'s class of a binary draw for a binary judge, else
    of the mean). Returns {target: fraction} over the data of ``test``."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    right = {m: 0 for m in targets}
    n = len(classes)
    for start in range(0, n, batch_size):
        batch = {k: v[start : start + batch_size].to(device) for k, v in test.items() if k in given}
        z = draw(model.posterior(batch, given), (), generator)
        decoded = model.decode(z, batch)
        truth = classes[start : start + batch_size].cpu()
        for m in targets:
            if model.config.modality(m).likelihood == "categorical":
                predicted = torch.multinomial(decoded[m].probs, 1, generator=generator).squeeze(-1).cpu()
            else:
                judge = judges[m]
                mean = decoded[m].mean
                predicted = judge.classify(torch.bernoulli(mean, generator=generator) if judge.binary else mean)
            right[m] += int((predicted == truth).sum())
    return {m: right[m] / n for m in targets}
