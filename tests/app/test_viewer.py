"""The viewer: a field's cells boxed, numbered and coloured on the slide, the list of its cells, and
a chosen cell zoomed to with its model input and reconstruction; what it says in words beside."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor

from ganad_clinic.app.cell_list import CROP, CROP_WIDTH, NUMBER, RESULT, SCORE
from ganad_clinic.app.images import to_pixmap
from ganad_clinic.app.inspection import inspect_slide
from ganad_clinic.app.operating_words import NOT_CALIBRATED
from ganad_clinic.app.slide_table_model import QueueFilter
from ganad_clinic.app.viewer import SlideViewer
from ganad_clinic.app.zoom_view import CHOSEN_LINE, MAX_LABELLED_BOXES
from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.overlay import FLAGGED_COLOUR, NORMAL_COLOUR
from ganad_clinic.model.conformal import p_value_words, percent, slide_p_value_words
from ganad_clinic.model.numbers import score_text
from ganad_clinic.screening.registry import load_registered
from ganad_clinic.store import Judgement
from tests.app.builders import add_scored_slide, score_slide, write_cells, write_field


@pytest.fixture
def viewer(qtbot) -> SlideViewer:
    viewer = SlideViewer()
    qtbot.addWidget(viewer)
    viewer.resize(1100, 800)
    viewer.show()
    qtbot.waitExposed(viewer)
    return viewer


def _box_rect(cell, scale: float) -> QRectF:
    tile = cell.tile
    return QRectF(tile.left * scale, tile.top * scale, tile.width * scale, tile.height * scale)


def _rows(viewer: SlideViewer, column: int) -> list[str]:
    model = viewer.cell_list.cell_model
    return [model.data(model.index(row, column)) for row in range(model.rowCount())]


def _same_picture(pixmap, array) -> bool:
    return pixmap.toImage() == to_pixmap(array).toImage()


def test_a_field_shows_each_cell_boxed_numbered_and_coloured_by_its_score(viewer, inspected_field):
    summary, inspection = inspected_field
    result = inspection.result
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)

    assert inspection.matches_stored  # the stored tiles and tiling reproduce the stored score
    assert result.plan.rule == "white cells" and len(result.cells) > 1
    boxes = viewer.slide_view.boxes
    assert len(boxes) == len(result.cells)
    for box, cell in zip(boxes, result.cells):
        assert box.rect() == _box_rect(cell, inspection.scale)
        assert box.childItems()[0].text == str(cell.index + 1)
        assert box.pen().color() == QColor(*(FLAGGED_COLOUR if cell.flagged else NORMAL_COLOUR))
    assert viewer.cells_box.isVisible()
    scores = [cell.score for cell in sorted(result.cells, key=lambda cell: -cell.score)]
    assert _rows(viewer, SCORE) == [f"{score:.3f}" for score in scores]
    top = result.top
    assert _rows(viewer, NUMBER)[0] == str(top.index + 1)
    assert f"Chosen: cell {top.index + 1} of {len(result.cells)} (white cell)" in viewer.status.text()
    assert "(the highest)" in viewer.status.text()
    assert "differs" not in viewer.status.text()
    assert _same_picture(viewer.input_view.base.pixmap(), result.views[top.index].model_input)
    assert viewer.slide_view.scale_factor < 1  # the whole field in view until a cell is chosen


def test_the_heat_map_covers_the_picture_even_when_a_pixel_short_of_it(viewer, inspected_field):
    summary, inspection = inspected_field
    short = replace(inspection, result=replace(inspection.result, heat=inspection.result.heat[:-1, :-1]))
    viewer.show_summary(summary)
    viewer.show_inspection(short)

    view = viewer.slide_view
    assert view.layer.sceneBoundingRect() == view.base.sceneBoundingRect()


def test_choosing_a_cell_in_the_list_zooms_to_it_with_its_input_and_reconstruction(viewer, inspected_field, qtbot):
    summary, inspection = inspected_field
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)
    lowest_row = viewer.cell_list.cell_model.rowCount() - 1
    cell = viewer.cell_list.cell_model.cells[lowest_row]
    before = viewer.input_view.base.pixmap().toImage()

    at = viewer.cell_list.visualRect(viewer.cell_list.cell_model.index(lowest_row, NUMBER)).center()
    qtbot.mouseClick(viewer.cell_list.viewport(), Qt.MouseButton.LeftButton, pos=at)

    assert viewer.current_cell == cell.index
    box = _box_rect(cell, inspection.scale)
    visible = viewer.slide_view.visible_rect()
    assert visible.contains(box)
    scene = viewer.slide_view.sceneRect()
    assert visible.width() * visible.height() < 0.2 * scene.width() * scene.height()
    assert viewer.input_view.base.pixmap().toImage() != before
    view = inspection.result.views[cell.index]
    assert _same_picture(viewer.input_view.base.pixmap(), view.model_input)
    assert _same_picture(viewer.reconstruction_view.base.pixmap(), view.reconstruction)
    assert viewer.slide_view.boxes[cell.index].pen().widthF() == CHOSEN_LINE
    assert viewer.input_title.text().endswith(f"cell {cell.index + 1}")
    assert f"cell {cell.index + 1} of {len(inspection.result.cells)}" in viewer.status.text()
    assert f"score {cell.score:.3f}," in viewer.status.text()


def test_a_click_on_a_cells_box_chooses_that_cell(viewer, inspected_field, qtbot):
    summary, inspection = inspected_field
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)
    cell = viewer.cell_list.cell_model.cells[1]  # not the one shown at first

    at = viewer.slide_view.mapFromScene(_box_rect(cell, inspection.scale).center())
    qtbot.mouseClick(viewer.slide_view.viewport(), Qt.MouseButton.LeftButton, pos=at)

    assert viewer.current_cell == cell.index
    assert viewer.cell_list.currentIndex().row() == 1
    assert viewer.slide_view.visible_rect().contains(_box_rect(cell, inspection.scale))


def test_the_boxes_and_the_list_show_the_stored_flags(viewer, inspected_field, store):
    summary, inspection = inspected_field
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)

    stored = {cell.cell_index: cell.flagged for cell in store.list_cells(summary.score.id)}
    assert inspection.flags_match  # recomputed at the rate the score was flagged at
    for box, cell in zip(viewer.slide_view.boxes, inspection.result.cells, strict=True):
        assert box.pen().color().getRgb()[:3] == (FLAGGED_COLOUR if stored[cell.index] else NORMAL_COLOUR)
    listed = viewer.cell_list.cell_model.cells
    assert _rows(viewer, RESULT) == ["flagged" if stored[cell.index] else "normal" for cell in listed]
    assert ("FLAGGED" in viewer.title.text()) == summary.score.flagged


def test_the_slides_and_the_chosen_cells_p_values_are_said_in_words(viewer, inspected_field, store):
    summary, inspection = inspected_field
    score = summary.score
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)
    cells = {cell.cell_index: cell for cell in store.list_cells(score.id)}

    words = viewer.judgement.text()
    # a field's own p-value (cells x the smallest) is said by its most unusual cell
    assert slide_p_value_words(score.p_value, [cell.p_value for cell in cells.values()], score.calibration_n) in words
    assert f"a normal slide of {len(cells)} cells shows one so unusual" in words
    assert f"p = {score.p_value:.3g}" in words
    top = inspection.result.top.index
    assert f"Cell {top + 1}: {p_value_words(cells[top].p_value, score.calibration_n)}." in words
    # Details holds the chosen cell's numbers, labelled so (the slide's p-value is the field's, above)
    assert (viewer.terms_of.text(), viewer.terms["p_value"].text()) == (f"Cell {top + 1}", f"{cells[top].p_value:.3g}")
    assert viewer.terms["score"].text() == score_text(cells[top].score)
    other = viewer.cell_list.cell_model.cells[-1].index
    viewer.choose_cell(other)
    assert f"Cell {other + 1}: {p_value_words(cells[other].p_value, score.calibration_n)}." in viewer.judgement.text()
    assert (viewer.terms_of.text(), viewer.terms["score"].text(), viewer.terms["l_r"].text()) == (
        f"Cell {other + 1}", score_text(cells[other].score), score_text(cells[other].l_r))
    assert viewer.terms["threshold"].text() == score_text(score.threshold)  # the slide's, as judged


def test_a_calibration_too_small_for_the_slide_is_said_plainly(viewer, inspected_field):
    summary, inspection = inspected_field
    score = summary.score
    assert score.kept_fpr > score.target_fpr  # the tiny model has 12 calibration normals: too few for 5 %
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)
    said = (f"this model's calibration keeps at most {percent(score.kept_fpr)} for slides of "
            f"{len(inspection.result.cells)} cells; the target is {percent(score.target_fpr)}")
    assert said in viewer.judgement.text()


def test_the_recompute_judges_at_the_rate_the_score_was_flagged_at(store, model, tmp_path: Path):
    path = write_field(tmp_path / "slides", 1)
    score = score_slide(store, model, path, target_fpr=0.5)  # the lab stated 50 % when it was scored
    inspection = inspect_slide(score.slide_id, path, load_registered(model), score, store.list_cells(score.id))
    assert inspection.result.target_fpr == 0.5 == score.target_fpr
    assert inspection.flags_match and inspection.matches_stored


def test_a_score_without_a_p_value_says_it_is_not_calibrated(make_window, store, model, tmp_path: Path, qtbot):
    (path,) = write_cells(tmp_path / "slides", 1)
    add_scored_slide(store, model.id, path, 0.2)  # as scores were made before p-values were kept
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)  # an unflagged slide is not in the default worklist
    qtbot.waitUntil(lambda: window.viewer.summary is not None, timeout=30_000)
    assert NOT_CALIBRATED in window.viewer.judgement.text()
    assert window.viewer.terms["p_value"].text() == "–"


def test_a_judged_crop_shows_its_p_value_and_the_rate_it_was_flagged_at(make_window, store, model, tmp_path: Path,
                                                                       qtbot):
    (path,) = write_cells(tmp_path / "slides", 1, blast=True)
    add_scored_slide(store, model.id, path, 3.0, judged=Judgement(0.01, 0.05, 0.05, 150))
    window = make_window()
    qtbot.waitUntil(lambda: window.viewer.summary is not None, timeout=30_000)
    words = window.viewer.judgement.text()
    assert "Slide: more unusual than 99 % of the 150 normal cells this model was calibrated on (p = 0.01)" in words
    assert "judged at a target of at most 5 % of normal slides flagged" in words
    assert "Calibration too small" not in words


def test_a_cell_without_kept_views_says_so(viewer, inspected_field):
    summary, inspection = inspected_field
    top = inspection.result.top.index
    only_top = replace(inspection, result=replace(inspection.result, views={top: inspection.result.views[top]}))
    viewer.show_summary(summary)
    viewer.show_inspection(only_top)
    other = viewer.cell_list.cell_model.cells[1].index

    viewer.choose_cell(other)

    assert viewer.input_view.base.pixmap().isNull()
    assert "Not kept for this cell" in viewer.input_view.message.text()
    assert "Its input and reconstruction are not kept" in viewer.status.text()
    viewer.choose_cell(top)
    assert viewer.input_view.message.text() == ""
    assert not viewer.input_view.base.pixmap().isNull()


def test_keys_step_through_a_fields_cells_from_the_queue(make_window, store, model, tmp_path: Path, qtbot):
    score = score_slide(store, model, write_field(tmp_path / "slides", 0, "field-Im001_1.png"))
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)  # an unflagged slide is not in the default worklist
    qtbot.waitUntil(lambda: window.viewer.inspection is not None, timeout=30_000)
    viewer = window.viewer
    assert viewer.inspection.matches_stored  # scored as the service scores, recomputed by the app's worker
    assert len(viewer.slide_view.boxes) == len(store.list_cells(score.id))
    listed = [cell.index for cell in viewer.cell_list.cell_model.cells]

    qtbot.keyClick(window.queue.table, Qt.Key.Key_C)  # first: zoom to the cell already shown, the highest
    assert viewer.current_cell == listed[0]
    assert viewer.slide_view.visible_rect().contains(_box_rect(viewer.inspection.result.cells[listed[0]],
                                                               viewer.inspection.scale))
    qtbot.keyClick(window.queue.table, Qt.Key.Key_C)
    assert viewer.current_cell == listed[1]
    qtbot.keyClick(window.queue.table, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)
    assert viewer.current_cell == listed[0]
    qtbot.keyClick(viewer.cell_list, Qt.Key.Key_Down)
    assert viewer.current_cell == listed[1]
    assert f"cell {listed[1] + 1} of {len(listed)}" in viewer.status.text()
    assert window.queue.current_summary().slide.id == score.slide_id  # the slide stays the one in view


def test_a_crop_shows_its_one_cell_with_the_heat_map(make_window, store, model, tmp_path: Path, qtbot):
    (path,) = write_cells(tmp_path / "slides", 1, blast=True)
    score = score_slide(store, model, path)
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)  # an unflagged slide is not in the default worklist
    qtbot.waitUntil(lambda: window.viewer.inspection is not None, timeout=30_000)
    viewer, inspection = window.viewer, window.viewer.inspection

    assert inspection.matches_stored
    assert not viewer.cells_box.isVisible() and viewer.slide_view.boxes == []
    assert "The whole image is one cell" in viewer.status.text()
    assert f"recomputed with model {inspection.model_version} (whole image)." in viewer.status.text()
    assert not viewer.slide_view.layer.pixmap().isNull()
    assert _same_picture(viewer.input_view.base.pixmap(), inspection.result.views[0].model_input)
    viewer.opacity.setValue(80)
    assert viewer.slide_view.layer.opacity() == 0.8
    assert viewer.terms["score"].text() == f"{score.score:.3f}"


def test_a_recomputed_score_other_than_the_stored_one_is_said(make_window, store, model, tmp_path: Path, qtbot):
    (path,) = write_cells(tmp_path / "slides", 1)
    add_scored_slide(store, model.id, path, 3.0)  # a made-up score: the model gives another
    window = make_window()
    qtbot.waitUntil(lambda: window.viewer.inspection is not None, timeout=30_000)
    assert not window.viewer.inspection.matches_stored
    assert "differs from the stored one" in window.viewer.status.text()


def test_a_scores_warning_is_shown_beside_the_slide(make_window, store, model, tmp_path: Path, qtbot):
    (path,) = write_cells(tmp_path / "slides", 1)
    recorded = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent)
    store.add_score(recorded.slide.id, model.id, score=3.0, l_d=1.0, l_r=2.0, l_l=0.5, threshold=1.0, flagged=True,
                    duration_seconds=0.01, warning="page 1 of 3 scored; the other pages were not screened")
    window = make_window()
    assert window.queue.current_summary().slide.id == recorded.slide.id
    # a score without its cells (made before they were kept) is not recomputed: the viewer says why
    qtbot.waitUntil(lambda: "it cannot be recomputed as it was made" in window.viewer.status.text(),
                    timeout=10_000)
    assert "<b>Caution:</b> page 1 of 3 scored; the other pages were not screened." in window.viewer.status.text()
    window.refresh()  # a refresh keeps saying so
    assert "it cannot be recomputed as it was made" in window.viewer.status.text()


def _many_cells(inspection, count: int):
    """The field's inspection with its cells repeated to `count` (as a grid of tiles gives thousands)."""
    cells = inspection.result.cells
    many = [replace(cells[place % len(cells)], index=place) for place in range(count)]
    return replace(inspection, result=replace(inspection.result, cells=many),
                   stored_p_values=tuple(inspection.stored_p_values[cell.index % len(cells)] for cell in many),
                   stored_flags=tuple(cell.flagged for cell in many))


def test_a_grid_of_many_tiles_is_boxed_without_numbers_and_says_so(viewer, inspected_field):
    summary, inspection = inspected_field
    many = _many_cells(inspection, MAX_LABELLED_BOXES + 50)
    viewer.show_summary(summary)
    viewer.show_inspection(many)

    assert len(viewer.slide_view.boxes) == MAX_LABELLED_BOXES + 50
    assert all(box.childItems() == [] for box in viewer.slide_view.boxes)
    assert f"not numbered on the slide (over {MAX_LABELLED_BOXES})" in viewer.cells_title.text()
    viewer.show_inspection(inspection)
    assert "not numbered" not in viewer.cells_title.text()


def test_the_cell_list_cuts_only_the_crops_it_shows(viewer, inspected_field, qtbot):
    summary, inspection = inspected_field
    viewer.show_summary(summary)
    viewer.show_inspection(_many_cells(inspection, 1000))
    qtbot.wait(50)  # the list lays out and paints its visible rows

    listed = viewer.cell_list
    visible_rows = listed.viewport().height() // listed.verticalHeader().defaultSectionSize() + 2
    assert 0 < len(listed.cell_model._thumbnails) <= visible_rows  # not a thumbnail per row to size the column
    assert listed.columnWidth(CROP) == CROP_WIDTH


def test_a_slide_scored_again_in_view_shows_the_new_scores_cells(make_window, store, model, tmp_path: Path, qtbot):
    path = write_field(tmp_path / "slides", 0, "field-Im001_1.png")
    first = score_slide(store, model, path)
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)  # an unflagged slide is not in the default worklist
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.inspection is not None, timeout=30_000)
    assert viewer.inspection.score_id == first.id

    second = score_slide(store, model, path)  # the same slide re-scored (another model, another operating point)
    assert second.slide_id == first.slide_id and second.id != first.id
    window.refresh()

    qtbot.waitUntil(lambda: viewer.summary.score.id == second.id, timeout=30_000)
    qtbot.waitUntil(lambda: viewer.inspection is not None and viewer.inspection.score_id == second.id,
                    timeout=30_000)
    assert len(viewer.slide_view.boxes) == len(store.list_cells(second.id))
    assert viewer.inspection.matches_stored


def test_the_main_screen_says_the_verdict_in_words_and_keeps_the_terms_under_details(viewer, inspected_field, qtbot):
    summary, inspection = inspected_field
    viewer.show_summary(summary)
    viewer.show_inspection(inspection)
    score = summary.score

    assert viewer.verdict.text().startswith("Flagged: " if score.flagged else "Normal: ")
    assert f"the threshold {score.threshold:.3f} (the highest {score.score:.3f})" in viewer.verdict.text()
    assert f"{summary.cells} cells" in viewer.verdict.text()
    assert viewer.terms_box.isHidden() and viewer.input_box.isHidden() and viewer.reconstruction_box.isHidden()
    assert not viewer.cells_box.isHidden()  # the cells stay: they are what a technician steps through
    for words in ("A(x)", "L_D", "G(E(x))"):
        assert words not in viewer.verdict.text() + viewer.judgement.text() + viewer.status.text()

    viewer.details_toggle.click()

    assert viewer.details_toggle.isChecked()
    assert not viewer.terms_box.isHidden() and not viewer.input_box.isHidden()
    assert viewer.terms["l_d"].text() == f"{score.l_d:.3f}" and viewer.terms["threshold"].text() == \
        f"{score.threshold:.3f}"


def test_a_crop_without_details_shows_no_side_panel(qtbot):
    viewer = SlideViewer()
    qtbot.addWidget(viewer)
    assert viewer.side.isHidden()  # nothing in it for a single crop until Details
    viewer.details_toggle.setChecked(True)
    assert not viewer.side.isHidden()
    remembered = SlideViewer(details=True)
    qtbot.addWidget(remembered)
    assert remembered.details_toggle.isChecked() and not remembered.terms_box.isHidden()


def test_d_from_the_queue_shows_the_details_and_the_choice_is_kept(make_window, store, model, settings, tmp_path: Path,
                                                                   qtbot):
    score_slide(store, model, write_field(tmp_path / "slides", 0, "field-Im001_1.png"))
    window = make_window()
    window.queue.set_queue_filter(QueueFilter.ALL)
    qtbot.waitUntil(lambda: window.viewer.inspection is not None, timeout=30_000)
    assert window.viewer.terms_box.isHidden()

    qtbot.keyClick(window.queue.table, Qt.Key.Key_D)

    assert not window.viewer.terms_box.isHidden() and settings.show_details
    assert make_window().viewer.details_toggle.isChecked()  # the next start shows them too
