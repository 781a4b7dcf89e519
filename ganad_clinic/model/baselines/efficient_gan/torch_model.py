"""Efficient-GAN / EGBAD (Zenati et al. 2018): a BiGAN, whose encoder E learns to invert G because
the critic D(x, z) judges image-code pairs. Score: (1-w)·|x - G(E(x))| + w·|f_D(x, E(x)) -
f_D(G(E(x)), E(x))| (the feature-matching form, `--m fm`), w = the score's λ: 0.9 as in the paper's
Table 2 (the reference code's default is 0.1).

As in the reference: no spectral normalisation, dropout in D, scoring with an EMA of E and G (the
reference averages D too).
"""

from __future__ import annotations

import torch

from ganad_clinic.model.baselines.common import JointCritic, l1_per_sample
from ganad_clinic.model.networks import ArchSpec, Encoder, Generator
from ganad_clinic.model.protocol import DetectionNetworks


class EfficientGAN(DetectionNetworks):
    method = "efficient-gan"

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__(spec, image_size, channels, latent)
        self.encoder = Encoder(spec, image_size, channels, latent)
        self.generator = Generator(spec, image_size, channels, latent)
        self.critic = JointCritic(spec, image_size, channels, latent, sn=False, batch_norm=True)

    def anomaly_terms(
        self, x: torch.Tensor, feature_layers: str = "last"
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        code = self.encoder(x)
        reconstruction = self.generator(code)
        features = self.critic.features(torch.cat([x, reconstruction]), torch.cat([code, code])).chunk(2)
        residual = l1_per_sample(x, reconstruction)
        terms = {"l_d": l1_per_sample(*features), "l_r": residual, "l_l": torch.zeros_like(residual)}
        return terms, reconstruction
