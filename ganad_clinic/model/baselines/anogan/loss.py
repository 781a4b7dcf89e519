"""AnoGAN's objectives: a DCGAN's critic and generator losses, and the code search's loss."""

from __future__ import annotations

import torch

from ganad_clinic.model import losses


def critic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan: str) -> torch.Tensor:
    return losses.critic_loss(real_logits, fake_logits, gan)


def generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan: str) -> torch.Tensor:
    return losses.generator_loss(real_logits, fake_logits, gan)


def search_loss(residual: torch.Tensor, disc: torch.Tensor, lam: float) -> torch.Tensor:
    """(1-λ)·|x - G(z)| + λ·|f_D(x) - f_D(G(z))|, summed over the batch (each image's z is its own)."""
    return ((1 - lam) * residual + lam * disc).sum()
