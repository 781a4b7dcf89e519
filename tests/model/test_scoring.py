import copy

import numpy as np
import pytest
import torch

from ganad_clinic.model.ganad.calibration import (
    EVIDENCE_POWERS,
    FORM_CHOICE_MIN,
    fit_residual_units,
)
from ganad_clinic.model.ganad.terms import raw_terms
from ganad_clinic.model.networks import FeatureScales
from ganad_clinic.model.scoring import (
    HEAT_TAPER,
    ScoreBatch,
    ScoreConfig,
    border_taper,
    combine,
    fit_term_stats,
    heat_of_ratio,
    residual_map,
    roc_auc,
    screening_metrics,
)


class _ToyEncoder:
    """E halves the image mean; its one hidden map is the image itself."""

    def forward_with_maps(self, x):
        return x.mean(dim=(1, 2, 3)).unsqueeze(1) * 0.5, [x]


class _ToyCritic:
    """f_D = the pixels themselves; one hidden map."""

    def feature_maps(self, x):
        return [x.flatten(1)]


class _Toy:
    """Residual units: 1 for the pixels, 2 for D's map and E's hidden map, 0.5 for E(x); every
    layer's spread 1 except E(x)'s, 2."""

    encoder = _ToyEncoder()
    critic = _ToyCritic()
    term_layers = {"l_r": slice(0, 1), "l_d": slice(1, 2), "l_l": slice(2, 4)}
    residual_units = FeatureScales([(1, 2, 2), (4,), (1, 2, 2), (1,)])
    for layer, unit in zip(residual_units.scales(), (1.0, 2.0, 2.0, 0.5)):
        layer.fill_(unit)
    residual_units.set_layer_spread([1.0, 1.0, 1.0, 2.0], 8)

    @staticmethod
    def generator(z):
        return z.view(-1, 1, 1, 1).expand(-1, 1, 2, 2)


def test_raw_terms_match_equations_4_to_6_by_hand() -> None:
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # mean 0.5 -> z = 0.25 -> x̂ = 0.25 everywhere
    terms, reconstruction = raw_terms(_Toy(), x)
    assert torch.allclose(reconstruction, torch.full((1, 1, 2, 2), 0.25))
    assert terms["l_r"].item() == pytest.approx(0.75 + 0.25 + 0.25 + 0.75)  # Σ|x - G(E(x))|
    assert terms["l_d"].item() == pytest.approx(2.0)  # f_D = pixels here
    assert terms["l_l"].item() == pytest.approx(abs(0.25 - 0.125))  # |E(x) - E(G(E(x)))|


def test_all_layer_terms_are_soft_maxima_of_unit_residuals_by_hand() -> None:
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # x̂ = 0.25 everywhere: residuals 0.75, 0.25, 0.25, 0.75

    def soft_max(values: list[float]) -> float:
        return float(np.mean(np.power(values, 8)) ** (1 / 8))

    terms, _ = raw_terms(_Toy(), x, feature_layers="all")
    pixels = [0.75, 0.25, 0.25, 0.75]
    assert terms["l_r"].item() == pytest.approx(soft_max(pixels))
    assert np.mean(pixels) < terms["l_r"].item() < max(pixels)  # between the paper's mean and the peak
    assert terms["l_d"].item() == pytest.approx(soft_max([v / 2 for v in pixels]))
    # E's hidden map (the image) in units of 2, spread 1; E(x) 0.25 against 0.125 in units of 0.5, spread 2
    assert terms["l_l"].item() == pytest.approx(soft_max([v / 2 for v in pixels]) + 0.125 / 0.5 / 2.0)
    with pytest.raises(ValueError, match="feature layers"):
        raw_terms(_Toy(), x, feature_layers="some")


def test_power_one_makes_the_all_layer_terms_plain_means_of_unit_residuals() -> None:
    toy = _Toy()
    toy.residual_units = copy.deepcopy(_Toy.residual_units)
    toy.residual_units.evidence_power.fill_(1.0)
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    terms, _ = raw_terms(toy, x, feature_layers="all")
    assert terms["l_r"].item() == pytest.approx(np.mean([0.75, 0.25, 0.25, 0.75]))
    assert terms["l_d"].item() == pytest.approx(np.mean([0.75, 0.25, 0.25, 0.75]) / 2)


class _ZeroToy:
    """x̂ = 0 and E(x) = 0, so every residual of every term is the image itself (E's hidden map is x)."""

    term_layers = {"l_r": slice(0, 1), "l_d": slice(1, 2), "l_l": slice(2, 4)}

    def __init__(self) -> None:
        self.residual_units = FeatureScales([(1, 4, 4), (16,), (1, 4, 4), (1,)])
        self.encoder = self
        self.critic = self

    def parameters(self):
        return iter([torch.zeros(1)])

    def forward_with_maps(self, x):
        return torch.zeros(len(x), 1), [x]

    def generator(self, z):
        return torch.zeros(len(z), 1, 4, 4)

    def feature_maps(self, x):
        return [x.flatten(1)]


def _fields(levels: np.ndarray, spike: float, rng: np.random.Generator) -> torch.Tensor:
    """4x4 images at a flat level each, plus one pixel raised by `spike` at a random place."""
    images = np.repeat(levels[:, None], 16, axis=1) + rng.normal(0, 0.01, (len(levels), 16))
    images[np.arange(len(levels)), rng.integers(0, 16, len(levels))] += spike
    return torch.tensor(images, dtype=torch.float32).view(-1, 1, 4, 4)


def test_the_evidence_form_is_chosen_on_validation_anomalies() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0] * 20 + [1] * 20)
    # normals: a flat level that varies from image to image, plus a spike
    normals = _fields(rng.uniform(0.0, 0.2, 60), 0.3, rng)
    # local anomalies (one strong spike on a normal level): the soft maximum sees them, a mean does not
    local = torch.cat([_fields(rng.uniform(0.0, 0.2, 20), 0.3, rng), _fields(rng.uniform(0.0, 0.2, 20), 1.5, rng)])
    toy = _ZeroToy()
    auc = fit_residual_units(toy, normals[:40], local, labels)
    assert float(toy.residual_units.evidence_power) == EVIDENCE_POWERS[0] == 8 and auc > 0.9
    # diffuse anomalies (everything raised a little, no spike): a plain mean sees them, a soft maximum
    # mistakes the normals' spikes for evidence
    diffuse = torch.cat([_fields(rng.uniform(0.0, 0.2, 20), 0.3, rng), _fields(np.full(20, 0.25), 0.0, rng)])
    toy = _ZeroToy()
    auc = fit_residual_units(toy, normals[:40], diffuse, labels)
    assert float(toy.residual_units.evidence_power) <= 2 and auc > 0.9
    assert toy.residual_units.per_feature()
    # a margin pixel (the last) that the training normals never use: per-feature units blow up the
    # harmless blips some validation normals have there, so the features' own scale is chosen
    quiet = normals.clone()
    quiet.view(-1, 16)[:, 15] = 0.0
    val = torch.cat([_fields(rng.uniform(0.0, 0.2, 20), 0.3, rng), _fields(rng.uniform(0.4, 0.6, 20), 0.3, rng)])
    val.view(-1, 16)[:20, 15] = 0.0
    val.view(-1, 16)[:20:2, 15] = 0.1
    val.view(-1, 16)[20:, 15] = 0.0
    toy = _ZeroToy()
    auc = fit_residual_units(toy, quiet[:40], val, labels)
    assert not toy.residual_units.per_feature() and auc > 0.9
    assert all(bool((scale == 1).all()) for scale in toy.residual_units.scales())
    # fewer than FORM_CHOICE_MIN of a class (the paper's 5 + 15): the default, and no AUC
    toy = _ZeroToy()
    few = np.array([0] * (FORM_CHOICE_MIN - 1) + [1] * 20)
    assert fit_residual_units(toy, quiet[:40], val[1:], few) is None
    assert float(toy.residual_units.evidence_power) == 8 and toy.residual_units.per_feature()
    # without validation anomalies: the default, and no AUC
    toy = _ZeroToy()
    assert fit_residual_units(toy, normals[:40], normals[40:], np.zeros(20, dtype=int)) is None
    assert float(toy.residual_units.evidence_power) == 8 and toy.residual_units.per_feature()


def test_feature_scales_are_each_features_spread_with_a_floor_for_dead_features() -> None:
    scales = FeatureScales([(1, 2), (3,)])
    first_maps = torch.tensor([[[0.0, 1.0]]])  # N x C x W
    second_maps = torch.tensor([[[4.0, 1.0]]])
    latent = torch.tensor([[1.0, 0.0, 5.0], [3.0, 0.0, 5.0]])
    scales.fit([[first_maps, latent[:1]], [second_maps, latent[1:]]])  # two batches of one image
    assert scales.layer_0[0, 0].item() == pytest.approx(torch.tensor([0.0, 4.0]).std().item())
    assert scales.layer_0[0, 1].item() == pytest.approx(scales.layer_0[0, 0].item() / 2 * 1e-2)  # dead: 1 % of the mean
    assert scales.layer_1[0].item() == pytest.approx(2**0.5)  # std of 1, 3
    floor = 2**0.5 / 3 * 1e-2
    assert scales.layer_1[1].item() == pytest.approx(floor) and scales.layer_1[2].item() == pytest.approx(floor)
    scales.set_layer_spread([2.0, 0.5], 2)
    assert scales.layer_spread.tolist() == [2.0, 0.5] and float(scales.evidence_power) == 2.0
    with pytest.raises(ValueError, match="at least 2"):
        FeatureScales([(1,)]).fit([[torch.ones(1, 1)]])


def test_combined_score_raw_and_normalised_by_hand() -> None:
    terms = {"l_d": torch.tensor([10.0]), "l_r": torch.tensor([100.0]), "l_l": torch.tensor([1.0])}
    raw = combine(terms, ScoreConfig(lam=0.8, beta=1.0, mode="raw"))
    assert raw.item() == pytest.approx(0.8 * 10 + 0.2 * 100 + 1.0)
    stats = {"l_d": (8.0, 2.0), "l_r": (50.0, 25.0), "l_l": (0.5, 0.25)}
    normalised = combine(terms, ScoreConfig(lam=0.8, beta=0.5, mode="normalised", term_stats=stats))
    assert normalised.item() == pytest.approx(0.8 * 1.0 + 0.2 * 2.0 + 0.5 * 2.0)


def test_normalised_needs_statistics_and_bad_settings_are_refused() -> None:
    terms = {name: torch.ones(1) for name in ("l_d", "l_r", "l_l")}
    with pytest.raises(ValueError, match="statistics"):
        combine(terms, ScoreConfig(mode="normalised"))
    with pytest.raises(ValueError, match="λ"):
        ScoreConfig(lam=1.5)
    with pytest.raises(ValueError, match="mode"):
        ScoreConfig(mode="median")


def test_fit_term_stats() -> None:
    stats = fit_term_stats({"l_d": np.array([1.0, 3.0]), "l_r": np.array([2.0, 2.0]), "l_l": np.array([0.0, 4.0])})
    assert stats["l_d"] == pytest.approx((2.0, np.sqrt(2.0)))
    assert stats["l_r"][1] > 0  # a constant term still gets a usable scale


def test_residual_map_is_channel_mean_of_absolute_difference() -> None:
    x = torch.zeros(1, 3, 5, 5)
    reconstruction = torch.zeros(1, 3, 5, 5)
    reconstruction[0, :, 2, 2] = 0.9
    residual = residual_map(x, reconstruction)
    assert residual.shape == (1, 5, 5)
    assert residual[0, 2, 2].item() == pytest.approx(0.1)  # 0.9 spread over 3x3
    assert residual[0, 0, 0].item() == 0.0


def test_screening_metrics_by_hand() -> None:
    scores = np.array([0.1, 0.6, 0.7, 0.2, 0.9])
    labels = np.array([0, 0, 1, 1, 1])
    metrics = screening_metrics(scores, labels, scores > 0.5)
    assert metrics["sensitivity"] == pytest.approx(2 / 3)
    assert metrics["specificity"] == pytest.approx(1 / 2)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert metrics["auc"] == pytest.approx(5 / 6)  # 5 of the 6 (anomalous, normal) pairs are ordered
    assert (metrics["n_normal"], metrics["n_anomalous"]) == (2, 3)
    assert np.isnan(roc_auc(np.array([1.0, 2.0]), np.array([0, 0])))


def batch_of_residuals(residual: torch.Tensor) -> ScoreBatch:
    zeros = torch.zeros(len(residual))
    return ScoreBatch(score=zeros, l_d=zeros, l_r=zeros, l_l=zeros, residual=residual,
                      reconstruction=torch.zeros(len(residual), 3, *residual.shape[1:]))


def test_heat_is_zero_up_to_the_reference_and_rises_above_it_on_the_ratio_scale() -> None:
    config = ScoreConfig(pixel_reference=0.25)
    ratios = torch.arange(41, dtype=torch.float32) / 4  # 0 to 10 times the reference, 1 among them
    residual = torch.zeros(1, 64, 64)
    residual[0, 32, 12:53] = ratios * 0.25  # a row in the untapered middle

    heat = batch_of_residuals(residual).heat(config)[0]

    along = heat[32, 12:53]
    assert (along[ratios <= 1.0] == 0).all()
    assert (torch.diff(along[ratios >= 1.0]) > 0).all()
    torch.testing.assert_close(along, torch.tensor([heat_of_ratio(float(ratio)) for ratio in ratios]))
    assert (heat_of_ratio(0.5), heat_of_ratio(1.0), heat_of_ratio(3.0)) == (0.0, 0.0, 0.5)
    assert (heat == 0).sum() == 64 * 64 - 36  # zero residual elsewhere: no heat at all
    assert float(heat.max()) < 1.0


def test_heat_fades_to_zero_at_the_border_of_what_the_model_saw_and_is_untouched_inside() -> None:
    config = ScoreConfig(pixel_reference=1.0)
    heat = batch_of_residuals(torch.full((2, 64, 64), 3.0)).heat(config)

    for side in (heat[:, 0, :], heat[:, -1, :], heat[:, :, 0], heat[:, :, -1]):
        assert (side == 0).all()
    inside = int(64 * HEAT_TAPER)
    torch.testing.assert_close(heat[:, inside:-inside, inside:-inside],
                               torch.full((2, 64 - 2 * inside, 64 - 2 * inside), 0.5))
    rising = heat[0, 32, :inside + 1]
    assert (torch.diff(rising) > 0).all()  # a smooth ramp, no step
    torch.testing.assert_close(heat[0], heat[0].flip(0).flip(1))


def test_the_border_taper_is_a_half_cosine_over_an_eighth_of_the_side() -> None:
    taper = border_taper(64, torch.zeros(1, dtype=torch.float64))
    assert taper.dtype == torch.float64
    assert float(taper[0]) == 0.0 and float(taper[4]) == pytest.approx(0.5) and float(taper[8]) == 1.0
    assert (taper[8:56] == 1.0).all()


def test_sensitivity_at_specificity_by_hand() -> None:
    import numpy as np

    from ganad_clinic.model.scoring import sensitivity_at_specificity

    normals = np.arange(100, dtype=float)  # 0 ... 99
    anomalies = np.array([98.5, 99.5, 120.0, 50.0])
    scores, labels = np.concatenate([normals, anomalies]), np.r_[np.zeros(100), np.ones(4)]
    # 99 % of 100 normals at or below the threshold: it is the 99th smallest, 98; above it 98.5, 99.5, 120
    assert sensitivity_at_specificity(scores, labels, 0.99) == 0.75
    # 95 %: the threshold is 94; 50 is still missed
    assert sensitivity_at_specificity(scores, labels, 0.95) == 0.75
    assert sensitivity_at_specificity(scores, labels, 1.0) == 0.5  # above the highest normal, 99
    assert np.isnan(sensitivity_at_specificity(normals, np.zeros(100), 0.99))
