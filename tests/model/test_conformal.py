"""Split-conformal calibration (model.conformal): the threshold, the p-values, Bonferroni over a
slide's cells, the shortfall of a small calibration, the words and the split."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganad_clinic.model.conformal import (
    MIN_CALIBRATION,
    Calibration,
    CalibrationError,
    OperatingPoint,
    calibration_count,
    p_value_words,
    percent,
    split_calibration,
)


def by_hand(scores: list[float], level: float | Fraction) -> float:
    """The ceil((n + 1)(1 - level))-th smallest score (the largest when that rank passes n), in
    exact arithmetic on the level as written."""
    exact = level if isinstance(level, Fraction) else Fraction(str(level))
    rank = math.ceil((len(scores) + 1) * (1 - exact))
    return sorted(scores)[min(rank, len(scores)) - 1]


@pytest.mark.parametrize("scores, level, expected", [
    (list(range(1, 11)), 0.2, 9),  # ceil(11 x 0.8) = ceil(8.8) = 9
    (list(range(1, 11)), 0.5, 6),  # ceil(5.5) = 6
    (list(range(1, 11)), Fraction(3, 11), 8),  # exactly 11 x 8/11 = 8: float rounding must not pass it
    (list(range(1, 11)), 0.01, 10),  # below 1/11: the highest score
    (list(range(19, 0, -1)), 0.05, 19),  # ceil(20 x 0.95) = 19, given unsorted
    ([1, 2, 2, 2, 3], 0.5, 2),  # ties: the 3rd smallest
    ([1, 2, 2, 2, 3], 0.34, 2),  # ceil(6 x 0.66) = 4: still a 2
    ([1, 2, 2, 2, 3], 0.2, 3),  # ceil(4.8) = 5
    ([0.5] * 7, 0.3, 0.5),
])
def test_the_threshold_is_the_conformal_rank_of_the_calibration_scores(scores, level, expected) -> None:
    calibration = Calibration.of(scores)
    assert calibration.threshold(float(level)) == expected == by_hand(scores, level)
    assert OperatingPoint(float(level), calibration).threshold() == expected


@given(st.lists(st.integers(0, 6), min_size=1, max_size=60),
       st.sampled_from([0.01, 0.05, 0.1, 0.2, 0.25, 0.5, 0.9]))
def test_the_threshold_agrees_with_the_rank_and_the_flags_with_the_p_values(values, level) -> None:
    calibration = Calibration.of([float(value) for value in values])  # few distinct values: many ties
    threshold = calibration.threshold(level)
    assert threshold == by_hand(values, max(level, 1 / (len(values) + 1)))
    probes = np.arange(-1.0, 8.0, 0.5)  # on every calibration value and between them
    p_values = calibration.p_values(probes)
    level_kept = max(level, calibration.lowest_rate)
    np.testing.assert_array_equal(probes > threshold, p_values <= level_kept + 1e-12)


def test_p_values_count_the_calibration_scores_at_or_above() -> None:
    calibration = Calibration.of([3.0, 1.0, 2.0, 2.0])  # sorted: 1, 2, 2, 3; n = 4
    assert calibration.scores == (1.0, 2.0, 2.0, 3.0) and calibration.n == 4
    probes = [0.0, 1.0, 2.0, 2.5, 3.0, 5.0]
    expected = [5 / 5, 5 / 5, 4 / 5, 2 / 5, 2 / 5, 1 / 5]  # (1 + #{scores >= probe}) / (n + 1)
    np.testing.assert_array_equal(calibration.p_values(probes), expected)
    assert [calibration.p_value(probe) for probe in probes] == expected
    assert calibration.lowest_rate == 1 / 5


DISTRIBUTIONS = {
    "normal": lambda rng, shape: rng.normal(size=shape),
    "exponential": lambda rng, shape: rng.exponential(size=shape),
    "heavy-tailed": lambda rng, shape: rng.standard_t(2, size=shape),
}


@settings(max_examples=25, deadline=None, derandomize=True)
@given(n=st.integers(19, 150), target=st.sampled_from([0.05, 0.1, 0.2]), seed=st.integers(0, 2**32 - 1),
       distribution=st.sampled_from(sorted(DISTRIBUTIONS)))
def test_fresh_normals_are_flagged_at_most_at_the_target_rate(n, target, seed, distribution) -> None:
    """Exchangeable continuous scores: over many calibration draws the flag rate of fresh normals
    is at most the target (and, the rank being the tightest, at least target - 1/(n + 1))."""
    rng = np.random.default_rng(seed)
    draws, fresh = 300, 40
    draw = DISTRIBUTIONS[distribution]
    calibrations, normals = draw(rng, (draws, n)), draw(rng, (draws, fresh))
    rates = [float((normal > OperatingPoint(target, Calibration.of(scores)).threshold()).mean())
             for scores, normal in zip(calibrations, normals)]
    tolerance = 0.02  # the average's standard error is below 0.005 here
    assert np.mean(rates) <= target + tolerance
    assert np.mean(rates) >= target - 1 / (n + 1) - tolerance


@settings(max_examples=6, deadline=None, derandomize=True)
@given(cells=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_normal_slides_are_flagged_at_most_at_the_target_rate(cells, seed) -> None:
    """Bonferroni over a slide's cells keeps the slide rate, not each cell's, at the target."""
    rng = np.random.default_rng(seed)
    target, draws, slides = 0.1, 150, 30
    n = math.ceil(cells / target)  # enough to resolve target / cells
    flagged = []
    for _ in range(draws):
        point = OperatingPoint(target, Calibration.of(rng.normal(size=n)))
        assert point.shortfall(cells) is None
        flagged += [any(point.decide(list(slide)).flagged) for slide in rng.normal(size=(slides, cells))]
    assert np.mean(flagged) <= target + 0.02


def test_a_slide_is_flagged_when_its_least_likely_cell_passes_target_over_cells() -> None:
    point = OperatingPoint(0.1, Calibration.of(np.arange(100.0)))  # n = 100; 4 cells: each at 0.025
    decision = point.decide([99.5, 98.5, 97.5, 10.0])

    assert decision.cell_level == pytest.approx(0.025)
    assert decision.p_values == pytest.approx((1 / 101, 2 / 101, 3 / 101, 91 / 101))
    assert decision.flagged == (True, True, False, False)  # 3/101 = 0.0297 > 0.025
    assert all(flag == (p <= 0.1 / 4) for flag, p in zip(decision.flagged, decision.p_values))
    assert all(flag == (score > decision.threshold) for flag, score in zip(decision.flagged, [99.5, 98.5, 97.5, 10]))
    assert decision.threshold == 98.0  # ceil(101 x 0.975) = 99: the 99th smallest
    assert decision.p_value == pytest.approx(4 / 101)  # min(1, cells x smallest p)
    assert decision.supported and decision.kept_rate <= 0.1

    unflagged = point.decide([97.5, 10.0, 10.0, 10.0])
    assert not any(unflagged.flagged)
    assert unflagged.p_value == pytest.approx(12 / 101) and unflagged.p_value > 0.1
    assert point.decide([1.0, 2.0, 3.0, 4.0]).p_value == 1.0  # capped at 1
    single = point.decide([97.5])  # one cell: judged at the target itself
    assert single.cell_level == 0.1 and single.flagged == (True,) and single.p_value == pytest.approx(3 / 101)


def test_a_too_small_calibration_says_so_and_flags_at_the_best_level_it_resolves() -> None:
    point = OperatingPoint(0.05, Calibration.of(np.arange(10.0)))  # 1/11 > 5 %
    shortfall = point.shortfall()

    assert shortfall is not None
    assert "10 calibration normals" in shortfall and "5 %" in shortfall and "a single cell" in shortfall
    assert "at least 19" in shortfall and "9.09 %" in shortfall  # the lowest rate: 1/11
    assert point.minimum_calibration() == 19
    assert point.kept_rate() == pytest.approx(1 / 11) and point.kept_rate() > point.target_fpr
    assert point.threshold() == 9.0  # the highest score: a cell above every calibration normal
    decision = point.decide([9.5])
    assert decision.flagged == (True,) and not decision.supported and decision.kept_rate == pytest.approx(1 / 11)
    assert point.decide([9.0]).flagged == (False,)


@pytest.mark.parametrize("n, supported", [(78, False), (79, True)])
def test_slides_of_several_cells_need_cells_over_target_calibration_normals(n, supported) -> None:
    point = OperatingPoint(0.05, Calibration.of(np.arange(float(n))))
    assert point.minimum_calibration(4) == 79  # n + 1 >= 4 / 0.05
    shortfall = point.shortfall(4)
    assert (shortfall is None) == supported == point.decide([0.0] * 4).supported
    if supported:
        assert point.kept_rate(4) == pytest.approx(0.05)
    else:
        assert point.kept_rate(4) == pytest.approx(4 / 79) and point.kept_rate(4) > 0.05
        assert f"{n} calibration normals" in shortfall and "slides of 4 cells" in shortfall
        assert "at least 79" in shortfall and percent(4 / 79) in shortfall


def test_bad_calibrations_and_rates_are_refused() -> None:
    with pytest.raises(CalibrationError, match="at least one"):
        Calibration.of([])
    with pytest.raises(CalibrationError, match="finite"):
        Calibration.of([0.1, float("nan")])
    with pytest.raises(CalibrationError, match="finite"):
        Calibration.of([0.1, float("inf")])
    for rate in (0.0, 1.0, -0.1, 1.5, True):
        with pytest.raises(CalibrationError, match="strictly between 0 and 1"):
            OperatingPoint(rate, Calibration.of([0.1]))
    with pytest.raises(CalibrationError, match="at least one cell"):
        OperatingPoint(0.05, Calibration.of([0.1])).decide([])


def _share(words: str) -> float:
    """The share of the calibration normals a sentence says the cell is more unusual than."""
    if words.startswith("no more unusual"):
        return 0.0
    if " all " in words:
        return 100.0
    return float(re.search(r"more unusual than (\d+) % of", words).group(1))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 19, 99, 100, 150, 1000])
def test_the_words_for_a_p_value_never_overstate_it(n) -> None:
    for at_or_above in range(n + 1):
        p_value = (1 + at_or_above) / (n + 1)
        words = p_value_words(p_value, n)
        true_share = 100 * (n - at_or_above) / n  # calibration normals scoring below the cell
        assert _share(words) <= true_share, words
        assert true_share - _share(words) < 1 or at_or_above == n, words  # rounded down, by less than 1 %
        assert f"{n} normal cells" in words or at_or_above == n


def test_the_words_for_a_p_value_read_as_a_technician_reads_them() -> None:
    assert p_value_words(1 / 151, 150) == "more unusual than all 150 normal cells this model was calibrated on"
    assert p_value_words(3 / 151, 150) == "more unusual than 98 % of the 150 normal cells this model was calibrated on"
    assert p_value_words(2 / 1001, 1000) == ("more unusual than 99 % of the 1000 normal cells this model was "
                                             "calibrated on")  # 99.9 % rounds down
    assert p_value_words(1.0, 150) == "no more unusual than the normal cells this model was calibrated on"
    words = p_value_words(3 / 151, 150, "normal slides")
    assert words.endswith("of the 150 normal slides this model was calibrated on")


def test_percent() -> None:
    assert [percent(rate) for rate in (0.05, 0.005, 0.125, 1 / 11, 1.0)] == ["5 %", "0.5 %", "12.5 %", "9.09 %",
                                                                            "100 %"]


def test_the_calibration_count_holds_out_at_least_20_when_half_the_normals_allow() -> None:
    for n in range(300):
        count = calibration_count(n)
        assert 0 <= count <= max(0, n - 4)  # at least 4 stay for training (and validation)
        if n >= 2 * MIN_CALIBRATION:
            assert count == max(MIN_CALIBRATION, round(n / 4))
        elif n >= 8:
            assert count == n // 2  # never more than half: the other half trains
    assert [calibration_count(n) for n in (10, 30, 40, 96, 120)] == [5, 15, 20, 24, 30]


@pytest.mark.parametrize("n", [0, 3, 10, 24, 50, 120])
def test_the_calibration_split_is_seeded_disjoint_and_covers_every_normal(n) -> None:
    normals = [f"normal-{index}" for index in range(n)]
    rest, held = split_calibration(normals, seed=3)

    assert (rest, held) == split_calibration(normals, seed=3)
    assert not set(rest) & set(held) and sorted(rest + held) == sorted(normals)
    assert rest == [item for item in normals if item in rest] and held == [item for item in normals if item in held]
    assert len(held) == calibration_count(n)
    if n >= 40:
        assert len(held) >= 20
        assert split_calibration(normals, seed=4)[1] != held
