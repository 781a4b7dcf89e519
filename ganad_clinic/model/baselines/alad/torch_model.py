"""ALAD (Zenati et al. 2018): a BiGAN with three critics, D_xz(x, z), D_xx(x, x') and D_zz(z, z'),
the last two enforcing cycle consistency (x ≈ G(E(x)), z ≈ E(G(z))). Spectral normalisation in
the critics and the encoder; scoring with an EMA of E and G. Score: |f_xx(x, x) - f_xx(x,
G(E(x)))|, D_xx's hidden layer (the reference's `fm` score), which is l_d here; λ = 1 uses it alone.
"""

from __future__ import annotations

import torch

from ganad_clinic.model.baselines.common import (
    ImagePairCritic,
    JointCritic,
    LatentPairCritic,
    l1_per_sample,
)
from ganad_clinic.model.networks import ArchSpec, Encoder, Generator
from ganad_clinic.model.protocol import DetectionNetworks

LogitPair = tuple[torch.Tensor, torch.Tensor]


class ALAD(DetectionNetworks):
    method = "alad"

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__(spec, image_size, channels, latent)
        self.encoder = Encoder(spec, image_size, channels, latent, spectral=True)
        self.generator = Generator(spec, image_size, channels, latent)
        self.critic_xz = JointCritic(spec, image_size, channels, latent, sn=True)
        self.critic_xx = ImagePairCritic(spec, image_size, channels)
        self.critic_zz = LatentPairCritic(latent, spec.hidden_linear)

    def critic_pairs(self, x: torch.Tensor, z: torch.Tensor, code: torch.Tensor, fake: torch.Tensor,
                     reconstruction: torch.Tensor, code_again: torch.Tensor) -> tuple[LogitPair, LogitPair, LogitPair]:
        """Each critic's (real, other) logits: (x, E(x)) / (G(z), z), (x, x) / (x, G(E(x))), (z, z) / (z, E(G(z)))."""
        return ((self.critic_xz(x, code), self.critic_xz(fake, z)),
                (self.critic_xx(x, x), self.critic_xx(x, reconstruction)),
                (self.critic_zz(z, z), self.critic_zz(z, code_again)))

    def anomaly_terms(
        self, x: torch.Tensor, feature_layers: str = "last"
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        reconstruction = self.generator(self.encoder(x))
        features = self.critic_xx.features(torch.cat([x, x]), torch.cat([x, reconstruction])).chunk(2)
        residual = l1_per_sample(x, reconstruction)
        terms = {"l_d": l1_per_sample(*features), "l_r": residual, "l_l": torch.zeros_like(residual)}
        return terms, reconstruction
