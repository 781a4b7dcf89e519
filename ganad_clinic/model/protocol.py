"""The one interface of a detection method (the paper's model, AnoGAN, Efficient-GAN, ALAD).

A method has two halves, kept apart as anomalib keeps `torch_model.py` and `lightning_model.py`:

- its networks, `DetectionNetworks`: a plain `nn.Module` holding the weights a bundle stores, its
  constructor options and its score terms (`anomaly_terms`, the same three terms for every method,
  so that scores, the database and reports need no special case: l_d the feature (critic)
  residual, l_r the pixel residual |x - x̂|, l_l the latent residual, zero where a method has none);
- its training glue, `DetectionMethod`: how to build the networks, its optimisers, one training
  step, what calibration fits besides the term statistics, its recommended settings.

The trainer, the scorer and the bundle see only these two; `methods.METHODS` names them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from ganad_clinic.model.config import ScoreConfig, StepInputs, TrainConfig
from ganad_clinic.model.networks import ArchSpec

Terms = dict[str, torch.Tensor]


class DetectionNetworks(nn.Module):
    """The networks of one method: its architecture sizes, its options and its score terms."""

    method: ClassVar[str]  # the registry name, stored in the bundle

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {channels}")
        self.spec, self.image_size, self.channels, self.latent = spec, image_size, channels, latent

    def options(self) -> dict[str, Any]:
        """Constructor settings beyond the architecture, stored in the bundle."""
        return {}

    def anomaly_terms(self, x: torch.Tensor, feature_layers: str = "last") -> tuple[Terms, torch.Tensor]:
        """The terms l_d, l_r, l_l per sample and the reconstruction x̂ (eval mode)."""
        raise NotImplementedError


Networks = TypeVar("Networks", bound=DetectionNetworks)


class DetectionMethod(Protocol[Networks]):
    """How one method is built and trained; one instance per method in `methods.METHODS`, over
    its own networks' type."""

    name: str  # the registry name, equal to the networks' `method`
    description: str  # the bundle's description of the score
    ema_parts: tuple[str, ...]  # modules averaged for scoring when the run uses EMA
    train_defaults: Mapping[str, Any]  # TrainConfig values `recommended_config` gives this method

    def build(self, spec: ArchSpec, image_size: int, channels: int, latent: int,
              options: Mapping[str, Any]) -> Networks:
        """The untrained networks; `options` as `DetectionNetworks.options` returns them."""

    def options(self, config: TrainConfig) -> dict[str, Any]:
        """The constructor options a training run gives the networks."""

    def configure_optimizers(self, model: Networks, config: TrainConfig) -> list[torch.optim.Optimizer]:
        """The optimisers, in the order `training_step` receives them."""

    def training_step(self, model: Networks, x: torch.Tensor, optimizers: Sequence[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        """One update of every network on batch x; returns the losses (keys d, g, and ae if any)."""

    def fit_terms(self, model: Networks, x_train: torch.Tensor, x_val: torch.Tensor,
                  labels: np.ndarray, score_config: ScoreConfig) -> None:
        """Fit, in place, what the networks' terms need beyond the weights (eval mode)."""
