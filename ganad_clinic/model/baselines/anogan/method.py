"""AnoGAN's training glue: a critic update on real images against G(z), then a generator update.
It keeps its last weights: its search makes each validation cost as much as the training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ganad_clinic.model.baselines.anogan import loss
from ganad_clinic.model.baselines.anogan.torch_model import AnoGAN
from ganad_clinic.model.baselines.common import REFERENCE_DEFAULTS, GanBaselineMethod
from ganad_clinic.model.config import StepInputs, TrainConfig
from ganad_clinic.model.optim import adamw


class AnoGanMethod(GanBaselineMethod):
    name = "anogan"
    description = ("AnoGAN baseline (Schlegl et al.): a search for G's closest image; A(x) = λ·L_D + (1-λ)·L_R at the "
                   "searched code; higher is more anomalous.")
    networks = AnoGAN
    ema_parts: tuple[str, ...] = ()
    train_defaults: Mapping[str, Any] = dict(REFERENCE_DEFAULTS, lam=0.8, ema_decay=None, select_best=False)

    def options(self, config: TrainConfig) -> dict[str, Any]:
        """The search runs with the score's λ."""
        return {"search_steps": config.search_steps, "search_lambda": config.lam}

    def configure_optimizers(self, model: AnoGAN, config: TrainConfig) -> list[torch.optim.Optimizer]:
        """[critic, generator]."""
        return [adamw(model.critic.parameters(), config.lr, config),
                adamw(model.generator.parameters(), config.lr, config)]

    def training_step(self, model: AnoGAN, x: torch.Tensor, optimizers: Sequence[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_d, opt_g = optimizers
        augment, gan, update = inputs.augment, inputs.config.gan, inputs.update
        z = torch.randn(x.shape[0], model.latent, generator=inputs.latent_rng).to(x.device)
        with update.autocast():
            fake = model.generator(z)
            d_loss = loss.critic_loss(model.critic(augment(x)), model.critic(augment(fake.detach())), gan)
        update.step(opt_d, d_loss)
        with update.autocast():
            g_loss = loss.generator_loss(model.critic(augment(x)), model.critic(augment(fake)), gan)
        update.step(opt_g, g_loss)
        return {"d": d_loss.item(), "g": g_loss.item()}


METHOD = AnoGanMethod()
