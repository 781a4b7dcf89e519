"""The cells of the slide in view, highest score first: a crop of each, its number (as on its box),
its score and whether it is flagged (at the operating point its slide was scored at). A click or
the arrow keys pick a cell for the viewer.

Thumbnails are cut from the displayed picture when a row is first drawn, so a field tiled by a grid
of thousands of tiles costs nothing until it is scrolled to.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from ganad_clinic.app.images import to_pixmap
from ganad_clinic.imaging.overlay import FLAGGED_COLOUR, NORMAL_COLOUR, picture_rect
from ganad_clinic.model.inference import CellResult
from ganad_clinic.model.numbers import score_text

THUMBNAIL = 44
"""Side in screen pixels of a cell's crop in the list."""
CROP_WIDTH = THUMBNAIL + 12
NUMBER_WIDTH, SCORE_WIDTH = 56, 72
"""Fixed starting widths of the columns (the result column takes the rest), never measured from the rows."""
CROP, NUMBER, SCORE, RESULT = range(4)
ROOT = QModelIndex()
"""The invalid index: a table's rows have no parent (a default argument shared by all calls, never changed)."""
HEADERS = ("Crop", "Cell", "Score", "Result")


def cell_verdict(cell: CellResult) -> str:
    """A cell's flag in the list's words (its box is coloured by the same flag, `flag_colour`)."""
    return "flagged" if cell.flagged else "normal"


def flag_colour(cell: CellResult) -> QColor:
    """A cell's box and verdict colour: vermillion when flagged, blue otherwise (the overlay's two colours)."""
    return QColor(*(FLAGGED_COLOUR if cell.flagged else NORMAL_COLOUR))


class CellTableModel(QAbstractTableModel):
    """The cells of one slide, sorted by score (highest first; ties by number)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cells: list[CellResult] = []
        self._image = np.zeros((0, 0, 3), dtype=np.uint8)
        self._scale = 1.0
        self._thumbnails: dict[int, QPixmap] = {}

    def set_cells(self, cells: list[CellResult], image: np.ndarray, scale: float) -> None:
        """`image` is the displayed picture, `scale` its pixels per slide pixel (the cells' boxes are
        in slide pixels)."""
        self.beginResetModel()
        self.cells = sorted(cells, key=lambda cell: (-cell.score, cell.index))
        self._image, self._scale = image, scale
        self._thumbnails = {}
        self.endResetModel()

    def row_of(self, cell_index: int) -> int:
        return next(row for row, cell in enumerate(self.cells) if cell.index == cell_index)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = ROOT) -> int:
        return 0 if parent.isValid() else len(self.cells)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = ROOT) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        cell, column = self.cells[index.row()], index.column()
        if role == Qt.ItemDataRole.DecorationRole and column == CROP:
            return self._thumbnail(cell)
        if role == Qt.ItemDataRole.DisplayRole:
            return {NUMBER: str(cell.index + 1), SCORE: score_text(cell.score),
                    RESULT: cell_verdict(cell)}.get(column)
        if role == Qt.ItemDataRole.ForegroundRole and column == RESULT:
            return flag_colour(cell)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (NUMBER, SCORE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            tile = cell.tile
            return (f"Cell {cell.index + 1} ({cell.found_by}): {tile.width} × {tile.height} px at "
                    f"x {tile.left}, y {tile.top}; critic term {score_text(cell.l_d)}, pixel term "
                    f"{score_text(cell.l_r)}, latent term {score_text(cell.l_l)}; "
                    f"p-value {cell.p_value:.3g}")
        return None

    def _thumbnail(self, cell: CellResult) -> QPixmap:
        if cell.index not in self._thumbnails:
            tile = cell.tile
            rect = picture_rect(tile.left, tile.top, tile.width, tile.height, self._scale,
                                self._image.shape[1], self._image.shape[0])
            pixmap = QPixmap() if rect is None else to_pixmap(self._image[rect[1]:rect[3], rect[0]:rect[2]])
            self._thumbnails[cell.index] = pixmap if pixmap.isNull() else pixmap.scaled(
                THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        return self._thumbnails[cell.index]


class CellList(QTableView):
    """The list of a slide's cells; `cell_chosen` says which cell the technician picked (by click or key)."""

    cell_chosen = Signal(int)  # the cell's index in its slide (its number - 1)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._only_marked = False  # the current row was marked, not chosen: the first step chooses it
        self.cell_model = CellTableModel(self)
        self.setModel(self.cell_model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(THUMBNAIL + 4)
        header = self.horizontalHeader()
        # no ResizeToContents: it would measure every row, cutting thousands of thumbnails at once
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(RESULT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(CROP, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(CROP, CROP_WIDTH)
        for column, width in ((NUMBER, NUMBER_WIDTH), (SCORE, SCORE_WIDTH)):
            header.resizeSection(column, width)
        self.setToolTip("The cells of this slide, highest score first: click one, or use the arrow keys, to zoom "
                        "to it and see its model input and reconstruction")
        self.selectionModel().currentRowChanged.connect(self._row_changed)
        self.clicked.connect(lambda index: self.cell_chosen.emit(self.cell_model.cells[index.row()].index))

    def show_cells(self, cells: list[CellResult], image: np.ndarray, scale: float, current: int | None) -> None:
        """List these cells with `current` (a cell index) marked, without announcing it as a choice."""
        self.cell_model.set_cells(cells, image, scale)
        self.mark(current)
        self._only_marked = current is not None

    def clear(self) -> None:
        self.cell_model.set_cells([], np.zeros((0, 0, 3), dtype=np.uint8), 1.0)

    def mark(self, cell_index: int | None) -> None:
        """Make this cell the current row quietly (it was chosen elsewhere, on the slide or by a key)."""
        selection = self.selectionModel()
        selection.blockSignals(True)
        if cell_index is None:
            selection.clear()
        else:
            index = self.cell_model.index(self.cell_model.row_of(cell_index), NUMBER)
            selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                     | QItemSelectionModel.SelectionFlag.Rows)
            self.scrollTo(index)
        selection.blockSignals(False)
        self._only_marked = False
        self.viewport().update()

    def step(self, rows: int) -> None:
        """Choose the cell `rows` down the list (up when negative), staying within it; the first step
        after a slide arrives chooses its marked (highest-scoring) cell, so that it is zoomed to too."""
        count = self.cell_model.rowCount()
        if not count:
            return
        current = self.currentIndex().row()
        if self._only_marked:
            self._only_marked = False
            self.cell_chosen.emit(self.cell_model.cells[current].index)
            return
        self.setCurrentIndex(self.cell_model.index(min(max(0, current + rows), count - 1), NUMBER))

    def _row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._only_marked = False
        if current.isValid():
            self.cell_chosen.emit(self.cell_model.cells[current.row()].index)
