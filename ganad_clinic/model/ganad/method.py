"""The paper's training glue: per batch an autoencoder update (MSE of G(E(x)), moves E and G), a
critic update on real images against G(z) (and G(E(x)) with `critic_sees_reconstructions`) and
a generator update (RSGAN by default). Scoring averages E and G when the run uses EMA."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ganad_clinic.model.config import ScoreConfig, StepInputs, TrainConfig
from ganad_clinic.model.ganad import loss
from ganad_clinic.model.ganad.calibration import fit_residual_units
from ganad_clinic.model.ganad.torch_model import GanAutoencoder
from ganad_clinic.model.networks import ArchSpec
from ganad_clinic.model.optim import adamw


class GanadMethod:
    name = "ganad"
    description = ("GAN + autoencoder anomaly detector (Rafiee Sevyeri & Fevens): A(x) = λ·L_D + (1-λ)·L_R + β·L_L; "
                   "higher is more anomalous.")
    ema_parts: tuple[str, ...] = ("encoder", "generator")
    train_defaults: Mapping[str, Any] = {}

    def build(self, spec: ArchSpec, image_size: int, channels: int, latent: int,
              options: Mapping[str, Any]) -> GanAutoencoder:
        if options:
            raise ValueError(f"the ganad method takes no options, got {sorted(options)}")
        return GanAutoencoder(spec, image_size, channels, latent)

    def options(self, config: TrainConfig) -> dict[str, Any]:
        return {}

    def configure_optimizers(self, model: GanAutoencoder, config: TrainConfig) -> list[torch.optim.Optimizer]:
        """[autoencoder (E and G, Lr_AE), generator (Lr_GAN), critic (Lr_GAN)]."""
        pair = list(model.encoder.parameters()) + list(model.generator.parameters())
        return [adamw(pair, config.lr_ae, config), adamw(model.generator.parameters(), config.lr, config),
                adamw(model.critic.parameters(), config.lr, config)]

    def training_step(self, model: GanAutoencoder, x: torch.Tensor, optimizers: Sequence[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_ae, opt_g, opt_d = optimizers
        config, augment, update = inputs.config, inputs.augment, inputs.update
        with update.autocast():
            reconstruction = model.reconstruct(x)
            ae_loss = loss.autoencoder_loss(x, reconstruction)
        update.step(opt_ae, ae_loss)

        z = torch.randn(x.shape[0], config.latent, generator=inputs.latent_rng).to(x.device)
        with update.autocast():
            fake = model.generator(z)
            fakes = fake.detach()
            if config.critic_sees_reconstructions:
                fakes = torch.cat([fakes, reconstruction.detach()])
            real_logits = model.critic(augment(x))
            d_loss = loss.critic_loss(real_logits, model.critic(augment(fakes)), config.gan)
        update.step(opt_d, d_loss)
        with update.autocast():
            g_loss = loss.generator_loss(model.critic(augment(x)), model.critic(augment(fake)), config.gan)
        update.step(opt_g, g_loss)
        return {"ae": ae_loss.item(), "d": d_loss.item(), "g": g_loss.item()}

    def fit_terms(self, model: GanAutoencoder, x_train: torch.Tensor, x_val: torch.Tensor, labels: np.ndarray,
                  score_config: ScoreConfig) -> None:
        """The all-layer terms' units and form (`calibration.fit_residual_units`); nothing for "last"."""
        if score_config.feature_layers == "all":
            fit_residual_units(model, x_train, x_val, labels, score_config)


METHOD = GanadMethod()
