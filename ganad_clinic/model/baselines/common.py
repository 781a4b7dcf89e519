"""What the GAN baselines share: the interface the trainer, the scorer and the bundle rely on, and
the critics that look at pairs (x, z), (x, x') and (z, z').

Every baseline reports the same three terms as the paper's model, so that scores, the database and
reports need no special case: l_d is the method's feature (critic) residual, l_r the pixel residual
|x - x̂| and l_l the latent residual, zero for methods that have none.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganad_clinic.model.networks import ArchSpec, _conv_trunk

if TYPE_CHECKING:
    from ganad_clinic.model.methods import StepInputs
    from ganad_clinic.model.trainer import TrainConfig


class BaselineModel(nn.Module, ABC):
    """A comparison method: its networks, its training step and its anomaly terms."""

    method: ClassVar[str]
    ema_parts: ClassVar[tuple[str, ...]] = ()  # modules averaged for scoring when the run uses EMA

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {channels}")
        self.spec, self.image_size, self.channels, self.latent = spec, image_size, channels, latent

    def options(self) -> dict[str, Any]:
        """Constructor settings beyond the architecture, stored in the bundle."""
        return {}

    @abstractmethod
    def configure_optimizers(self, config: TrainConfig) -> list[torch.optim.Optimizer]:
        """The optimisers, in the order `training_step` receives them."""

    @abstractmethod
    def training_step(self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        """One update of every network on batch x; returns the losses (keys d, g, and ae if any)."""

    @abstractmethod
    def anomaly_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The terms l_d, l_r, l_l per sample (sums, like the paper's raw terms) and x̂."""


def adamw(parameters, lr: float, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameters, lr=lr, betas=config.betas, weight_decay=config.weight_decay)


def l1_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).sum(1)


def _linear(n_in: int, n_out: int, sn: bool) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    return spectral_norm(layer) if sn else layer


def _hidden(n_in: int, n_out: int, sn: bool) -> nn.Sequential:
    return nn.Sequential(_linear(n_in, n_out, sn), nn.LeakyReLU(0.2), nn.Dropout(0.2))


class JointCritic(nn.Module):
    """D(x, z) of a BiGAN: a conv trunk on x and a linear branch on z, joined by a hidden layer
    whose output is the feature layer the baselines' scores compare."""

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int, sn: bool,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.trunk, size = _conv_trunk(spec.critic_widths, channels, image_size, norm=batch_norm, sn=sn)
        hidden = spec.hidden_linear
        self.z_branch = _hidden(latent, hidden, sn)
        self.joint = _hidden(spec.critic_widths[-1] * size * size + hidden, hidden, sn)
        self.logit = _linear(hidden, 1, sn)

    def features(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.cat([self.trunk(x).flatten(1), self.z_branch(z.flatten(1))], 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x, z)).squeeze(1)


class ImagePairCritic(nn.Module):
    """ALAD's D_xx(x, x'): both images stacked as channels; its hidden layer is the score's feature."""

    def __init__(self, spec: ArchSpec, image_size: int, channels: int) -> None:
        super().__init__()
        self.trunk, size = _conv_trunk(spec.critic_widths, 2 * channels, image_size, norm=False, sn=True)
        self.hidden = _hidden(spec.critic_widths[-1] * size * size, spec.hidden_linear, sn=True)
        self.logit = _linear(spec.hidden_linear, 1, sn=True)

    def features(self, x: torch.Tensor, x_other: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.trunk(torch.cat([x, x_other], 1)).flatten(1))

    def forward(self, x: torch.Tensor, x_other: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x, x_other)).squeeze(1)


class LatentPairCritic(nn.Module):
    """ALAD's D_zz(z, z'): two hidden layers on the stacked codes."""

    def __init__(self, latent: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_hidden(2 * latent, hidden, sn=True), _hidden(hidden, hidden, sn=True),
                                  _linear(hidden, 1, sn=True))

    def forward(self, z: torch.Tensor, z_other: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, z_other], 1)).squeeze(1)
