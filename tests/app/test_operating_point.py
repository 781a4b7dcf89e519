"""The operating point in the window: the rate in force in the status bar, a dialog to change it
(a reason is required; audited; applies to slides scored from now on), and the drift alarm."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from ganad_clinic.screening.drift import DriftState
from ganad_clinic.store import DRIFT_ALARM_CLEARED, DRIFT_ALARM_RAISED

ALARM = DriftState(True, 41, 200, 0.1, 1e-7, "41 of the last 200 slides looked unusual; about 20 expected")
CLEARED = DriftState(False, 22, 200, 0.1, 0.3, "22 of the last 200 slides looked unusual, as expected")


def test_the_status_bar_says_the_operating_point_and_the_dialog_changes_it(make_window, store, model, qtbot):
    window = make_window()
    assert window.operating_label.text() == "Operating point: at most 5 % of normal slides flagged"
    assert window.operating_label.toolTip() == ("Operating point: at most 5 % of normal slides flagged (the model's "
                                               "training target)")
    dialog = window.open_operating_point()
    assert dialog.rate.value() == 5.0
    assert not dialog.save_button.isEnabled()  # a reason is required
    dialog.rate.setValue(2.0)
    dialog.reason.setText("the lab's own validation, December")

    with qtbot.waitSignal(dialog.changed, timeout=10_000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    setting = store.target_fpr_setting()
    assert setting.target_fpr == pytest.approx(0.02)
    assert (setting.actor, setting.reason) == ("drtest", "the lab's own validation, December")
    assert window.operating_label.toolTip().startswith("Operating point: at most 2 % of normal slides flagged "
                                                    "(set by drtest, ")
    assert window.notice.isVisible()
    assert "applies to slides scored from now on" in window.notice.text()
    assert "stay as they were" in window.notice.text()
    window.notice.accept()


def test_a_drift_alarm_stays_in_the_status_bar_until_a_cleared_state_comes(make_window, qtbot):
    window = make_window()
    assert window.drift_label.isHidden()

    window.controller.drift_changed.emit(ALARM)
    assert window.drift_label.isVisible()
    assert window.drift_label.text() == "Drift alarm: 41 of the last 200 slides look unusual (point here for why)"
    assert ALARM.message in window.drift_label.toolTip() and "binomial p = 1e-07" in window.drift_label.toolTip()
    window.controller.drift_changed.emit(ALARM)  # the alarm stands while the service says so
    assert window.drift_label.isVisible()

    window.controller.drift_changed.emit(CLEARED)
    assert window.drift_label.isHidden()
    assert window.statusBar().currentMessage() == f"Drift alarm cleared: {CLEARED.message}"


def test_a_drift_alarm_recorded_by_another_station_is_shown_until_it_is_cleared(make_window, store, model, qtbot):
    store.audit("station-2", DRIFT_ALARM_RAISED, {"model_version": model.version, **ALARM.to_dict()})
    window = make_window()
    qtbot.waitUntil(window.drift_label.isVisible, timeout=10_000)
    assert ALARM.message in window.drift_label.toolTip()

    store.audit("station-2", DRIFT_ALARM_CLEARED, {"model_version": model.version, **CLEARED.to_dict()})
    window.refresh()
    qtbot.waitUntil(window.drift_label.isHidden, timeout=10_000)
    assert window.statusBar().currentMessage() == f"Drift alarm cleared: {CLEARED.message}"
