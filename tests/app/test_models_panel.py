from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from ganad_clinic.app.models_panel import ModelsPanel
from ganad_clinic.screening.registry import import_bundle
from tests.app.builders import perturbed_copy


def test_activation_and_rollback(qtbot, store, model, home, settings, app_bundle: Path, tmp_path: Path):
    other = import_bundle(store, perturbed_copy(app_bundle, tmp_path / "other"), home, actor="tester").model
    panel = ModelsPanel(store, home, settings)
    qtbot.addWidget(panel)
    assert panel.table.rowCount() == 2
    assert panel.table.item(0, 1).text() == "active"

    panel.table.selectRow(1)
    with qtbot.waitSignal(panel.active_changed):
        qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == other.version
    assert panel.table.item(1, 1).text() == "active"

    with qtbot.waitSignal(panel.active_changed):
        qtbot.mouseClick(panel.rollback_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == model.version
    assert panel.table.item(0, 1).text() == "active"
    assert [event.actor for event in store.list_audit_events("model.rolled_back")] == ["Dr Test"]


def test_the_main_window_follows_a_new_active_model(make_window, store, model, home, app_bundle: Path,
                                                   tmp_path: Path, qtbot):
    other = import_bundle(store, perturbed_copy(app_bundle, tmp_path / "other"), home, actor="tester").model
    window = make_window()
    dialog = window.open_models()
    dialog.panel.select_version(other.version)
    dialog.panel.activate_selected()
    assert window.model_label.text() == f"Model {other.version}"
