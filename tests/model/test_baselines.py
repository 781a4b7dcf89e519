"""The GAN baselines behind the trainer, scorer and bundle interface of the paper's model."""

import copy
import json

import numpy as np
import pytest
import torch

from ganad_clinic.model import losses
from ganad_clinic.model.baselines.alad.torch_model import ALAD
from ganad_clinic.model.baselines.common import l1_per_sample
from ganad_clinic.model.baselines.efficient_gan.torch_model import EfficientGAN
from ganad_clinic.model.bundle import (
    BundleError,
    load_bundle,
    metadata_digest,
    save_bundle,
)
from ganad_clinic.model.config import StepInputs
from ganad_clinic.model.methods import METHODS, build_model, method_for, method_of
from ganad_clinic.model.networks import SPECS
from ganad_clinic.model.optim import OptimiserUpdate
from ganad_clinic.model.scoring import ScoreConfig, score_batch
from ganad_clinic.model.trainer import paper_recipe, recommended_config, train

SPEC = SPECS["all"].scaled(0.125)
BASELINES = ("anogan", "efficient-gan", "alad")


def tiny(method: str, **overrides):
    values = dict(width=0.125, latent=16, batch_size=4, steps=4, eval_every=2, search_steps=15)
    values.update(overrides)
    return recommended_config(32, 3, "all", method, **values)


@pytest.fixture(scope="module")
def trained(tiny_data) -> dict:
    return {method: train(tiny(method), tiny_data["train"], tiny_data["val"], tiny_data["labels"],
                          tiny_data["calibration"])
            for method in BASELINES}


def batch(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_every_method_builds_from_its_name() -> None:
    for method in METHODS:
        model = build_model(method, SPEC, 32, 3, 16)
        assert method_of(model) == method
    with pytest.raises(ValueError, match="unknown method 'ganomaly'"):
        build_model("ganomaly", SPEC, 32, 3, 16)


@pytest.mark.parametrize("method", BASELINES)
def test_baselines_train_with_their_references_settings(trained, method) -> None:
    result = trained[method]
    config = tiny(method)
    assert (config.gan, config.beta, config.score_mode, config.diff_augment) == ("sgan", 0.0, "raw", ())
    assert result.score_config.lam == {"anogan": 0.8, "efficient-gan": 0.9, "alad": 1.0}[method]
    assert method_of(result.model) == method and not result.model.training
    assert [row["step"] for row in result.history] == [1, 2, 3, 4]
    assert all(np.isfinite(row["d"]) and np.isfinite(row["g"]) for row in result.history)
    assert 0.0 <= result.validation_metrics["auc"] <= 1.0
    validated = [row["step"] for row in result.history if "validation" in row]
    assert validated == ([] if method == "anogan" else [2, 4])  # AnoGAN's search makes validation costly


@pytest.mark.parametrize("method", BASELINES)
def test_baselines_are_deterministic_per_seed(tiny_data, trained, method) -> None:
    again = train(tiny(method), tiny_data["train"], tiny_data["val"], tiny_data["labels"], tiny_data["calibration"])
    for (name, a), b in zip(trained[method].model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_baselines_terms_match_their_definitions(trained) -> None:
    x = batch()
    efficient = trained["efficient-gan"].model
    terms, reconstruction = efficient.anomaly_terms(x)
    code = efficient.encoder(x)
    assert torch.allclose(reconstruction, efficient.generator(code))
    assert torch.allclose(terms["l_r"], (x - reconstruction).abs().sum((1, 2, 3)))
    f_x, f_rec = efficient.critic.features(x, code), efficient.critic.features(reconstruction, code)
    assert torch.allclose(terms["l_d"], (f_x - f_rec).abs().sum(1), rtol=1e-4)
    assert torch.equal(terms["l_l"], torch.zeros(3))

    alad = trained["alad"].model
    terms, reconstruction = alad.anomaly_terms(x)
    f_real, f_rec = alad.critic_xx.features(x, x), alad.critic_xx.features(x, reconstruction)
    assert torch.allclose(terms["l_d"], (f_real - f_rec).abs().sum(1), rtol=1e-4)
    score = score_batch(alad, x, trained["alad"].score_config).score
    assert torch.allclose(score, terms["l_d"], rtol=1e-4)  # ALAD scores on D_xx's features alone


def test_anogan_search_lowers_its_loss_and_ignores_the_batch(trained) -> None:
    model = copy.deepcopy(trained["anogan"].model)
    x = batch(4)
    model.search_steps = 1
    first, _ = model.anomaly_terms(x)
    model.search_steps = 30
    terms, reconstruction = model.anomaly_terms(x)
    loss = lambda t: (1 - model.search_lambda) * t["l_r"] + model.search_lambda * t["l_d"]  # noqa: E731
    assert (loss(terms) < loss(first)).all()
    assert torch.allclose(terms["l_r"], l1_per_sample(x, reconstruction), rtol=1e-4)
    alone, _ = model.anomaly_terms(x[2:3])
    assert torch.allclose(alone["l_r"], terms["l_r"][2:3], rtol=1e-4)
    with torch.inference_mode():  # the scorer's mode: the search still gets its gradients
        inside = score_batch(model, x, ScoreConfig(0.8, 0.0, "raw"))
    assert torch.allclose(inside.l_r, terms["l_r"], rtol=1e-4)


@pytest.mark.parametrize("method", BASELINES)
def test_bundles_round_trip_every_method(tmp_path, trained, method) -> None:
    result = trained[method]
    path = save_bundle(tmp_path / method, result.model, result.score_config, result.operating_point)
    metadata = json.loads((path / "configs/metadata.json").read_text())
    assert metadata["ganad"]["architecture"]["method"] == method
    bundle = load_bundle(path)
    assert bundle.method == method and metadata["description"].lower().startswith(method.split("-")[0])
    x = batch()
    assert torch.allclose(bundle.score(x).score, score_batch(result.model, x, result.score_config).score, rtol=1e-5)
    if method == "anogan":
        assert bundle.model.search_steps == 15
    assert metadata["ganad"]["architecture"]["options"] == (bundle.model.options())


def test_a_bundle_whose_weights_belong_to_another_method_is_refused(tmp_path, trained) -> None:
    result = trained["efficient-gan"]
    path = save_bundle(tmp_path / "b", result.model, result.score_config, result.operating_point)
    metadata_path = path / "configs/metadata.json"
    metadata = json.loads(metadata_path.read_text())
    for method, message in (("alad", "incompatible"), ("ganomaly", "method 'ganomaly' is not one of")):
        metadata["ganad"]["architecture"]["method"] = method
        metadata["ganad"]["seal_sha256"] = metadata_digest(metadata)  # resealed: the seal alone would refuse it
        metadata_path.write_text(json.dumps(metadata))
        with pytest.raises(BundleError, match=message):
            load_bundle(path)


def test_the_paper_recipe_belongs_to_the_papers_model() -> None:
    with pytest.raises(ValueError, match="paper's own model"):
        paper_recipe(tiny("alad"))
    with pytest.raises(ValueError, match="unknown method"):
        recommended_config(32, 3, "all", "ganomaly")


def test_bigan_critics_see_pairs() -> None:
    efficient, alad = EfficientGAN(SPEC, 32, 3, 16).eval(), ALAD(SPEC, 32, 3, 16).eval()
    x, z = batch(2), torch.randn(2, 16)
    assert efficient.critic(x, z).shape == (2,) and alad.critic_xz(x, z).shape == (2,)
    assert alad.critic_xx(x, x).shape == (2,) and alad.critic_zz(z, z).shape == (2,)
    assert not torch.allclose(alad.critic_xx(x, x), alad.critic_xx(x, -x))
    sn = [name for name, _ in alad.named_parameters() if "parametrizations" in name]
    assert any(n.startswith("encoder.") for n in sn) and any(n.startswith("critic_zz.") for n in sn)
    assert not any("parametrizations" in name for name, _ in efficient.named_parameters())


def _captured_step(model, monkeypatch) -> tuple[list, torch.Tensor, torch.Tensor, torch.nn.Module]:
    """Returns the recorded (first, second) logits per loss call, x, z and the model before the step;
    `model` itself is left after it (critics updated, then encoder and generator)."""
    calls = []
    real_loss = losses.critic_loss
    monkeypatch.setattr(losses, "critic_loss",
                        lambda a, b, kind: calls.append((a.detach(), b.detach())) or real_loss(a, b, kind))
    model.eval()
    before = copy.deepcopy(model)
    x = batch(4)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(5))
    config = recommended_config(32, 3, "all", model.method, width=0.125, latent=16)
    inputs = StepInputs(config, lambda t: t, torch.Generator().manual_seed(5), OptimiserUpdate(torch.device("cpu")))
    method = method_for(model.method)
    method.training_step(model, x, method.configure_optimizers(model, config), inputs)
    return calls, x, z, before


def test_efficient_gan_critic_tells_pairs_apart_and_encoder_generator_fool_it(monkeypatch) -> None:
    model = EfficientGAN(SPEC, 32, 3, 16)
    calls, x, z, before = _captured_step(model, monkeypatch)
    with torch.no_grad():
        code, fake = before.encoder(x), before.generator(z)
        real_pair, fake_pair = before.critic(x, code), before.critic(fake, z)
        swapped = model.critic(fake, z), model.critic(x, code)  # the updated critic, the old E and G
    assert len(calls) == 2
    assert torch.allclose(calls[0][0], real_pair) and torch.allclose(calls[0][1], fake_pair)  # D: (x, E(x)) real
    assert torch.allclose(calls[1][0], swapped[0], atol=1e-5) and torch.allclose(calls[1][1], swapped[1], atol=1e-5)


def test_alad_trains_three_critics_then_swaps_their_labels(monkeypatch) -> None:
    model = ALAD(SPEC, 32, 3, 16)
    calls, x, z, before = _captured_step(model, monkeypatch)
    with torch.no_grad():
        code, fake = before.encoder(x), before.generator(z)
        reconstruction, code_again = before.generator(code), before.encoder(fake)
        pairs = [lambda c: (c.critic_xz(x, code), c.critic_xz(fake, z)),
                 lambda c: (c.critic_xx(x, x), c.critic_xx(x, reconstruction)),
                 lambda c: (c.critic_zz(z, z), c.critic_zz(z, code_again))]
        critics_step = [pair(before) for pair in pairs]
        fooling_step = [pair(model)[::-1] for pair in pairs]  # updated critics, old E and G, labels swapped
    assert len(calls) == 6
    for (first, second), (want_first, want_second) in zip(calls, critics_step + fooling_step):
        assert torch.allclose(first, want_first, atol=1e-5) and torch.allclose(second, want_second, atol=1e-5)
