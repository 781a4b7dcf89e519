"""AnoGAN (Schlegl et al. 2017): a DCGAN trained on normal images; at test time a search for the
code z whose G(z) best matches x. The score is the search's final loss, (1-λ)·|x - G(z)| +
λ·|f_D(x) - f_D(G(z))|, so an image the generator cannot reproduce scores high.

The search runs `search_steps` Adam steps per batch (500 in the paper's Table 5; fewer is an option,
AR's port used 5). It starts every image at z = 0, the prior's mode, so a score does not depend on
which batch the image was scored in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ganad_clinic.model import losses
from ganad_clinic.model.baselines.common import BaselineModel, adamw, l1_per_sample
from ganad_clinic.model.networks import ArchSpec, Critic, Generator

if TYPE_CHECKING:
    from ganad_clinic.model.methods import StepInputs
    from ganad_clinic.model.trainer import TrainConfig


class AnoGAN(BaselineModel):
    method = "anogan"

    def __init__(self, spec: ArchSpec, image_size: int, channels: int, latent: int, search_steps: int = 500,
                 search_lr: float = 0.02, search_lambda: float = 0.1) -> None:
        super().__init__(spec, image_size, channels, latent)
        if search_steps < 1:
            raise ValueError(f"AnoGAN needs at least 1 search step, not {search_steps}")
        self.search_steps, self.search_lr, self.search_lambda = search_steps, search_lr, search_lambda
        self.generator = Generator(spec, image_size, channels, latent)
        self.critic = Critic(spec, image_size, channels)

    def options(self) -> dict[str, Any]:
        return {"search_steps": self.search_steps, "search_lr": self.search_lr, "search_lambda": self.search_lambda}

    def configure_optimizers(self, config: TrainConfig) -> list[torch.optim.Optimizer]:
        return [adamw(self.critic.parameters(), config.lr, config), adamw(self.generator.parameters(), config.lr, config)]

    def training_step(self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_d, opt_g = optimizers
        z = torch.randn(x.shape[0], self.latent, generator=inputs.latent_rng).to(x.device)
        with torch.autocast(x.device.type, enabled=inputs.use_amp):
            fake = self.generator(z)
            d_loss = losses.critic_loss(self.critic(inputs.augment(x)), self.critic(inputs.augment(fake.detach())),
                                        inputs.config.gan)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(x.device.type, enabled=inputs.use_amp):
            g_loss = losses.generator_loss(self.critic(inputs.augment(x)), self.critic(inputs.augment(fake)),
                                           inputs.config.gan)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return {"d": d_loss.item(), "g": g_loss.item()}

    def anomaly_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        with torch.inference_mode(False), torch.enable_grad():
            x = x.clone()
            target = self.critic.feature_maps(x)[-1].detach()
            z = torch.zeros(x.shape[0], self.latent, device=x.device, requires_grad=True)
            search = torch.optim.Adam([z], lr=self.search_lr)
            for _ in range(self.search_steps):
                residual, disc = self._residuals(x, target, z)
                loss = ((1 - self.search_lambda) * residual + self.search_lambda * disc).sum()
                (z.grad,) = torch.autograd.grad(loss, z)
                search.step()
            with torch.no_grad():
                residual, disc = self._residuals(x, target, z)
                reconstruction = self.generator(z)
        terms = {"l_d": disc.detach(), "l_r": residual.detach(), "l_l": torch.zeros_like(residual)}
        return terms, reconstruction.detach()

    def _residuals(self, x: torch.Tensor, target: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake = self.generator(z)
        return l1_per_sample(x, fake), l1_per_sample(target, self.critic.feature_maps(fake)[-1])
