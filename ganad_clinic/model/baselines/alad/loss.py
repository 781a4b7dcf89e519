"""ALAD's objectives: the three critics' losses, and those of E and G, which swap the labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch
import torch.nn.functional as F

from ganad_clinic.model import losses


def critics_loss(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], gan: str) -> torch.Tensor:
    """The sum of the critics' losses, each on its (real, other) logits."""
    return cast(torch.Tensor, sum(losses.critic_loss(real, other, gan) for real, other in pairs))


def encoder_generator_loss(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], gan: str) -> torch.Tensor:
    """E's and G's loss: every critic's with the labels swapped (they try to fool all three)."""
    return cast(torch.Tensor, sum(losses.critic_loss(other, real, gan) for real, other in pairs))


def reconstruction_error(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """MSE of G(E(x)), reported (not trained on)."""
    return F.mse_loss(reconstruction, x)
