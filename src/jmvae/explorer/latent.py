"""The explorer's latent map: the means mu_i = E[z | inputs_i] of the training posterior (q(z | x, w);
the VAE's q(z | x)) for a seeded random subset of the test set, projected on their first two
principal components. PCA, not t-SNE, because it is linear: a map position can be decoded back
through its inverse (the mean along the other directions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmvae.models import MultimodalModel


@torch.inference_mode()
def latent_map(model: MultimodalModel, test: dict[str, Tensor], image: str, limit: int, batch_size: int = 500) -> dict[str, Any]:
    """Up to ``limit`` test points: their ``indices`` (sorted), latent means ``z`` (N, L), 2-D
    positions ``xy``, the fitted ``pca`` and each component's share of the variance (``explained``)."""
    from sklearn.decomposition import PCA

    device = next(model.parameters()).device
    n_test = len(test[image])
    n = min(limit, n_test)
    generator = torch.Generator().manual_seed(0)
    indices = torch.randperm(n_test, generator=generator)[:n].sort().values
    names = tuple(model.inputs)
    means = []
    for start in range(0, n, batch_size):
        chunk = indices[start : start + batch_size]
        batch = {k: test[k][chunk].to(device) for k in names}
        means.append(model.posterior(batch, names).mean.float().cpu())
    z = torch.cat(means)
    components = min(2, z.shape[1], n)
    pca = PCA(n_components=components).fit(z.numpy())
    xy = pca.transform(z.numpy())
    if components < 2:
        xy = np.concatenate([xy, np.zeros((n, 2 - components))], axis=1)
    explained = list(pca.explained_variance_ratio_) + [0.0] * (2 - components)
    return {"indices": indices, "z": z, "xy": xy, "pca": pca, "explained": explained}
