r"""The GAN variants (VAE-GAN, CVAE-GAN, CMMA-GAN, JMVAE-GAN): a discriminator on the image.

As in the authors' code (Tars' VAE-GAN and multimodal VAE-GAN, after Larsen et al. 2016), a
discriminator D(x) -> P(x is real) is trained against the decoder of the model's first modality
(the image). With x the data, x_rec the decoder's mean at z ~ q(z | inputs) (the training
posterior sample of the bound) and x_prior its mean at z ~ p(z) (p(z | w) for the CMMA):

    discriminator:  L_D = -log D(x) - log(1 - D(x_rec)) - log(1 - D(x_prior))
    generator:      L_G = -log D(x_rec) - log D(x_prior)          (non-saturating)

and the model minimises  -bound + gan_weight * L_G , where the generator term reaches only the
image decoder: x_rec is decoded from a detached z, so the encoders are trained by the bound
alone (Tars: the encoder's update has no GAN term; the image decoder's loss is
-log p(x | z) + L_G with GAN weight 1).

Stabilising choices (standard, and each one a flag or a documented default): the
non-saturating generator loss; leaky-ReLU discriminator without batch norm; Adam with
beta1 = 0.5 (the paper's CelebA setting); the reconstruction likelihood kept in the decoder's
loss, which anchors it; optional one-sided label smoothing (``TrainConfig.gan_real_label``).
Both players take one Adam step per batch from the same forward pass (simultaneous updates;
Tars updates them one after the other, recomputing in between).

Differences from Tars, stated: prior draws come from the model's prior N(0, I) (Tars fed
uniform(-1, 1) noise to the decoder); one optimizer with two parameter groups (Tars: three
optimizers with equal settings; Adam is per parameter, so the update rule is the same).

The pieces: ``Discriminator`` (discriminator.py), the two players' losses (losses.py) and
``AdversarialStep`` (step.py), the training step that owns the discriminator, its optimizer
group and its metrics; the generic training loop knows nothing of it.
"""

from __future__ import annotations

from jmvae.adversarial.discriminator import Discriminator
from jmvae.adversarial.losses import gan_losses
from jmvae.adversarial.step import AdversarialStep

__all__ = ["AdversarialStep", "Discriminator", "gan_losses"]
