from __future__ import annotations

from pathlib import Path

from ganad_clinic.app.slide_table_model import FLAG, SCORE, QueueFilter
from ganad_clinic.store import SlideStatus
from tests.app.builders import add_scored_slide, write_cells

TIMEOUT_MS = 60_000


def test_the_queue_fills_as_files_arrive_in_a_watched_folder(make_window, model, settings, tmp_path: Path, qtbot):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings.watched_folders = [inbox]
    window = make_window()
    qtbot.waitUntil(lambda: "Watching 1 folder" in window.watcher_label.text(), timeout=TIMEOUT_MS)
    window.queue.set_queue_filter(QueueFilter.ALL)

    write_cells(inbox, 2)
    qtbot.waitUntil(lambda: window.table_model.rowCount() == 2, timeout=TIMEOUT_MS)
    write_cells(inbox, 1, blast=True)
    qtbot.waitUntil(lambda: window.table_model.rowCount() == 3, timeout=TIMEOUT_MS)

    qtbot.waitUntil(lambda: all(s.score is not None for s in window.table_model.summaries()), timeout=TIMEOUT_MS)
    assert {s.slide.status for s in window.table_model.summaries()} == {SlideStatus.SCORED}
    assert window.queue.proxy.rowCount() == 3
    assert "3 slides" in window.queue_label.text()
    assert model.version in window.model_label.text()


def test_opened_files_are_scored_through_the_apps_inbox(make_window, model, tmp_path: Path, qtbot):
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)
    [cell] = write_cells(tmp_path / "elsewhere", 1)

    window.open_paths([cell, tmp_path / "notes.txt"])

    qtbot.waitUntil(lambda: window.table_model.rowCount() == 1, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.table_model.summary(0).score is not None, timeout=TIMEOUT_MS)
    slide = window.table_model.summary(0).slide
    assert Path(slide.path).parent == window.controller.opened_inbox
    assert slide.file_name == cell.name


def test_filters_search_and_sorting(make_window, store, model, tmp_path: Path):
    paths = write_cells(tmp_path / "slides", 3)
    for path, score in zip(paths, (0.2, 3.0, 1.5)):
        add_scored_slide(store, model.id, path, score, threshold=1.0)
    window = make_window()
    proxy = window.queue.proxy

    window.queue.set_queue_filter(QueueFilter.FLAGGED)
    assert proxy.rowCount() == 2
    assert [proxy.summary_at(row).score.score for row in range(2)] == [3.0, 1.5]  # by score, highest first

    window.queue.set_queue_filter(QueueFilter.ALL)
    window.queue.search.setText(paths[0].name[-7:])
    assert proxy.rowCount() == 1
    window.queue.search.clear()



def test_the_queue_shows_each_scores_stored_flag(make_window, store, model, tmp_path: Path):
    """A slide flagged at another operating point keeps its stored flag, whatever its score and threshold."""
    low, high = write_cells(tmp_path / "slides", 2)
    add_scored_slide(store, model.id, low, 0.2, threshold=1.0, flagged=True)
    add_scored_slide(store, model.id, high, 3.0, threshold=1.0, flagged=False)
    window = make_window()
    proxy = window.queue.proxy

    window.queue.set_queue_filter(QueueFilter.FLAGGED)
    assert proxy.rowCount() == 1
    assert proxy.index(0, FLAG).data() == "FLAGGED"
    assert proxy.index(0, SCORE).data() == "0.200"
    assert window.table_model.flagged_count == 1
