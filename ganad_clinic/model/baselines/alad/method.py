"""ALAD's training glue: an update of the three critics, then one update of E and G together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ganad_clinic.model.baselines.alad import loss
from ganad_clinic.model.baselines.alad.torch_model import ALAD
from ganad_clinic.model.baselines.common import REFERENCE_DEFAULTS, GanBaselineMethod
from ganad_clinic.model.config import StepInputs, TrainConfig
from ganad_clinic.model.optim import adamw


class AladMethod(GanBaselineMethod):
    name = "alad"
    description = ("ALAD baseline (Zenati et al.): A(x) = L_D, the residual of D_xx's features between (x, x) and "
                   "(x, G(E(x))); higher is more anomalous.")
    networks = ALAD
    ema_parts: tuple[str, ...] = ("encoder", "generator")
    train_defaults: Mapping[str, Any] = dict(REFERENCE_DEFAULTS, lam=1.0)

    def configure_optimizers(self, model: ALAD, config: TrainConfig) -> list[torch.optim.Optimizer]:
        """[the three critics, encoder and generator]."""
        critics = [p for m in (model.critic_xz, model.critic_xx, model.critic_zz) for p in m.parameters()]
        pair = list(model.encoder.parameters()) + list(model.generator.parameters())
        return [adamw(critics, config.lr, config), adamw(pair, config.lr, config)]

    def training_step(self, model: ALAD, x: torch.Tensor, optimizers: Sequence[torch.optim.Optimizer],
                      inputs: StepInputs) -> dict[str, float]:
        opt_d, opt_ge = optimizers
        gan, update = inputs.config.gan, inputs.update
        z = torch.randn(x.shape[0], model.latent, generator=inputs.latent_rng).to(x.device)
        with update.autocast():
            code, fake = model.encoder(x), model.generator(z)
            reconstruction, code_again = model.generator(code), model.encoder(fake)
            d_loss = loss.critics_loss(model.critic_pairs(x, z, code.detach(), fake.detach(), reconstruction.detach(),
                                                          code_again.detach()), gan)
        update.step(opt_d, d_loss)
        with update.autocast():
            ge_loss = loss.encoder_generator_loss(model.critic_pairs(x, z, code, fake, reconstruction, code_again), gan)
        update.step(opt_ge, ge_loss)
        return {"ae": loss.reconstruction_error(x, reconstruction.detach()).item(), "d": d_loss.item(),
                "g": ge_loss.item()}


METHOD = AladMethod()
