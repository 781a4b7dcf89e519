"""AnoGAN (Schlegl et al. 2017): a DCGAN trained on normal images; at test time a search for the
code z whose G(z) best matches x. The score is the search's final loss, (1-λ)·|x - G(z)| +
λ·|f_D(x) - f_D(G(z))|, so an image the generator cannot reproduce scores high.

The search runs `search_steps` Adam steps per batch (500 in the paper's Table 5; fewer is an option,
AR's port used 5). It starts every image at z = 0, the prior's mode, so a score does not depend on
which batch the image was scored in.
"""

from __future__ import annotations

from typing import Any

import torch

from ganad_clinic.model.baselines.anogan import loss
from ganad_clinic.model.baselines.common import l1_per_sample
from ganad_clinic.model.networks import ArchSpec, Critic, Generator
from ganad_clinic.model.protocol import DetectionNetworks


class AnoGAN(DetectionNetworks):
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

    def anomaly_terms(
        self, x: torch.Tensor, feature_layers: str = "last"
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        with torch.inference_mode(False), torch.enable_grad():
            x = x.clone()
            target = self.critic.feature_maps(x)[-1].detach()
            z = torch.zeros(x.shape[0], self.latent, device=x.device, requires_grad=True)
            search = torch.optim.Adam([z], lr=self.search_lr)
            for _ in range(self.search_steps):
                residual, disc = self._residuals(x, target, z)
                (z.grad,) = torch.autograd.grad(loss.search_loss(residual, disc, self.search_lambda), z)
                search.step()
            with torch.no_grad():
                residual, disc = self._residuals(x, target, z)
                reconstruction = self.generator(z)
        terms = {"l_d": disc.detach(), "l_r": residual.detach(), "l_l": torch.zeros_like(residual)}
        return terms, reconstruction.detach()

    def _residuals(self, x: torch.Tensor, target: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake = self.generator(z)
        return l1_per_sample(x, fake), l1_per_sample(target, self.critic.feature_maps(fake)[-1])
