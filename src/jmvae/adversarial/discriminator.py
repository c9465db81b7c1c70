"""The discriminator D(x) -> P(x is real) of the GAN variants."""

from __future__ import annotations

from torch import Tensor, nn

from jmvae.config import Modality
from jmvae.networks import CONV_CHANNELS

LEAK = 0.2


class Discriminator(nn.Module):
    """D(x): image -> one logit (log D / (1 - D)).

    Convolutional images: 4x4 stride-2 convolutions 64, 128, 256, 256 with leaky ReLU, flatten,
    a dense layer of ``hidden_dim`` (1024 in the paper) with leaky ReLU, one output. Flat data
    (MNIST's 784 pixels): D -> hidden -> hidden (leaky ReLU) -> 1.
    """

    def __init__(self, modality: Modality, hidden_dim: int = 1024) -> None:
        super().__init__()
        self.shape = modality.shape
        if modality.network == "conv":
            layers: list[nn.Module] = []
            previous = modality.shape[0]
            for out in CONV_CHANNELS:
                layers += [nn.Conv2d(previous, out, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(LEAK)]
                previous = out
            scale = 2 ** len(CONV_CHANNELS)
            flat = previous * (modality.shape[1] // scale) * (modality.shape[2] // scale)
            self.features: nn.Module = nn.Sequential(*layers, nn.Flatten())
        else:
            flat = modality.features
            self.features = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden_dim), nn.LeakyReLU(LEAK))
            flat = hidden_dim
        self.head = nn.Sequential(nn.Linear(flat, hidden_dim), nn.LeakyReLU(LEAK), nn.Linear(hidden_dim, 1))
        self.conv = modality.network == "conv"

    def forward(self, x: Tensor) -> Tensor:
        """(B, *shape) or flat (B, D) images -> (B,) logits."""
        x = x.reshape(len(x), *self.shape) if self.conv else x.reshape(len(x), -1)
        return self.head(self.features(x.to(self.head[0].weight.dtype))).squeeze(-1)
