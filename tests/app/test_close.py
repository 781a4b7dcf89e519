from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from tests.app.builders import reviewed_slides

TIMEOUT_MS = 90_000


def _start_long_retrain(window, qtbot):
    dialog = window.open_retrain()
    qtbot.waitUntil(lambda: not dialog.gathering, timeout=TIMEOUT_MS)  # the samples are gathered on a worker
    dialog.steps.setValue(100_000)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.value() >= 1, timeout=TIMEOUT_MS)
    return dialog


def test_closing_during_a_retrain_asks_then_stops_the_worker(make_window, store, model, tmp_path: Path, qtbot,
                                                             monkeypatch):
    reviewed_slides(store, model.id, tmp_path / "slides", normals=5, anomalies=0)
    window = make_window()
    dialog = _start_long_retrain(window, qtbot)
    questions = []

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: questions.append(args[2])
                        or QMessageBox.StandardButton.No)
    window.close()
    assert window.isVisible() and dialog.running  # "No": nothing stops

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: questions.append(args[2])
                        or QMessageBox.StandardButton.Yes)
    window.close()

    assert not window.isVisible()
    assert "retraining" in questions[0]
    assert dialog.runner.worker_thread.isFinished()
    assert not window.controller.busy
    assert not window.inspector.worker_thread.isRunning()
    assert [m.version for m in store.list_model_versions()] == [model.version]


def test_closing_when_idle_does_not_ask(make_window, model, qtbot, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("closing an idle window must not ask")

    window = make_window()
    monkeypatch.setattr(QMessageBox, "question", refuse)
    window.close()
    assert not window.isVisible()
    assert not window.controller.busy
