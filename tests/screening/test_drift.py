"""The drift alarm: silent on normal slides, raised on a stain shift within its window, cleared
when the slides are normal again or another model scores; the service audits and reports it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad_clinic.cli.watch import _print_drift
from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.conformal import Calibration
from ganad_clinic.screening import ServiceConfig
from ganad_clinic.screening.drift import (
    ALARM_ALPHA,
    WINDOW,
    DriftMonitor,
    DriftState,
)
from ganad_clinic.store import DRIFT_ALARM_CLEARED, DRIFT_ALARM_RAISED
from tests.screening.helpers import TINY_CROP, Collector, nudged_model, screening, wait_until

CALIBRATION_N = 150


def slide_scores(rng: np.random.Generator, slides: int, shift: float = 0.0) -> list[np.ndarray]:
    """Cell scores of `slides` slides of 1 to 6 cells: a slide effect its cells share (stain, focus)
    plus each cell's own, moved by `shift` (a stain change)."""
    return [rng.normal(0.0, 0.6) + rng.normal(0.0, 0.8, rng.integers(1, 7)) + shift for _ in range(slides)]


def calibration(rng: np.random.Generator, n: int = CALIBRATION_N) -> Calibration:
    """Calibration normals as training keeps them: crops, one cell of its own slide each."""
    return Calibration.of([scores[0] for scores in slide_scores(rng, n)])


def states(monitor: DriftMonitor, cal: Calibration, slides: list[np.ndarray]) -> list[tuple[int, DriftState]]:
    """The changes of the alarm, each with the number of the slide (from 1) that caused it."""
    changes = []
    for number, scores in enumerate(slides, start=1):
        state = monitor.observe(cal.p_values(scores).tolist())
        if state is not None:
            changes.append((number, state))
    return changes


@pytest.mark.parametrize("seed", range(5))
def test_a_thousand_normal_slides_raise_no_alarm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cal = calibration(rng)
    assert states(DriftMonitor(cal.n), cal, slide_scores(rng, 1000)) == []


def test_a_small_calibration_is_tested_against_the_highest_rate_it_may_have() -> None:
    small, large = DriftMonitor(12), DriftMonitor(CALIBRATION_N)
    assert small.level == pytest.approx(1 / 13)  # the lowest p-value 12 normals give
    assert small.expected_rate > 0.4  # Beta(1, 12): its true rate may be far above 1/13
    assert large.level == pytest.approx(15 / 151) and 0.15 < large.expected_rate < 0.2
    rng = np.random.default_rng(7)
    for _ in range(10):  # however the 12 normals fell, 1,000 normal slides stay quiet
        cal = calibration(rng, 12)
        assert [state for _, state in states(DriftMonitor(12), cal, slide_scores(rng, 1000)) if state.alarm] == []


def test_a_stain_shift_raises_the_alarm_within_the_window_and_it_clears_afterwards() -> None:
    rng = np.random.default_rng(11)
    cal = calibration(rng)
    monitor = DriftMonitor(cal.n)
    normal, shifted, normal_again = slide_scores(rng, 300), slide_scores(rng, WINDOW, 1.5), slide_scores(rng, 600)
    changes = states(monitor, cal, normal + shifted + normal_again)

    (raised_at, raised), (cleared_at, cleared) = changes
    assert 300 < raised_at <= 300 + WINDOW // 2  # the window held 300 normal slides before
    assert raised.alarm and raised.p_value < ALARM_ALPHA and raised.window == WINDOW
    assert raised.exceeding / raised.window > raised.expected_rate == monitor.expected_rate
    assert raised.message.startswith("drift alarm: ") and "worth a look" in raised.message
    assert f"of the {CALIBRATION_N} normal cells" in raised.message
    assert 500 < cleared_at < 500 + WINDOW  # once the shifted slides have mostly left the window
    assert not cleared.alarm and cleared.p_value >= monitor.clear_alpha
    assert cleared.message.startswith("drift alarm cleared: ")
    assert not monitor.alarm


def test_a_monitor_replaced_by_another_models_clears_a_raised_alarm() -> None:
    rng = np.random.default_rng(3)
    cal = calibration(rng)
    quiet, raised = DriftMonitor(cal.n), DriftMonitor(cal.n)
    assert quiet.end("model 2 now scores") is None
    assert states(raised, cal, slide_scores(rng, 60, 3.0))[0][1].alarm
    ended = raised.end("model 2 now scores")
    assert ended is not None and not ended.alarm and ended.message == "drift alarm cleared: model 2 now scores"
    assert raised.end("model 3 now scores") is None


def test_bad_settings_and_a_slide_without_cells_are_refused() -> None:
    with pytest.raises(ValueError, match="calibration normal"):
        DriftMonitor(0)
    with pytest.raises(ValueError, match="alarm_alpha"):
        DriftMonitor(20, alarm_alpha=0.1, clear_alpha=0.01)
    with pytest.raises(ValueError, match="at least one cell"):
        DriftMonitor(20).observe([])


def test_ganad_watch_prints_a_line_when_the_alarm_changes(capsys: pytest.CaptureFixture) -> None:
    _print_drift(DriftState(True, 40, 200, 0.19, 1e-6, "drift alarm: 40 of the last 200 slides ..."))
    _print_drift(DriftState(False, 20, 200, 0.19, 0.4, "drift alarm cleared: 20 of the last 200 slides ..."))
    assert capsys.readouterr().out.splitlines() == ["DRIFT     drift alarm: 40 of the last 200 slides ...",
                                                    "drift ok  drift alarm cleared: 20 of the last 200 slides ..."]


def test_stain_shifted_slides_raise_the_services_alarm_audited_and_another_model_clears_it(
        tiny_bundle: Path, inbox: Path, home: Path, tmp_path: Path) -> None:
    for index in range(30):  # far darker than the tiny model's 12 calibration normals
        image = generate_cell(crop_rng(9, False, index), False, TINY_CROP, stain_shift=2.0)
        Image.fromarray(image).save(inbox / f"shifted-{index:02d}.png")
    drift: list[DriftState] = []
    config = ServiceConfig((inbox,), home=home, quiet_seconds=0.1, torch_threads=1)
    with screening(tiny_bundle, config, Collector(), on_drift=drift.append) as service:
        assert service.wait_until_idle(60)
        wait_until(lambda: len(drift) == 1)
        (raised,) = drift
        assert raised.alarm and raised.window <= 30 and raised.p_value < ALARM_ALPHA
        (event,) = service.store.list_audit_events(DRIFT_ALARM_RAISED)
        version = service.store.active_model_version()
        assert event.details["model_version"] == version.version
        assert event.details["exceeding"] == raised.exceeding and event.details["message"] == raised.message

        other = nudged_model(service.store, tiny_bundle, home, tmp_path)
        service.store.activate_model_version(other.version, actor="tester")
        Image.fromarray(generate_cell(crop_rng(9, False, 99), False, TINY_CROP)).save(inbox / "after.png")
        wait_until(lambda: len(drift) == 2)
        assert not drift[1].alarm and f"model {other.version} now scores" in drift[1].message
        (cleared,) = service.store.list_audit_events(DRIFT_ALARM_CLEARED)
        assert cleared.details["model_version"] == version.version
