from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ganad_clinic.app.retrain_dialog import RetrainDialog
from ganad_clinic.screening.acceptance import OVERRIDDEN
from tests.app.builders import reviewed_slides

TIMEOUT_MS = 90_000


@pytest.fixture
def open_dialog(qtbot, store, home, settings) -> Iterator[Callable[[], RetrainDialog]]:
    """Open the retrain dialog; it is held until the test's end, when its workers are stopped first.
    qtbot holds a widget weakly: a dialog dropped with the test's locals while a worker was still
    winding down (the activation's, on a busy machine) took its running thread with it (Qt aborts)."""
    dialogs: list[RetrainDialog] = []

    def make() -> RetrainDialog:
        dialog = RetrainDialog(store, home, settings)
        qtbot.addWidget(dialog, before_close_func=lambda widget: widget.stop_work())
        dialogs.append(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: not dialog.gathering, timeout=TIMEOUT_MS)  # the samples are gathered on a worker
        return dialog

    yield make
    for dialog in dialogs:
        assert dialog.stop_work()


def test_a_retrain_runs_to_the_end_and_the_candidate_is_activated_through_its_check(qtbot, store, model, open_dialog,
                                                                                    tmp_path: Path, monkeypatch):
    reviewed_slides(store, model.id, tmp_path / "slides", normals=6, anomalies=2)
    dialog = open_dialog()
    assert "6 slides reviewed as normal" in dialog.data_summary.text()
    assert dialog.steps.value() == 4  # the active model's recorded budget

    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.candidate is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)

    candidate = dialog.candidate
    assert candidate.model.version == "1.1.0" and not candidate.model.active
    assert store.active_model_version().version == model.version  # nothing changes until the user says so
    assert dialog.progress.value() == dialog.progress.maximum()
    assert len(dialog.plot.steps) == 4
    assert (f"rest on {candidate.n_val_normal} normal and {candidate.n_val_anomalous} anomalous slides"
            in dialog.result_note.text())
    shown = dialog.acceptance.text.text()  # the check the retrain ran, not a comparison on its validation slides
    assert f"Acceptance check of model 1.1.0 against the active model {model.version}" in shown
    assert "Verdict: refused" in shown and "too little evidence" in shown

    asked: list[tuple[str, ...]] = []
    monkeypatch.setattr(dialog.acceptance, "ask_override", lambda refusals: asked.append(refusals))
    qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    assert asked == [candidate.check.refusals]  # refused as on the command line; no reason, no activation
    assert store.active_model_version().version == model.version

    monkeypatch.setattr(dialog.acceptance, "ask_override", lambda refusals: "tried on the bench first")
    with qtbot.waitSignal(dialog.model_activated, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    assert store.active_model_version().version == "1.1.0"
    assert [event.actor for event in store.list_audit_events("model.activated")] == ["drtest"]
    [override] = store.list_audit_events(OVERRIDDEN)
    assert override.details["reason"] == "tried on the bench first"


def test_a_retrain_can_be_cancelled_and_leaves_nothing_behind(qtbot, store, model, home, open_dialog, tmp_path: Path):
    reviewed_slides(store, model.id, tmp_path / "slides", normals=5, anomalies=0)
    dialog = open_dialog()
    dialog.steps.setValue(100_000)

    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.progress.value() >= 1, timeout=TIMEOUT_MS)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)

    assert dialog.candidate is None
    assert "cancelled" in dialog.progress_label.text()
    assert [m.version for m in store.list_model_versions()] == [model.version]
    assert not any((home / "candidates").glob("*"))
    assert dialog.start_button.isEnabled()


def test_too_few_normal_samples_are_explained(qtbot, store, model, open_dialog, tmp_path: Path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warnings.append(text))
    reviewed_slides(store, model.id, tmp_path / "slides", normals=1, anomalies=0)
    dialog = open_dialog()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert "at least 5 normal samples" in warnings[0]
    assert not dialog.running
