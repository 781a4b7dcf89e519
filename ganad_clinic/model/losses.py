"""GAN objectives (RSGAN of Eq. 2, standard GAN as an option) and the autoencoder's MSE loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_LOSSES = ("rsgan", "sgan")


def critic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "rsgan") -> torch.Tensor:
    """The critic's loss: RSGAN -log sigmoid(C(x_r) - C(x_f)), or SGAN's two cross-entropies."""
    if kind == "rsgan":
        return F.binary_cross_entropy_with_logits(real_logits - fake_logits, torch.ones_like(real_logits))
    if kind == "sgan":
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    raise ValueError(f"unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}")


def generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "rsgan") -> torch.Tensor:
    """The generator's loss: RSGAN -log sigmoid(C(x_f) - C(x_r)), or SGAN's non-saturating one."""
    if kind == "rsgan":
        return F.binary_cross_entropy_with_logits(fake_logits - real_logits, torch.ones_like(fake_logits))
    if kind == "sgan":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    raise ValueError(f"unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}")


def autoencoder_loss(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """L_AE = ||x - G(E(x))||^2, averaged over pixels and the batch."""
    return F.mse_loss(reconstruction, x)
