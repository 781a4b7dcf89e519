"""The Models dialog: the registry with what each calibration keeps, a candidate's acceptance check
(figures with intervals and counts, the verdict), activation through it with the same refusals as
`ganad models activate` unless a reason overrides them, the acceptance report, roll back."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ganad_clinic.app.models_panel import CALIBRATION_COLUMN, ModelsPanel
from ganad_clinic.screening.acceptance import OVERRIDDEN, AcceptanceRefused, activate_checked
from ganad_clinic.screening.registry import import_bundle
from tests.app.builders import perturbed_copy, reviewed_slides

TIMEOUT_MS = 120_000
REASON = "validated by the lab on its own slides, 2026-12-01"


@pytest.fixture
def other(store, model, home, app_bundle: Path, tmp_path: Path):
    """A second registered model, not active: the candidate."""
    return import_bundle(store, perturbed_copy(app_bundle, tmp_path / "other"), home, actor="tester").model


def _panel(qtbot, store, home, settings) -> ModelsPanel:
    panel = ModelsPanel(store, home, settings)
    qtbot.addWidget(panel, before_close_func=lambda widget: widget.stop_work())  # its workers end first
    qtbot.waitUntil(lambda: not panel.reading and panel.table.rowCount() == len(store.list_model_versions()),
                    timeout=TIMEOUT_MS)
    return panel


def _checked(qtbot, panel: ModelsPanel, version: str):
    panel.select_version(version)
    qtbot.waitUntil(lambda: panel.acceptance.check is not None, timeout=TIMEOUT_MS)
    return panel.acceptance.check


def test_the_registry_says_the_operating_point_and_what_each_calibration_keeps(qtbot, store, model, home, settings):
    panel = _panel(qtbot, store, home, settings)
    assert panel.operating_point.text() == ("Operating point: at most 5 % of normal slides flagged (the model's "
                                            "training target)")
    kept = panel.table.item(0, CALIBRATION_COLUMN).text()
    assert kept.startswith("12 calibration normals cannot keep a false-positive rate of 5 % for a single cell")
    assert panel.active_calibration.text() == f"Active model {model.version}: {kept}."


def test_a_candidate_without_enough_evidence_is_refused_unless_a_reason_overrides(qtbot, store, model, other, home,
                                                                                  settings, monkeypatch):
    panel = _panel(qtbot, store, home, settings)
    check = _checked(qtbot, panel, other.version)
    assert not check.accepted
    shown = panel.acceptance.text.text()
    assert f"Acceptance check of model {other.version} against the active model {model.version}" in shown
    assert "Evidence: 0 normal and 0 confirmed anomalous slides" in shown
    assert "Verdict: refused" in shown and "Refused" in panel.acceptance.verdict.text()
    with pytest.raises(AcceptanceRefused) as refused:  # the command line's gate says the same
        activate_checked(store, other.version, actor="cli")
    assert refused.value.check.refusals == check.refusals

    asked: list[tuple[str, ...]] = []
    monkeypatch.setattr(panel.acceptance, "ask_override", lambda refusals: asked.append(refusals))  # no reason
    qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert asked == [check.refusals]
    assert store.active_model_version().version == model.version  # an empty reason is a no

    monkeypatch.setattr(panel.acceptance, "ask_override", lambda refusals: REASON)
    with qtbot.waitSignal(panel.active_changed, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == other.version
    [event] = store.list_audit_events(OVERRIDDEN)
    assert event.actor == "drtest" and event.details["reason"] == REASON
    assert event.details["refusals"] == list(check.refusals)
    qtbot.waitUntil(lambda: panel.table.item(1, 1).text() == "active", timeout=TIMEOUT_MS)

    monkeypatch.setattr(panel, "ask_rollback_reason", lambda: "")  # asked, and cancelled: nothing changes
    qtbot.mouseClick(panel.rollback_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == other.version and not store.list_audit_events("model.rolled_back")
    assert not panel.rollback_button.autoDefault()
    monkeypatch.setattr(panel, "ask_rollback_reason", lambda: "candidate flags too many fields")
    with qtbot.waitSignal(panel.active_changed):
        qtbot.mouseClick(panel.rollback_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == model.version
    [rolled_back] = store.list_audit_events("model.rolled_back")
    assert rolled_back.actor == "drtest" and rolled_back.details["reason"] == "candidate flags too many fields"


def test_a_candidate_with_enough_evidence_is_accepted_and_activated_without_asking(qtbot, store, model, home,
                                                                                   settings, app_bundle: Path,
                                                                                   tmp_path: Path, monkeypatch):
    same = perturbed_copy(app_bundle, tmp_path / "same", delta=0.0)  # scores as the active model does
    other = import_bundle(store, same, home, actor="tester").model
    reviewed_slides(store, model.id, tmp_path / "slides", normals=20, anomalies=5)
    panel = _panel(qtbot, store, home, settings)
    check = _checked(qtbot, panel, other.version)
    figures = check.candidate_figures
    assert (figures.n_normal, figures.n_anomalous) == (20, 5)
    shown = panel.acceptance.text.text()
    assert "Evidence: 20 normal and 5 confirmed anomalous slides" in shown
    assert figures.specificity.words() in shown  # the figure with its interval
    assert check.accepted, check.refusals
    assert "Accepted" in panel.acceptance.verdict.text()
    monkeypatch.setattr(panel.acceptance, "ask_override", lambda refusals: pytest.fail("asked for an override"))
    with qtbot.waitSignal(panel.active_changed, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == other.version
    assert store.list_audit_events(OVERRIDDEN) == []


def test_the_acceptance_report_is_exported_and_linked_from_the_registry(qtbot, store, model, other, home, settings,
                                                                       tmp_path: Path):
    panel = _panel(qtbot, store, home, settings)
    _checked(qtbot, panel, other.version)
    assert panel.acceptance.export_button.isEnabled()
    path = tmp_path / "out" / "acceptance.pdf"

    panel.acceptance.export_report(path)
    qtbot.waitUntil(lambda: not panel.acceptance.exporter.busy, timeout=TIMEOUT_MS)

    assert path.read_bytes().startswith(b"%PDF")
    [linked] = [entry for entry in store.list_model_versions() if entry.version == other.version]
    assert linked.acceptance_report == str(path)
    assert "linked from the model's registry entry" in panel.acceptance.message.text()


def test_the_main_window_follows_a_new_active_model(make_window, store, model, other, qtbot, monkeypatch):
    window = make_window()
    dialog = window.open_models()
    panel = dialog.panel
    qtbot.waitUntil(lambda: not panel.reading and panel.table.rowCount() == 2, timeout=TIMEOUT_MS)
    _checked(qtbot, panel, other.version)
    monkeypatch.setattr(panel.acceptance, "ask_override", lambda refusals: REASON)
    panel.activate_selected()
    qtbot.waitUntil(lambda: window.model_label.text() == f"Model {other.version}", timeout=TIMEOUT_MS)

    [close] = [button for button in dialog.findChildren(type(panel.rollback_button)) if button.text() == "Close"]
    qtbot.mouseClick(close, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
