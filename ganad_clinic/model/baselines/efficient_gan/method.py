"""Efficient-GAN's training glue: a critic update on image-code pairs, then one update of E and G
together. G runs only on what the losses need, so that its BatchNorm statistics are those of its
own updates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ganad_clinic.model.baselines.common import REFERENCE_DEFAULTS, GanBaselineMethod
from ganad_clinic.model.baselines.efficient_gan import loss
from ganad_clinic.model.baselines.efficient_gan.torch_model import EfficientGAN
from ganad_clinic.model.config import StepInputs, TrainConfig
from ganad_clinic.model.optim import adamw


class EfficientGanMethod(GanBaselineMethod):
    name = "efficient-gan"
    description = ("Efficient-GAN baseline (Zenati et al., BiGAN): A(x) = λ·L_D + (1-λ)·L_R with D(x, z)'s "
                   "features; higher is more anomalous.")
    networks = EfficientGAN
    ema_parts: tuple[str, ...] = ("encoder", "generator")
    train_defaults: Mapping[str, Any] = dict(REFERENCE_DEFAULTS, lam=0.9)

    def configure_optimizers(self, model: EfficientGAN, config: TrainConfig) -> list[torch.optim.Optimizer]:
        """[critic, encoder and generator]."""
        pair = list(model.encoder.parameters()) + list(model.generator.parameters())
        return [adamw(model.critic.parameters(), config.lr, config), adamw(pair, config.lr, config)]

    def training_step(self, model: EfficientGAN, x: torch.Tensor, optimizers: Sequence[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_d, opt_ge = optimizers
        gan, augment, update = inputs.config.gan, inputs.augment, inputs.update
        z = torch.randn(x.shape[0], model.latent, generator=inputs.latent_rng).to(x.device)
        with update.autocast():
            code, fake = model.encoder(x), model.generator(z)
            d_loss = loss.critic_loss(model.critic(augment(x), code.detach()),
                                      model.critic(augment(fake.detach()), z), gan)
        update.step(opt_d, d_loss)
        with update.autocast():
            ge_loss = loss.encoder_generator_loss(model.critic(augment(fake), z), model.critic(augment(x), code), gan)
        update.step(opt_ge, ge_loss)
        return {"d": d_loss.item(), "g": ge_loss.item()}


METHOD = EfficientGanMethod()
