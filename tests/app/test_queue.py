from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from ganad_clinic.app.slide_table_model import FLAG, SCORE, QueueFilter
from ganad_clinic.screening.service import default_station
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
    assert "3 slides" in window.queue.counts_label.text()
    assert model.version in window.model_label.text()
    tip = window.table_model.data(window.table_model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert f"station {default_station()}" in tip  # the app's own service is a station, named by the host


def test_the_apps_station_takes_its_name_from_the_settings(make_window, model, settings, tmp_path: Path, qtbot):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings.watched_folders, settings.station = [inbox], "review-2"
    window = make_window()
    qtbot.waitUntil(lambda: "Watching 1 folder" in window.watcher_label.text(), timeout=TIMEOUT_MS)
    write_cells(inbox, 1)
    qtbot.waitUntil(lambda: any(s.score is not None for s in window.table_model.summaries()), timeout=TIMEOUT_MS)
    [summary] = window.table_model.summaries()
    assert summary.score.station == "review-2"


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


def test_the_worklists_count_and_a_file_not_scored_is_under_problems_and_cannot_be_reviewed(
        make_window, store, model, tmp_path: Path, qtbot):
    from ganad_clinic.app.slide_table_model import FILE, REVIEW
    from ganad_clinic.files import file_sha256

    paths = write_cells(tmp_path / "slides", 4)
    open_flag, overruled = (add_scored_slide(store, model.id, path, 3.0) for path in paths[:2])
    add_scored_slide(store, model.id, paths[2], 0.5)  # not flagged, awaiting review
    store.add_review(overruled.id, "Ana Lima", "normal", "stain artefact")
    truncated = tmp_path / "slides" / "truncated.png"
    truncated.write_bytes(paths[3].read_bytes()[:40])
    rejected = store.record_slide(truncated, file_sha256(truncated), 40, truncated.parent).slide
    store.mark_rejected(rejected.id, "the image file is truncated")
    window = make_window()
    counts = window.table_model.counts

    assert (counts[QueueFilter.FLAGGED_OPEN], counts[QueueFilter.AWAITING], counts[QueueFilter.PROBLEMS],
            counts[QueueFilter.FLAGGED]) == (1, 2, 1, 2)
    assert window.queue.proxy.rowCount() == 1  # the default worklist: flagged, not yet reviewed
    assert window.queue.current_summary().slide.id == open_flag.id
    assert window.queue.filter.currentText() == "Flagged, not yet reviewed (1)"
    assert window.queue.counts_label.text().startswith("1 flagged to review · 2 awaiting review · 1 not scored")

    window.queue.set_queue_filter(QueueFilter.FLAGGED)
    flags = {window.queue.proxy.summary_at(row).slide.id: window.queue.proxy.index(row, FLAG).data()
             for row in range(window.queue.proxy.rowCount())}
    assert flags == {open_flag.id: "FLAGGED", overruled.id: "overruled"}
    assert "flagged, overruled" in window.queue.proxy.index(0, FLAG).data(Qt.ItemDataRole.ToolTipRole) + \
        window.queue.proxy.index(1, FLAG).data(Qt.ItemDataRole.ToolTipRole)
    row = next(r for r in range(2) if window.queue.proxy.summary_at(r).slide.id == overruled.id)
    assert window.queue.proxy.index(row, REVIEW).data() == "normal"
    assert "by Ana Lima" in window.queue.proxy.index(row, REVIEW).data(Qt.ItemDataRole.ToolTipRole)
    assert "stain artefact" in window.queue.proxy.index(row, REVIEW).data(Qt.ItemDataRole.ToolTipRole)
    brushes = {window.queue.proxy.index(r, FLAG).data(Qt.ItemDataRole.ForegroundRole).color().name()
               for r in range(2)}
    assert len(brushes) == 2  # an overruled flag is not coloured like an open one

    window.queue.set_queue_filter(QueueFilter.PROBLEMS)
    assert window.queue.proxy.rowCount() == 1 and window.queue.current_summary().slide.id == rejected.id
    said = window.review_panel.current.text()
    assert "truncated" in said and "cannot be reviewed" in said
    assert not window.normal_action.isEnabled() and not window.confirm_action.isEnabled()
    qtbot.keyClick(window.queue.table, Qt.Key.Key_N)
    assert store.current_review(rejected.id) is None
    assert window.queue.proxy.index(0, FILE).data() == "truncated.png"


def test_a_slide_that_arrives_while_the_window_is_open_is_marked_new_until_selected(make_window, store, model,
                                                                                    tmp_path: Path, qtbot):
    from ganad_clinic.app.slide_table_model import FILE, NEW_MARK

    first, later = write_cells(tmp_path / "slides", 2)
    add_scored_slide(store, model.id, first, 3.0)
    window = make_window()
    arrived = add_scored_slide(store, model.id, later, 2.0)
    window.refresh()
    qtbot.waitUntil(lambda: window.table_model.rowCount() == 2 and not window.refreshing, timeout=TIMEOUT_MS)
    names = {window.queue.proxy.summary_at(r).slide.id: window.queue.proxy.index(r, FILE).data() for r in range(2)}
    assert names[arrived.id] == NEW_MARK + later.name
    assert [name for slide_id, name in names.items() if slide_id != arrived.id] == [first.name]
    window.queue.select_slide(arrived.id)
    assert window.table_model.data(window.table_model.index(window.table_model.row_of(arrived.id), FILE)) == later.name


def test_a_rejected_file_leaves_problems_once_it_is_replaced_at_its_path(make_window, store, model, tmp_path: Path,
                                                                         qtbot):
    from ganad_clinic.files import file_sha256

    [scan] = write_cells(tmp_path / "slides", 1)
    old = store.record_slide(scan, "truncated-content", 10, scan.parent).slide
    store.mark_rejected(old.id, "the file ends early (truncated)")
    window = make_window()
    assert window.table_model.counts[QueueFilter.PROBLEMS] == 1

    new = add_scored_slide(store, model.id, scan, 3.0)  # the scanner wrote the file again, whole
    assert file_sha256(scan) != "truncated-content"
    window.refresh()
    qtbot.waitUntil(lambda: window.table_model.rowCount() == 2 and not window.refreshing, timeout=TIMEOUT_MS)

    assert window.table_model.counts[QueueFilter.PROBLEMS] == 0
    window.queue.set_queue_filter(QueueFilter.ALL)
    window.queue.select_slide(old.id)
    assert f"slide {new.id} is the new one" in window.viewer.status.text()  # the rejection stays on record


def test_new_marks_are_kept_from_one_session_to_the_next(make_window, store, model, settings, tmp_path: Path, qtbot):
    from ganad_clinic.app.slide_table_model import FILE, NEW_MARK

    first, second, third = write_cells(tmp_path / "slides", 3)
    add_scored_slide(store, model.id, first, 3.0)
    window = make_window()
    unselected = add_scored_slide(store, model.id, second, 2.0)  # arrives and is never selected
    window.refresh()
    qtbot.waitUntil(lambda: window.table_model.rowCount() == 2 and not window.refreshing, timeout=TIMEOUT_MS)
    window.shutdown()
    overnight = add_scored_slide(store, model.id, third, 2.5)  # arrives while the app is closed

    again = make_window()
    qtbot.waitUntil(lambda: again.table_model.rowCount() == 3, timeout=TIMEOUT_MS)

    model_rows = again.table_model
    names = {s.slide.id: model_rows.data(model_rows.index(model_rows.row_of(s.slide.id), FILE))
             for s in model_rows.summaries()}
    assert names[overnight.id] == NEW_MARK + third.name and names[unselected.id] == NEW_MARK + second.name
    assert not names[model_rows.summaries()[0].slide.id].startswith(NEW_MARK)


def test_a_fields_flagged_cells_are_counted_in_the_queue(make_window, store, model, tmp_path: Path):
    from ganad_clinic.app.slide_table_model import CELLS
    from tests.app.builders import score_slide, write_field

    score = score_slide(store, model, write_field(tmp_path / "slides", 0, "field-Im001_1.png"))
    add_scored_slide(store, model.id, write_cells(tmp_path / "slides", 1)[0], 3.0)
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)

    cells = store.list_cells(score.id)
    shown = {window.queue.proxy.summary_at(r).slide.id: window.queue.proxy.index(r, CELLS).data()
             for r in range(window.queue.proxy.rowCount())}
    assert shown[score.slide_id] == f"{sum(c.flagged for c in cells)}/{len(cells)}"
    assert [text for slide_id, text in shown.items() if slide_id != score.slide_id] == [""]  # a crop: one cell


def test_the_window_fits_a_1280_pixel_screen_with_every_queue_column_readable(make_window, store, model,
                                                                              tmp_path: Path):
    add_scored_slide(store, model.id, write_cells(tmp_path / "slides", 1)[0], 2.0)
    window = make_window()
    assert window.minimumSizeHint().width() <= 1280  # it was 1,412: the right of the viewer off screen
    header = window.queue.table.horizontalHeader()
    assert header.sectionSize(0) >= 150  # the File column was squeezed to "…" by the others' contents
