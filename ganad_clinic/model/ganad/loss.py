"""The paper's three objectives (section 3.2): the autoencoder's MSE, and the critic's and the
generator's GAN losses (RSGAN of Eq. 2 by default), the critic's over every kind of fake it sees."""

from __future__ import annotations

import torch

from ganad_clinic.model import losses


def autoencoder_loss(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """L_AE = ||x - G(E(x))||^2 (updates E and G)."""
    return losses.autoencoder_loss(x, reconstruction)


def critic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan: str) -> torch.Tensor:
    """D's loss; `fake_logits` may hold several kinds of fake (G(z), then G(E(x))) one after the
    other, each paired with the real images' logits."""
    return losses.critic_loss(real_logits.repeat(len(fake_logits) // len(real_logits)), fake_logits, gan)


def generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan: str) -> torch.Tensor:
    """G's loss on G(z) (updates G)."""
    return losses.generator_loss(real_logits, fake_logits, gan)
