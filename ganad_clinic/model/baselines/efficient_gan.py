"""Efficient-GAN / EGBAD (Zenati et al. 2018): a BiGAN, whose encoder E learns to invert G because
the critic D(x, z) judges image-code pairs. Score: (1-w)·|x - G(E(x))| + w·|f_D(x, E(x)) -
f_D(G(E(x)), E(x))| (the feature-matching form, `--m fm`), w = the score's λ: 0.9 as in the paper's
Table 2 (the reference code's default is 0.1).

As in the reference: no spectral normalisation, dropout in D, scoring with an EMA of E and G (the
reference averages D too). Training runs G only on what the losses need, so that its BatchNorm
statistics are those of its own updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ganad_clinic.model import losses
from ganad_clinic.model.baselines.common import BaselineModel, JointCritic, adamw, l1_per_sample
from ganad_clinic.model.networks import ArchSpec, Encoder, Generator

if TYPE_CHECKING:
    from ganad_clinic.model.methods import StepInputs
    from ganad_clinic.model.trainer import TrainConfig


class EfficientGAN(BaselineModel):
    method = "efficient-gan"
    ema_parts = ("encoder", "generator")

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__(spec, image_size, channels, latent)
        self.encoder = Encoder(spec, image_size, channels, latent)
        self.generator = Generator(spec, image_size, channels, latent)
        self.critic = JointCritic(spec, image_size, channels, latent, sn=False, batch_norm=True)

    def configure_optimizers(self, config: TrainConfig) -> list[torch.optim.Optimizer]:
        pair = list(self.encoder.parameters()) + list(self.generator.parameters())
        return [adamw(self.critic.parameters(), config.lr, config), adamw(pair, config.lr, config)]

    def training_step(self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_d, opt_ge = optimizers
        gan, augment = inputs.config.gan, inputs.augment
        z = torch.randn(x.shape[0], self.latent, generator=inputs.latent_rng).to(x.device)
        with torch.autocast(x.device.type, enabled=inputs.use_amp):
            code, fake = self.encoder(x), self.generator(z)
            d_loss = losses.critic_loss(self.critic(augment(x), code.detach()), self.critic(augment(fake.detach()), z), gan)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(x.device.type, enabled=inputs.use_amp):
            ge_loss = losses.critic_loss(self.critic(augment(fake), z), self.critic(augment(x), code), gan)
        opt_ge.zero_grad(set_to_none=True)
        ge_loss.backward()
        opt_ge.step()
        return {"d": d_loss.item(), "g": ge_loss.item()}

    def anomaly_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        code = self.encoder(x)
        reconstruction = self.generator(code)
        features = self.critic.features(torch.cat([x, reconstruction]), torch.cat([code, code])).chunk(2)
        residual = l1_per_sample(x, reconstruction)
        terms = {"l_d": l1_per_sample(*features), "l_r": residual, "l_l": torch.zeros_like(residual)}
        return terms, reconstruction
