"""What the GAN baselines share: their references' settings, the common part of their training
glue, and the critics that look at pairs (x, z), (x, x') and (z, z').

Every baseline reports the same three terms as the paper's model (`protocol.DetectionNetworks`):
l_d is the method's feature (critic) residual, l_r the pixel residual |x - x̂| and l_l the latent
residual, zero for methods that have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganad_clinic.model.config import ScoreConfig, TrainConfig
from ganad_clinic.model.networks import ArchSpec, Dropout, _conv_trunk
from ganad_clinic.model.protocol import DetectionNetworks

# What every GAN baseline's reference does where the paper's model differs: standard GAN loss, raw
# score sums with the paper's Table 2 weights (λ on the feature term), no latent term, no
# augmentation. EMA is 0.99 rather than the references' 0.999, which would still hold half the
# untrained weights after a budget of 800 steps.
REFERENCE_DEFAULTS: dict[str, Any] = dict(gan="sgan", beta=0.0, score_mode="raw", feature_layers="last",
                                          diff_augment=(), critic_sees_reconstructions=False,
                                          choose_weights=False)  # each keeps its reference's score weights


class GanBaselineMethod:
    """What the baselines' training glue shares: networks built from `networks` with their
    options, nothing to fit besides the term statistics."""

    networks: ClassVar[type[DetectionNetworks]]

    def build(self, spec: ArchSpec, image_size: int, channels: int, latent: int,
              options: Mapping[str, Any]) -> DetectionNetworks:
        return self.networks(spec, image_size, channels, latent, **options)

    def options(self, config: TrainConfig) -> dict[str, Any]:
        return {}

    def fit_terms(self, model: DetectionNetworks, x_train: torch.Tensor, x_val: torch.Tensor, labels: np.ndarray,
                  score_config: ScoreConfig) -> None:
        return None


def l1_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).sum(1)


def _linear(n_in: int, n_out: int, sn: bool) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    return cast(nn.Linear, spectral_norm(layer)) if sn else layer  # spectral_norm returns the module it was given


def _hidden(n_in: int, n_out: int, sn: bool) -> nn.Sequential:
    return nn.Sequential(_linear(n_in, n_out, sn), nn.LeakyReLU(0.2), Dropout(0.2))


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
