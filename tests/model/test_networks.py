import pytest
import torch
from torch import nn

from ganad_clinic.model.ganad.torch_model import GanAutoencoder
from ganad_clinic.model.networks import SPECS, count_parameters, scale_plan

SIZES = (28, 32, 64, 128, 220)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", (1, 3))
def test_shapes_for_every_spec_and_size(spec_name: str, size: int, channels: int) -> None:
    spec = SPECS[spec_name].scaled(0.125)
    model = GanAutoencoder(spec, size, channels, latent=16).eval()
    x = torch.rand(2, channels, size, size) * 2 - 1
    with torch.no_grad():
        z = model.encoder(x)
        reconstruction = model.generator(z)
        features = model.critic.feature_maps(x)[-1].flatten(1)
        logits = model.critic(x)
    assert z.shape == (2, 16)
    assert reconstruction.shape == x.shape
    assert reconstruction.abs().max() <= 1.0
    assert features.ndim == 2 and features.shape[0] == 2
    assert logits.shape == (2,)


def test_decoder_is_the_generator() -> None:
    model = GanAutoencoder(SPECS["mnist"], 28, 1, latent=8)
    assert model.decoder is model.generator
    decoder_params = {id(p) for p in model.decoder.parameters()}
    generator_params = {id(p) for p in model.generator.parameters()}
    assert decoder_params == generator_params
    with torch.no_grad():
        next(model.generator.parameters()).add_(1.0)
    assert torch.equal(next(model.decoder.parameters()), next(model.generator.parameters()))


def test_critic_is_spectrally_normalised_without_batchnorm() -> None:
    model = GanAutoencoder(SPECS["all"].scaled(0.125), 64, 3, latent=16)
    weighted = [m for m in model.critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert weighted and all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in weighted)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.critic.modules())
    dropouts = [m.p for m in model.critic.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and set(dropouts) == {0.2}
    assert {m.p for m in model.encoder.modules() if isinstance(m, nn.Dropout)} == {0.2}


def test_layer_counts_follow_table_1() -> None:
    for spec in SPECS.values():
        model = GanAutoencoder(spec.scaled(0.125), 64, 3, latent=16)
        critic_convs = [m for m in model.critic.modules() if isinstance(m, nn.Conv2d)]
        critic_linears = [m for m in model.critic.modules() if isinstance(m, nn.Linear)]
        encoder_convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
        encoder_linears = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
        generator_tconvs = [m for m in model.generator.modules() if isinstance(m, nn.ConvTranspose2d)]
        generator_convs = [m for m in model.generator.modules() if isinstance(m, nn.Conv2d)]
        generator_linears = [m for m in model.generator.modules() if isinstance(m, nn.Linear)]
        assert (len(critic_convs), len(critic_linears)) == (spec.l, spec.m), spec.name
        assert (len(encoder_convs), len(encoder_linears)) == (spec.p, spec.q), spec.name
        assert (len(generator_convs), len(generator_tconvs), len(generator_linears)) == (spec.i, spec.j, spec.k)


def test_all_spec_parameter_counts_near_table_5() -> None:
    model = GanAutoencoder(SPECS["all"], 220, 3, latent=200)
    for name, paper in (("encoder", 8_716_888), ("generator", 2_450_307), ("critic", 5_159_170)):
        ours = count_parameters(getattr(model, name))
        assert abs(ours / paper - 1) <= 0.25, (name, ours, paper)


def test_scale_plan_refuses_sizes_the_spec_cannot_reach() -> None:
    assert scale_plan(64, 6) == (4, [2, 2, 2, 2, 1, 1])
    with pytest.raises(ValueError, match="needs"):
        scale_plan(4096, 2)
    with pytest.raises(ValueError, match="too small"):
        scale_plan(2, 3)


def test_channels_must_be_1_or_3() -> None:
    with pytest.raises(ValueError, match="channels"):
        GanAutoencoder(SPECS["mnist"], 28, 2, latent=8)
