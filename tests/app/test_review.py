"""Reviewing in the main window: by keyboard, append-only, on the slide on screen only (a press
that comes before its picture is ignored), undone by a withdrawal, notes that stay with their
slide, and keys that act on the slides after the filter and the search box were used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from ganad_clinic.app.main_window import REVIEW_DWELL_S
from ganad_clinic.app.slide_table_model import QueueFilter
from ganad_clinic.store import ReviewDecision
from tests.app.builders import add_scored_slide, write_cells


def _queue(store, model, folder: Path, scores=(3.0, 2.0, 0.5)) -> list[int]:
    return [add_scored_slide(store, model.id, path, score).id
            for path, score in zip(write_cells(folder, len(scores)), scores)]


def _on_screen(window, qtbot, slide_id: int) -> None:
    """Wait until the slide's picture has been in view long enough for a review key to count."""
    qtbot.waitUntil(lambda: window.viewer.summary is not None and window.viewer.summary.slide.id == slide_id
                    and (window.viewer.seconds_on_screen() or 0.0) >= REVIEW_DWELL_S, timeout=30_000)


def _key(window, qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key pressed wherever the keyboard is in the window."""
    qtbot.keyClick(QApplication.focusWidget() or window, key, modifier)


def test_a_review_by_keyboard_is_stored_with_reviewer_and_time(make_window, store, model, tmp_path: Path, qtbot):
    first, second, _ = _queue(store, model, tmp_path / "slides")
    window = make_window()
    assert window.queue.current_summary().slide.id == first  # highest score first
    before = datetime.now(UTC)

    window.review_panel.note.setText("blast-like nucleus")
    _on_screen(window, qtbot, first)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)

    review = store.current_review(first)
    assert review.decision is ReviewDecision.ANOMALY_CONFIRMED
    assert review.reviewer == "drtest"
    assert review.note == "blast-like nucleus"
    assert before - timedelta(seconds=1) <= review.created_at <= datetime.now(UTC)
    [event] = store.list_audit_events("review.added")
    assert event.actor == "drtest" and event.details["slide_id"] == first
    assert window.queue.current_summary().slide.id == second  # on to the next slide awaiting review
    assert window.statusBar().currentMessage().startswith("Reviewed cell-normal-000.png: anomaly confirmed (drtest)")

    _on_screen(window, qtbot, second)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert store.current_review(second).decision is ReviewDecision.NORMAL


def test_a_double_press_reviews_one_slide_never_the_next_one_unseen(make_window, store, model, tmp_path: Path,
                                                                    qtbot):
    first, second, _ = _queue(store, model, tmp_path / "slides")
    window = make_window()
    _on_screen(window, qtbot, first)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)  # at once: the next slide is not on screen yet
    assert store.current_review(first).decision is ReviewDecision.ANOMALY_CONFIRMED
    assert store.current_review(second) is None
    assert len(store.list_audit_events("review.added")) == 1
    assert window.statusBar().currentMessage().startswith("Not reviewed: cell-normal-001.png is not on screen yet")

    _on_screen(window, qtbot, second)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)  # once it has been in view, a press counts
    assert store.current_review(second).decision is ReviewDecision.NORMAL


def test_undo_withdraws_the_last_review_and_goes_back_to_its_slide(make_window, store, model, tmp_path: Path,
                                                                   qtbot):
    first, second, _ = _queue(store, model, tmp_path / "slides")
    window = make_window()
    _on_screen(window, qtbot, first)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert window.queue.current_summary().slide.id == second
    awaiting = window.table_model.awaiting_count

    qtbot.keyClick(window.queue.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.queue.current_summary().slide.id == first  # back to the slide
    assert store.current_review(first) is None  # awaiting review again
    [withdrawal] = store.list_audit_events("review.withdrawn")
    [added] = store.list_audit_events("review.added")
    assert withdrawal.details["withdraws"] == added.details["review_id"] and withdrawal.actor == "drtest"
    assert window.table_model.awaiting_count == awaiting + 1
    assert "Withdrawn: the review of cell-normal-000.png (normal)" in window.statusBar().currentMessage()

    qtbot.keyClick(window.queue.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.statusBar().currentMessage().startswith("No review to undo")
    assert len(store.list_audit_events("review.withdrawn")) == 1
    _on_screen(window, qtbot, first)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)  # reviewed again, as a new row
    assert store.current_review(first).decision is ReviewDecision.ANOMALY_CONFIRMED


def test_a_note_stays_with_its_slide_and_never_lands_on_another(make_window, store, model, tmp_path: Path, qtbot):
    first, second, _ = _queue(store, model, tmp_path / "slides")
    window = make_window()
    window.review_panel.note.setFocus()
    qtbot.keyClicks(window.review_panel.note, "nucleoli?")
    window.queue.select_slide(second)  # another slide chosen with a note unsaved
    assert window.review_panel.note.text() == ""
    _on_screen(window, qtbot, second)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert store.current_review(second).note == ""

    window.queue.select_slide(first)
    assert window.review_panel.note.text() == "nucleoli?"  # back with its slide
    _on_screen(window, qtbot, first)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)
    assert store.current_review(first).note == "nucleoli?"


def test_the_note_field_types_letters_reviews_with_alt_keys_and_leaves_with_esc(make_window, store, model,
                                                                                tmp_path: Path, qtbot):
    first, second, third = _queue(store, model, tmp_path / "slides")
    window = make_window()
    _on_screen(window, qtbot, first)
    window.review_panel.note.setFocus()
    qtbot.keyClicks(window.review_panel.note, "an")  # A and N type here: no review
    assert window.review_panel.note.text() == "an" and store.current_review(first) is None
    qtbot.keyClick(window.review_panel.note, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    assert store.current_review(first).decision is ReviewDecision.ANOMALY_CONFIRMED
    assert store.current_review(first).note == "an"

    _on_screen(window, qtbot, second)
    window.review_panel.note.setFocus()
    qtbot.keyClicks(window.review_panel.note, "pale")
    qtbot.keyClick(window.review_panel.note, Qt.Key.Key_Escape)
    assert window.queue.table.hasFocus() and window.review_panel.note.text() == "pale"
    _key(window, qtbot, Qt.Key.Key_S)
    assert store.current_review(second).decision is ReviewDecision.SECOND_READ
    assert store.current_review(second).note == "pale"


def test_review_keys_act_on_the_slides_after_the_filter_and_the_search_box(make_window, store, model,
                                                                           tmp_path: Path, qtbot):
    first, second, third = _queue(store, model, tmp_path / "slides")  # scores 3.0, 2.0, 0.5: two flagged
    window = make_window()
    queue = window.queue
    queue.filter.setFocus()
    queue.filter.setCurrentIndex(queue.filter.findData(QueueFilter.FLAGGED))
    queue.filter.activated.emit(queue.filter.currentIndex())  # chosen from the list, as a click does
    assert queue.table.hasFocus()
    _on_screen(window, qtbot, first)
    _key(window, qtbot, Qt.Key.Key_N)
    assert store.current_review(first).decision is ReviewDecision.NORMAL

    queue.search.setFocus()
    qtbot.keyClicks(queue.search, "002")  # only the unflagged third slide matches: none in this view
    assert queue.current_summary() is None and window.viewer.summary is None
    _key(window, qtbot, Qt.Key.Key_Escape)
    assert queue.table.hasFocus()
    _key(window, qtbot, Qt.Key.Key_A)  # nothing on screen: nothing reviewed
    assert store.current_review(third) is None and len(store.list_audit_events("review.added")) == 1

    queue.search.setFocus()
    queue.search.clear()
    next(action for action in queue.search.findChildren(type(window.undo_action))).trigger()  # the clear button
    assert queue.table.hasFocus()
    _key(window, qtbot, Qt.Key.Key_J)  # J moves through the slides, it does not type into the search box
    assert queue.search.text() == ""
    assert queue.current_summary() is not None


def test_reviews_are_appended_never_overwritten(make_window, store, model, tmp_path: Path, qtbot):
    [slide] = _queue(store, model, tmp_path / "slides", scores=(3.0,))
    window = make_window()
    _on_screen(window, qtbot, slide)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert window.queue.current_summary().slide.id == slide  # the only slide stays on screen
    qtbot.keyClick(window.queue.table, Qt.Key.Key_A)  # a change of mind is a new review

    events = store.list_audit_events("review.added")
    assert [event.details["decision"] for event in events] == ["normal", "anomaly_confirmed"]
    assert store.current_review(slide).decision is ReviewDecision.ANOMALY_CONFIRMED


def test_who_asked_for_a_second_read_does_not_give_it(make_window, store, model, tmp_path: Path, qtbot):
    [slide] = _queue(store, model, tmp_path / "slides", scores=(3.0,))
    window = make_window()
    _on_screen(window, qtbot, slide)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_S)  # second read: the slide still awaits review
    assert window.queue.current_summary().slide.id == slide
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)

    assert window.statusBar().currentMessage().startswith(
        "Not reviewed: you asked for a second read of cell-normal-000.png; another reviewer gives it")
    assert [event.details["decision"] for event in store.list_audit_events("review.added")] == ["second_read"]
    store.add_review(slide, "drother", ReviewDecision.NORMAL)  # another reviewer, at another station
    assert store.current_review(slide).decision is ReviewDecision.NORMAL


def test_next_and_previous_slide_awaiting_review(make_window, store, model, tmp_path: Path, qtbot):
    first, second, third = _queue(store, model, tmp_path / "slides")
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.AWAITING)  # the third is not flagged: not in the default worklist
    qtbot.keyClick(window.queue.table, Qt.Key.Key_J)
    assert window.queue.current_summary().slide.id == second
    qtbot.keyClick(window.queue.table, Qt.Key.Key_J)
    assert window.queue.current_summary().slide.id == third
    qtbot.keyClick(window.queue.table, Qt.Key.Key_K)
    assert window.queue.current_summary().slide.id == second


def test_reviews_are_the_signed_in_users_and_a_disabled_one_cannot_review(make_window, store, model, user,
                                                                            tmp_path: Path, qtbot):
    [first, second, _] = _queue(store, model, tmp_path / "slides")
    window = make_window()
    assert "Dr Test" in window.windowTitle() and "Dr Test" in window.review_panel.reviewer.text()
    _on_screen(window, qtbot, first)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert {event.actor for event in store.list_audit_events("review.added")} == {user.name}
    assert store.current_review(first).reviewer == user.name

    window.user.disabled = True  # as the admin's `ganad users disable` leaves it
    _on_screen(window, qtbot, second)
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert store.current_review(second) is None
    assert "may not review" in window.statusBar().currentMessage()



def test_ctrl_f_goes_to_the_search_box_and_tab_leaves_the_table(make_window, store, model, tmp_path: Path, qtbot):
    _queue(store, model, tmp_path / "slides")
    window = make_window()
    window.queue.table.setFocus()
    qtbot.keyClick(window.queue.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.queue.search
    qtbot.keyClick(window.queue.search, Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is window.queue.table
    qtbot.keyClick(window.queue.table, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is not window.queue.table


def test_reviewing_from_the_note_gives_the_keyboard_back_to_the_slides(make_window, store, model, tmp_path: Path,
                                                                       qtbot):
    first, second, _ = _queue(store, model, tmp_path / "slides")
    window = make_window()
    _on_screen(window, qtbot, first)
    window.review_panel.note.setFocus()
    qtbot.keyClicks(window.review_panel.note, "odd nucleus")
    qtbot.keyClick(window.review_panel.note, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    assert store.current_review(first).note == "odd nucleus"
    assert QApplication.focusWidget() is window.queue.table
