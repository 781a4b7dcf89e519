"""Efficient-GAN's objectives: the critic tells (x, E(x)) from (G(z), z); E and G, updated
together, try to make it see them the other way round."""

from __future__ import annotations

import torch

from ganad_clinic.model import losses


def critic_loss(real_pair_logits: torch.Tensor, fake_pair_logits: torch.Tensor, gan: str) -> torch.Tensor:
    """D's loss: (x, E(x)) real, (G(z), z) fake."""
    return losses.critic_loss(real_pair_logits, fake_pair_logits, gan)


def encoder_generator_loss(fake_pair_logits: torch.Tensor, real_pair_logits: torch.Tensor, gan: str) -> torch.Tensor:
    """E's and G's loss: the critic's with the labels swapped."""
    return losses.critic_loss(fake_pair_logits, real_pair_logits, gan)
