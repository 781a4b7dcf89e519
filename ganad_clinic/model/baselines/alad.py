"""ALAD (Zenati et al. 2018): a BiGAN with three critics, D_xz(x, z), D_xx(x, x') and D_zz(z, z'),
the last two enforcing cycle consistency (x ≈ G(E(x)), z ≈ E(G(z))). Spectral normalisation in
the critics and the encoder; scoring with an EMA of E and G. Score: |f_xx(x, x) - f_xx(x,
G(E(x)))|, D_xx's hidden layer (the reference's `fm` score), which is l_d here; λ = 1 uses it alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ganad_clinic.model import losses
from ganad_clinic.model.baselines.common import (
    BaselineModel, ImagePairCritic, JointCritic, LatentPairCritic, adamw, l1_per_sample,
)
from ganad_clinic.model.networks import ArchSpec, Encoder, Generator

if TYPE_CHECKING:
    from ganad_clinic.model.methods import StepInputs
    from ganad_clinic.model.trainer import TrainConfig


class ALAD(BaselineModel):
    method = "alad"
    ema_parts = ("encoder", "generator")

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int) -> None:
        super().__init__(spec, image_size, channels, latent)
        self.encoder = Encoder(spec, image_size, channels, latent, spectral=True)
        self.generator = Generator(spec, image_size, channels, latent)
        self.critic_xz = JointCritic(spec, image_size, channels, latent, sn=True)
        self.critic_xx = ImagePairCritic(spec, image_size, channels)
        self.critic_zz = LatentPairCritic(latent, spec.hidden_linear)

    def configure_optimizers(self, config: TrainConfig) -> list[torch.optim.Optimizer]:
        critics = [p for m in (self.critic_xz, self.critic_xx, self.critic_zz) for p in m.parameters()]
        pair = list(self.encoder.parameters()) + list(self.generator.parameters())
        return [adamw(critics, config.lr, config), adamw(pair, config.lr, config)]

    def _critic_losses(self, x: torch.Tensor, z: torch.Tensor, code: torch.Tensor, fake: torch.Tensor,
                       reconstruction: torch.Tensor, code_again: torch.Tensor, gan: str,
                       for_critics: bool) -> torch.Tensor:
        """The three critics' losses; with for_critics False the labels swap (G and E try to fool them)."""
        pairs = ((self.critic_xz(x, code), self.critic_xz(fake, z)),
                 (self.critic_xx(x, x), self.critic_xx(x, reconstruction)),
                 (self.critic_zz(z, z), self.critic_zz(z, code_again)))
        return sum(losses.critic_loss(real, other, gan) if for_critics else losses.critic_loss(other, real, gan)
                   for real, other in pairs)

    def training_step(self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_d, opt_ge = optimizers
        gan = inputs.config.gan
        z = torch.randn(x.shape[0], self.latent, generator=inputs.latent_rng).to(x.device)
        with torch.autocast(x.device.type, enabled=inputs.use_amp):
            code, fake = self.encoder(x), self.generator(z)
            reconstruction, code_again = self.generator(code), self.encoder(fake)
            d_loss = self._critic_losses(x, z, code.detach(), fake.detach(), reconstruction.detach(),
                                         code_again.detach(), gan, for_critics=True)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(x.device.type, enabled=inputs.use_amp):
            ge_loss = self._critic_losses(x, z, code, fake, reconstruction, code_again, gan, for_critics=False)
        opt_ge.zero_grad(set_to_none=True)
        ge_loss.backward()
        opt_ge.step()
        return {"ae": F.mse_loss(reconstruction.detach(), x).item(), "d": d_loss.item(), "g": ge_loss.item()}

    def anomaly_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        reconstruction = self.generator(self.encoder(x))
        features = self.critic_xx.features(torch.cat([x, x]), torch.cat([x, reconstruction])).chunk(2)
        residual = l1_per_sample(x, reconstruction)
        terms = {"l_d": l1_per_sample(*features), "l_r": residual, "l_l": torch.zeros_like(residual)}
        return terms, reconstruction
