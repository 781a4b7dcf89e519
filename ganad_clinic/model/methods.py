"""The detection methods behind one train / score / bundle interface: the paper's model ("ganad")
and the GAN baselines it is compared with. A bundle names its method; `build_model` makes the
empty networks that its weights are loaded into.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ganad_clinic.model.baselines.alad import ALAD
from ganad_clinic.model.baselines.anogan import AnoGAN
from ganad_clinic.model.baselines.common import BaselineModel
from ganad_clinic.model.baselines.efficient_gan import EfficientGAN
from ganad_clinic.model.networks import ArchSpec, GanAutoencoder

if TYPE_CHECKING:
    from ganad_clinic.model.trainer import TrainConfig

METHODS = ("ganad", "anogan", "efficient-gan", "alad")
DESCRIPTIONS = {
    "ganad": "GAN + autoencoder anomaly detector (Rafiee Sevyeri & Fevens): A(x) = λ·L_D + (1-λ)·L_R + β·L_L; "
             "higher is more anomalous.",
    "anogan": "AnoGAN baseline (Schlegl et al.): a search for G's closest image; A(x) = λ·L_D + (1-λ)·L_R at the "
              "searched code; higher is more anomalous.",
    "efficient-gan": "Efficient-GAN baseline (Zenati et al., BiGAN): A(x) = λ·L_D + (1-λ)·L_R with D(x, z)'s "
                     "features; higher is more anomalous.",
    "alad": "ALAD baseline (Zenati et al.): A(x) = L_D, the residual of D_xx's features between (x, x) and "
            "(x, G(E(x))); higher is more anomalous.",
}
_BASELINES: dict[str, type[BaselineModel]] = {"anogan": AnoGAN, "efficient-gan": EfficientGAN, "alad": ALAD}


@dataclass(frozen=True)
class StepInputs:
    """What a training step needs besides the batch: the run's settings and its random streams."""

    config: TrainConfig
    augment: Callable[[torch.Tensor], torch.Tensor]  # DiffAugment before a critic (identity when off)
    latent_rng: torch.Generator
    use_amp: bool


def build_model(method: str, spec: ArchSpec, image_size: int, channels: int, latent: int,
                options: dict[str, Any] | None = None) -> nn.Module:
    """The untrained networks of `method`; `options` are the method's own settings (see `method_options`)."""
    if method == "ganad":
        if options:
            raise ValueError(f"the ganad method takes no options, got {sorted(options)}")
        return GanAutoencoder(spec, image_size, channels, latent)
    if method not in _BASELINES:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return _BASELINES[method](spec, image_size, channels, latent, **(options or {}))


def method_of(model: nn.Module) -> str:
    return model.method if isinstance(model, BaselineModel) else "ganad"


def method_options(config: TrainConfig) -> dict[str, Any]:
    """The constructor options a training run gives its method: AnoGAN searches with the score's λ."""
    if config.method == "anogan":
        return {"search_steps": config.search_steps, "search_lambda": config.lam}
    return {}
