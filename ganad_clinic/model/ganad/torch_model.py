"""The paper's networks (Table 1): encoder E, generator G (= the autoencoder's decoder) and critic
D, with the units of its all-layer score terms; a plain `nn.Module`, whose state dict a bundle stores."""

from __future__ import annotations

import torch

from ganad_clinic.model.ganad.terms import raw_terms
from ganad_clinic.model.networks import (
    ArchSpec,
    Critic,
    Encoder,
    FeatureScales,
    Generator,
)
from ganad_clinic.model.protocol import DetectionNetworks


class GanAutoencoder(DetectionNetworks):
    """The three networks of the paper; `decoder` is `generator` (one module, shared weights).

    `residual_units` holds the units of the all-layer score terms, one layer list for all three:
    the pixels (L_R), D's hidden layers (L_D), then E's hidden layers and E(x) (L_L);
    `term_layers` says which of those layers belong to which term.
    """

    method = "ganad"

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__(spec, image_size, channels, latent)
        self.encoder = Encoder(spec, image_size, channels, latent)
        self.generator = Generator(spec, image_size, channels, latent)
        self.critic = Critic(spec, image_size, channels)
        groups: dict[str, list[tuple[int, ...]]] = {"l_r": [(channels, image_size, image_size)],
                                                    "l_d": self.critic.feature_shapes,
                                                    "l_l": self.encoder.feature_shapes}
        self.term_layers: dict[str, slice] = {}
        start = 0
        for name, shapes in groups.items():
            self.term_layers[name] = slice(start, start + len(shapes))
            start += len(shapes)
        self.residual_units = FeatureScales([shape for shapes in groups.values() for shape in shapes])

    @property
    def decoder(self) -> Generator:
        return self.generator

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder(x))

    def anomaly_terms(
        self, x: torch.Tensor, feature_layers: str = "last"
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return raw_terms(self, x, feature_layers)
