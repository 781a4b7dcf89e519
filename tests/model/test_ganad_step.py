"""The paper's training step: which networks each optimiser moves and what the critic sees."""

import copy

import pytest
import torch

from ganad_clinic.model import losses
from ganad_clinic.model.config import StepInputs
from ganad_clinic.model.ganad.torch_model import GanAutoencoder
from ganad_clinic.model.methods import method_for
from ganad_clinic.model.networks import SPECS
from ganad_clinic.model.optim import OptimiserUpdate
from ganad_clinic.model.trainer import recommended_config

SPEC = SPECS["all"].scaled(0.125)
PARTS = ("encoder", "generator", "critic")


def batch(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class RecordingUpdate(OptimiserUpdate):
    """The CPU update, keeping a copy of the model before each optimiser step and which networks moved."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(torch.device("cpu"))
        self.model, self.before, self.moved = model, [], []

    def step(self, optimizer, loss) -> None:
        self.before.append(copy.deepcopy(self.model))
        old = {name: value.clone() for name, value in self.model.named_parameters()}
        super().step(optimizer, loss)
        changed = {name.split(".")[0] for name, value in self.model.named_parameters()
                   if not torch.equal(old[name], value)}
        self.moved.append(changed)


def run_step(monkeypatch, **options):
    """One step of the paper's method on a fresh model in eval mode (no dropout, BatchNorm's running
    statistics), recording the GAN loss calls; returns (calls, update, x, z, model)."""
    calls = {"critic": [], "generator": []}
    real_critic, real_generator = losses.critic_loss, losses.generator_loss
    monkeypatch.setattr(losses, "critic_loss", lambda a, b, kind: calls["critic"].append((a.detach(), b.detach()))
                        or real_critic(a, b, kind))
    monkeypatch.setattr(losses, "generator_loss", lambda a, b, kind: calls["generator"].append((a.detach(), b.detach()))
                        or real_generator(a, b, kind))
    model = GanAutoencoder(SPEC, 32, 3, 16).eval()
    config = recommended_config(32, 3, "all", width=0.125, latent=16, **options)
    method, update = method_for("ganad"), RecordingUpdate(model)
    x = batch()
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(5))
    inputs = StepInputs(config, lambda t: t, torch.Generator().manual_seed(5), update)
    step_losses = method.training_step(model, x, method.configure_optimizers(model, config), inputs)
    assert set(step_losses) == {"ae", "d", "g"}
    return calls, update, x, z, model


def test_each_optimiser_holds_the_networks_it_should() -> None:
    model = GanAutoencoder(SPEC, 32, 3, 16)
    config = recommended_config(32, 3, "all", width=0.125, latent=16)
    opt_ae, opt_g, opt_d = method_for("ganad").configure_optimizers(model, config)

    def held(optimizer) -> set[str]:
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        return {part for part in PARTS if any(id(p) in ids for p in getattr(model, part).parameters())}

    assert held(opt_ae) == {"encoder", "generator"} and held(opt_g) == {"generator"} and held(opt_d) == {"critic"}
    assert opt_ae.param_groups[0]["lr"] == config.lr_ae
    assert opt_g.param_groups[0]["lr"] == opt_d.param_groups[0]["lr"] == config.lr
    every = {id(p) for p in model.encoder.parameters()} | {id(p) for p in model.generator.parameters()}
    assert {id(p) for group in opt_ae.param_groups for p in group["params"]} == every


def test_the_updates_move_e_and_g_then_d_then_g(monkeypatch) -> None:
    _, update, _, _, _ = run_step(monkeypatch)
    assert update.moved == [{"encoder", "generator"}, {"critic"}, {"generator"}]  # autoencoder, critic, generator


def test_the_autoencoder_loss_reaches_e_and_g_only(monkeypatch) -> None:
    _, update, x, _, _ = run_step(monkeypatch)
    model = update.before[0]
    loss = losses.autoencoder_loss(x, model.reconstruct(x))
    loss.backward()
    reached = {name.split(".")[0] for name, p in model.named_parameters()
               if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {"encoder", "generator"}


@pytest.mark.parametrize("reconstructions", [False, True])
def test_the_critic_sees_real_images_against_g_of_z_and_reconstructions_when_asked(
    monkeypatch, reconstructions
) -> None:
    calls, update, x, z, _ = run_step(monkeypatch, critic_sees_reconstructions=reconstructions)
    start, after_ae, after_d = update.before  # before the autoencoder, the critic and the generator updates
    with torch.no_grad():
        fakes = after_ae.generator(z)  # G as the autoencoder update left it
        if reconstructions:
            fakes = torch.cat([fakes, start.reconstruct(x)])  # x̂ from the step's autoencoder pass
        real = after_ae.critic(x)
        fooled = after_d.critic(after_ae.generator(z))  # the updated critic on G(z)
        real_for_g = after_d.critic(x)
    assert len(calls["critic"]) == 1 and len(calls["generator"]) == 1
    seen_real, seen_fake = calls["critic"][0]
    assert seen_fake.shape == (len(fakes),)
    assert torch.allclose(seen_real, real.repeat(len(fakes) // len(x)), atol=1e-5)
    assert torch.allclose(seen_fake, after_ae.critic(fakes).detach(), atol=1e-5)
    g_real, g_fake = calls["generator"][0]
    assert torch.allclose(g_real, real_for_g, atol=1e-5) and torch.allclose(g_fake, fooled, atol=1e-5)


def test_the_generator_update_leaves_the_critic_and_the_encoder_alone(monkeypatch) -> None:
    _, update, _, _, model = run_step(monkeypatch)
    after_d = update.before[2]
    for part in ("encoder", "critic"):
        for a, b in zip(getattr(after_d, part).parameters(), getattr(model, part).parameters()):
            assert torch.equal(a, b)
