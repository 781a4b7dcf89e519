from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog

from ganad_clinic.store import ReviewDecision
from tests.app.builders import add_scored_slide, write_cells


def _queue(store, model, folder: Path, scores=(3.0, 2.0, 0.5)) -> list[int]:
    return [add_scored_slide(store, model.id, path, score).id
            for path, score in zip(write_cells(folder, len(scores)), scores)]


def test_a_review_by_keyboard_is_stored_with_reviewer_and_time(make_window, store, model, tmp_path: Path, qtbot):
    first, second, _ = _queue(store, model, tmp_path / "slides")
    window = make_window()
    assert window.queue.current_summary().slide.id == first  # highest score first
    before = datetime.now(UTC)

    window.review_panel.note.setText("blast-like nucleus")
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)

    review = store.latest_review(first)
    assert review.decision is ReviewDecision.ANOMALY_CONFIRMED
    assert review.reviewer == "Dr Test"
    assert review.note == "blast-like nucleus"
    assert before - timedelta(seconds=1) <= review.created_at <= datetime.now(UTC)
    [event] = store.list_audit_events("review.added")
    assert event.actor == "Dr Test" and event.details["slide_id"] == first
    assert window.queue.current_summary().slide.id == second  # on to the next slide awaiting review

    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert store.latest_review(second).decision is ReviewDecision.NORMAL


def test_reviews_are_appended_never_overwritten(make_window, store, model, tmp_path: Path, qtbot):
    [slide] = _queue(store, model, tmp_path / "slides", scores=(3.0,))
    window = make_window()
    qtbot.keyClick(window.queue.table, Qt.Key.Key_S)  # second read: the slide still awaits review
    assert window.queue.current_summary().slide.id == slide
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)

    events = store.list_audit_events("review.added")
    assert [event.details["decision"] for event in events] == ["second_read", "normal"]
    assert store.latest_review(slide).decision is ReviewDecision.NORMAL


def test_next_and_previous_slide_awaiting_review(make_window, store, model, tmp_path: Path, qtbot):
    first, second, third = _queue(store, model, tmp_path / "slides")
    window = make_window()
    qtbot.keyClick(window.queue.table, Qt.Key.Key_J)
    assert window.queue.current_summary().slide.id == second
    qtbot.keyClick(window.queue.table, Qt.Key.Key_J)
    assert window.queue.current_summary().slide.id == third
    qtbot.keyClick(window.queue.table, Qt.Key.Key_K)
    assert window.queue.current_summary().slide.id == second


def test_the_reviewer_is_asked_once_and_remembered(make_window, store, model, settings, tmp_path: Path, qtbot,
                                                    monkeypatch):
    _queue(store, model, tmp_path / "slides")
    settings.reviewer = ""
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: asked.append(1) or ("Ana Lima", True))
    window = make_window()
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert len(asked) == 1
    assert settings.reviewer == "Ana Lima"
    assert {event.actor for event in store.list_audit_events("review.added")} == {"Ana Lima"}

