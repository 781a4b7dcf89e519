"""The list of a slide's cells: highest score first, each with its crop, number, score and flag;
a click or a key says which cell the technician chose."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from ganad_clinic.app.cell_list import CROP, NUMBER, RESULT, SCORE, THUMBNAIL, CellList


@pytest.fixture
def cell_list(qtbot, inspected_field) -> CellList:
    _, inspection = inspected_field
    listed = CellList()
    qtbot.addWidget(listed)
    listed.resize(320, 400)
    listed.show()
    qtbot.waitExposed(listed)
    result = inspection.result
    listed.show_cells(result.cells, inspection.image, inspection.scale, result.top.index)
    return listed


def test_cells_are_listed_highest_score_first_with_crop_number_score_and_flag(cell_list, inspected_field):
    _, inspection = inspected_field
    model = cell_list.cell_model
    ordered = sorted(inspection.result.cells, key=lambda cell: -cell.score)
    assert [cell.index for cell in model.cells] == [cell.index for cell in ordered]
    for row, cell in enumerate(ordered):
        assert model.data(model.index(row, NUMBER)) == str(cell.index + 1)
        assert model.data(model.index(row, SCORE)) == f"{cell.score:.3f}"  # the one fixed precision
        assert model.data(model.index(row, RESULT)) == ("flagged" if cell.flagged else "normal")
        assert cell.flagged == (cell.score > inspection.result.threshold)  # the flag at the slide's threshold
        crop = model.data(model.index(row, CROP), Qt.ItemDataRole.DecorationRole)
        assert not crop.isNull() and max(crop.width(), crop.height()) == THUMBNAIL
    assert cell_list.currentIndex().row() == 0  # the highest is marked: the one the panels show at first


def test_the_crop_is_cut_from_the_cells_box(cell_list, inspected_field):
    _, inspection = inspected_field
    cell = cell_list.cell_model.cells[0]
    crop = cell_list.cell_model.data(cell_list.cell_model.index(0, CROP), Qt.ItemDataRole.DecorationRole)
    top, left = round(cell.tile.top * inspection.scale), round(cell.tile.left * inspection.scale)
    centre = inspection.image[top + round(cell.tile.height * inspection.scale) // 2,
                              left + round(cell.tile.width * inspection.scale) // 2]
    pixel = crop.toImage().pixelColor(crop.width() // 2, crop.height() // 2)
    assert abs(pixel.red() - int(centre[0])) < 40 and abs(pixel.blue() - int(centre[2])) < 40


def test_a_click_and_the_arrow_keys_choose_cells(cell_list, qtbot):
    cells = cell_list.cell_model.cells
    at = cell_list.visualRect(cell_list.cell_model.index(2, SCORE)).center()
    with qtbot.waitSignal(cell_list.cell_chosen) as chosen:
        qtbot.mouseClick(cell_list.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert chosen.args == [cells[2].index]
    with qtbot.waitSignal(cell_list.cell_chosen) as chosen:
        qtbot.keyClick(cell_list, Qt.Key.Key_Up)
    assert chosen.args == [cells[1].index]


def test_steps_choose_the_marked_cell_first_then_move_within_the_list(cell_list, qtbot):
    cells = cell_list.cell_model.cells
    seen: list[int] = []
    cell_list.cell_chosen.connect(seen.append)
    cell_list.step(-1)  # the highest is marked but was not chosen yet: it is chosen, not left
    cell_list.step(-1)  # already at the top: nothing
    for _ in range(len(cells) + 2):
        cell_list.step(1)
    assert seen == [cell.index for cell in cells]
