"""The slide viewer: the slide with its heat map (opacity slider, legend) and its cells' boxes, the
list of its cells, zoom and pan, and the verdict in plain words (the score against the threshold,
the p-value as the calibrated operating point says it). What an engineer checks is one click away
under Details (D): the chosen cell's model input and reconstruction G(E(x)), the score's three
terms, the p-value and the model, all at the one fixed precision (model.numbers).

The stored score is shown at once; the picture, the cells, the raw heat and the reconstructions
arrive from the inspection worker (see inspection.py), recomputed from the stored tiles with the
stored settings. At first the side panels show the highest-scoring cell and the whole slide is in
view; choosing a cell (in the list, on its box, or with C / Shift+C) zooms to it. When the slide
cannot be recomputed, the stored heat-map picture is shown instead. Flags are the stored ones (the
recompute judges at the rate the score was flagged at), and the slide's and the chosen cell's
stored p-values are said in words.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.cell_list import CellList, cell_verdict, flag_colour
from ganad_clinic.app.heat_legend import HeatLegend
from ganad_clinic.app.images import to_pixmap
from ganad_clinic.app.inspection import KEPT_VIEWS, Inspection
from ganad_clinic.app.operating_words import kept_short, p_value_text, slide_judgement, verdict_text
from ganad_clinic.app.slide_table_model import flag_text, is_flagged
from ganad_clinic.app.zoom_view import MAX_LABELLED_BOXES, Box, ZoomView
from ganad_clinic.imaging.overlay import heat_rgba
from ganad_clinic.imaging.tiling import WHOLE_IMAGE
from ganad_clinic.model.inference import CellResult
from ganad_clinic.model.numbers import score_text
from ganad_clinic.store import SlideStatus, SlideSummary

DEFAULT_OPACITY_PERCENT = 50  # the heat map's opacity until the user moves the slider

CAUTION_COLOUR = "#a64b00"
"""A caveat on a score (pages not screened, a gray image) stands out from the grey notes."""
NEXT_CELL_KEY = "C"
PREVIOUS_CELL_KEY = "Shift+C"
BOXES_KEY = "B"
DETAILS_KEY = "D"
"""Keys free of the window's (A, N, S: review; J, K: slides; H: heat map); they act from anywhere in it."""
INPUT_TITLE = "What the model saw, x"
RECONSTRUCTION_TITLE = "Its reconstruction, G(E(x))"
TERMS = (("score", "Score A(x)"), ("threshold", "Threshold"), ("p_value", "p-value"), ("l_d", "Critic term L_D"),
         ("l_r", "Pixel term L_R"), ("l_l", "Latent term L_L"), ("model", "Model"))
"""The Details row: the stored score, what it was judged against, and the three terms of A(x)."""


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: palette(mid); font-size: 11px;")
    return label


def _titled(title: QLabel, view: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(title)
    layout.addWidget(view, 1)
    return box


def _box_rect(cell: CellResult, scale: float) -> QRectF:
    """A cell's box in the displayed picture's pixels (its tile is in slide pixels)."""
    tile = cell.tile
    return QRectF(tile.left * scale, tile.top * scale, tile.width * scale, tile.height * scale)


class SlideViewer(QWidget):
    opacity_changed = Signal(int)
    details_toggled = Signal(bool)

    def __init__(self, opacity_percent: int = DEFAULT_OPACITY_PERCENT, parent: QWidget | None = None, *,
                 details: bool = False) -> None:
        super().__init__(parent)
        self.summary: SlideSummary | None = None
        self.inspection: Inspection | None = None
        self.current_cell: int | None = None  # index of the cell the side panels show
        self.failure: str | None = None  # why the slide in view could not be recomputed
        self.shown_at: float | None = None  # time.monotonic() when the slide's picture (or why not) appeared

        self.title = QLabel("No slide selected")
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.slide_view = ZoomView()
        self.input_view = ZoomView()
        self.reconstruction_view = ZoomView()
        self.input_title = _caption(INPUT_TITLE)
        self.reconstruction_title = _caption(RECONSTRUCTION_TITLE)
        self.cell_list = CellList()
        self.cell_list.cell_chosen.connect(self.choose_cell)
        self.slide_view.clicked.connect(self._slide_clicked)
        self.cells_title = _caption("Cells, highest score first")
        self.cells_box = _titled(self.cells_title, self.cell_list)
        self.cells_box.hide()  # until a field's cells are in
        self.input_box = _titled(self.input_title, self.input_view)
        self.reconstruction_box = _titled(self.reconstruction_title, self.reconstruction_view)
        self.side = QSplitter(Qt.Orientation.Vertical)
        self.side.addWidget(self.input_box)
        self.side.addWidget(self.reconstruction_box)
        self.side.addWidget(self.cells_box)
        self.side.setSizes([170, 170, 260])
        images = QSplitter(Qt.Orientation.Horizontal)
        slide_caption = _caption("Slide and heat map: wheel zooms, drag pans, a click on a box chooses its cell")
        images.addWidget(_titled(slide_caption, self.slide_view))
        images.addWidget(self.side)
        images.setStretchFactor(0, 3)
        images.setStretchFactor(1, 1)
        images.setSizes([560, 260])
        self.next_cell_action = self._action("Next cell", NEXT_CELL_KEY, 1)
        self.previous_cell_action = self._action("Previous cell", PREVIOUS_CELL_KEY, -1)

        self.heat_toggle = QCheckBox("Heat map")
        self.heat_toggle.setChecked(True)
        self.heat_toggle.setShortcut("H")
        self.heat_toggle.setToolTip("Show the heat map (H)")
        self.heat_toggle.toggled.connect(self.slide_view.set_layer_visible)
        self.boxes_toggle = QCheckBox("Cell boxes")
        self.boxes_toggle.setChecked(True)
        self.boxes_toggle.setShortcut(BOXES_KEY)
        self.boxes_toggle.setToolTip(f"Outline each cell, numbered as in the list: vermillion when flagged, blue "
                                     f"when normal ({BOXES_KEY}). {NEXT_CELL_KEY} / {PREVIOUS_CELL_KEY}: next / "
                                     "previous cell in the list")
        self.boxes_toggle.toggled.connect(self.slide_view.set_boxes_visible)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(opacity_percent)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("Heat-map opacity (drag: from none to full)")
        self.opacity.valueChanged.connect(self._apply_opacity)
        self._apply_opacity(opacity_percent)
        fit = QPushButton("Fit")
        fit.clicked.connect(self._fit_all)
        actual = QPushButton("1:1")
        actual.clicked.connect(self.slide_view.actual_size)
        for button in (fit, actual):
            button.setFixedWidth(48)
        controls = QHBoxLayout()
        controls.addWidget(self.heat_toggle)
        controls.addWidget(self.boxes_toggle)
        controls.addWidget(self.opacity)
        controls.addWidget(HeatLegend(), 1)
        controls.addWidget(fit)
        controls.addWidget(actual)

        self.details_toggle = QCheckBox("Details")
        self.details_toggle.setToolTip(f"Show what the model saw and its reconstruction, the score's three terms, "
                                       f"the p-value and the model ({DETAILS_KEY})")
        self.details_action = QAction("Details", self)  # the key, from anywhere in the window like the cell keys
        self.details_action.setShortcut(QKeySequence(DETAILS_KEY))
        self.details_action.triggered.connect(self.details_toggle.toggle)
        self.addAction(self.details_action)
        controls.insertWidget(2, self.details_toggle)

        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.verdict.setStyleSheet("font-size: 14px;")
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.terms: dict[str, QLabel] = {}
        self.terms_box = QWidget()
        grid = QGridLayout(self.terms_box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.terms_of = QLabel("")  # whose numbers the row holds: the slide's or the chosen cell's
        self.terms_of.setStyleSheet("font-weight: 600;")
        grid.addWidget(_caption("Numbers of"), 0, 0)
        grid.addWidget(self.terms_of, 1, 0)
        for column, (key, caption) in enumerate(TERMS, start=1):
            label = _caption(caption)
            value = QLabel("–")
            value.setStyleSheet("font-size: 14px;")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(label, 0, column)
            grid.addWidget(value, 1, column)
            self.terms[key] = value
        self.judgement = QLabel("")
        self.judgement.setWordWrap(True)
        self.judgement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: palette(mid);")

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(images, 1)
        layout.addLayout(controls)
        layout.addWidget(self.verdict)
        layout.addWidget(self.judgement)
        layout.addWidget(self.terms_box)
        layout.addWidget(self.status)
        self.details_toggle.toggled.connect(self._details_changed)
        self.details_toggle.setChecked(details)
        self._show_details()

    def _action(self, text: str, shortcut: str, rows: int) -> QAction:
        """A key that steps through the cell list from anywhere in the window (the queue keeps the focus)."""
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{text} in the list of cells, zoomed to ({shortcut})")
        action.triggered.connect(lambda: self.cell_list.step(rows))
        self.addAction(action)
        return action

    def _apply_opacity(self, percent: int) -> None:
        self.slide_view.set_layer_opacity(percent / 100)
        self.opacity_changed.emit(percent)

    def _details_changed(self, shown: bool) -> None:
        self._show_details()
        self.details_toggled.emit(shown)

    def _show_details(self) -> None:
        """Details on: the terms and the chosen cell's input and reconstruction; off: only what a
        technician needs (the side panel holds just the cell list, and goes for a single crop)."""
        shown = self.details_toggle.isChecked()
        self.terms_box.setVisible(shown)
        self.input_box.setVisible(shown)
        self.reconstruction_box.setVisible(shown)
        self.side.setVisible(shown or not self.cells_box.isHidden())

    def _fit_all(self) -> None:
        for view in (self.slide_view, self.input_view, self.reconstruction_view):
            view.fit()

    # content

    def show_summary(self, summary: SlideSummary | None, *, keep_pictures: bool = False) -> None:
        """Show a slide's stored result; its pictures and cells follow from `show_inspection`."""
        same_slide = summary is not None and self.summary is not None and summary.slide.id == self.summary.slide.id
        self.summary = summary
        if not (keep_pictures and same_slide):
            self.inspection = None
            self.current_cell = None
            self.failure = None
            self.shown_at = None
            for view in (self.slide_view, self.input_view, self.reconstruction_view):
                view.clear()
            self.cell_list.clear()
            self.cells_box.hide()
            self._show_details()
            self._set_titles(None)
        self._show_text()

    def seconds_on_screen(self) -> float | None:
        """How long the slide's picture has been in view (or the reason it cannot be); None until then."""
        return None if self.shown_at is None else time.monotonic() - self.shown_at

    def _inspected(self) -> Inspection:
        """The inspection in view, where the caller knows there is one."""
        assert self.inspection is not None, "no inspection in view"
        return self.inspection

    def _show_text(self) -> None:
        summary = self.summary
        if summary is None:
            self.title.setText("No slide selected")
            for value in self.terms.values():
                value.setText("–")
            self.verdict.setText("")
            self.judgement.setText("")
            self.status.setText("")
            return
        slide, score = summary.slide, summary.score
        flag = flag_text(summary)
        colour = "#c82828" if is_flagged(summary) else "palette(text)"
        self.title.setText(f"{html.escape(slide.file_name)} — <span style='color:{colour}'>{flag}</span>")
        self.verdict.setText(html.escape(verdict_text(summary), quote=False))
        self.judgement.setText(self._judgement_text())
        self._show_terms()
        if slide.status is SlideStatus.REJECTED:
            replaced = ("" if summary.replaced_by_id is None
                        else f" The file was replaced since: slide {summary.replaced_by_id} is the new one.")
            self.status.setText(f"Rejected: {(slide.reason or '').rstrip('.')}.{replaced}")
        elif score is None:
            self.status.setText("Waiting to be scored")
        elif self.failure is not None:
            self.status.setText(self.failure)
        elif self.inspection is None:
            self.status.setText(f"Computing the heat map and the cells with model {score.model_version}…")
        else:
            self.status.setText(self._inspection_note(self.inspection))
        if score is not None and score.warning and slide.status is SlideStatus.SCORED:
            self.status.setText(f"<span style='color:{CAUTION_COLOUR}'><b>Caution:</b> {html.escape(score.warning)}."
                                f"</span> {html.escape(self.status.text())}")

    def _show_terms(self) -> None:
        """The Details row: the chosen cell's numbers on a field (its score is the slide's only when
        it is the highest cell), the slide's otherwise; the threshold and the model are the slide's."""
        score = None if self.summary is None else self.summary.score
        if score is None:
            self.terms_of.setText("")
            for value in self.terms.values():
                value.setText("–")
            return
        inspection = self.inspection
        if inspection is not None and inspection.result.plan.rule != WHOLE_IMAGE:
            cell = self._cell(self.current_cell)
            self.terms_of.setText(f"Cell {cell.index + 1}")
            numbers = {"score": cell.score, "l_d": cell.l_d, "l_r": cell.l_r, "l_l": cell.l_l}
            p_value: float | None = inspection.stored_p_values[cell.index]
        else:
            self.terms_of.setText("Slide")
            numbers = {"score": score.score, "l_d": score.l_d, "l_r": score.l_r, "l_l": score.l_l}
            p_value = score.p_value
        for key, number in numbers.items():
            self.terms[key].setText(score_text(number))
        self.terms["threshold"].setText(score_text(score.threshold))
        self.terms["p_value"].setText("–" if p_value is None else f"{p_value:.3g}")
        self.terms["model"].setText(score.model_version)

    def _judgement_text(self) -> str:
        """The slide's stored p-value in words, the chosen cell's, and a calibration that could not
        keep the target for this slide."""
        score = None if self.summary is None else self.summary.score
        if score is None:
            return ""
        inspection = self.inspection
        cells = None if inspection is None else len(inspection.result.cells)
        lines = [html.escape(slide_judgement(score, () if inspection is None else inspection.stored_p_values),
                             quote=False)]
        if inspection is not None and inspection.result.plan.rule != WHOLE_IMAGE:
            cell = self._cell(self.current_cell)
            words = p_value_text(inspection.stored_p_values[cell.index], score.calibration_n)
            lines.append(html.escape(f"Cell {cell.index + 1}: {words}.", quote=False))
        short = kept_short(score, cells)
        if short is not None:
            lines.append(f"<span style='color:{CAUTION_COLOUR}'><b>Calibration too small:</b> "
                         f"{html.escape(short, quote=False)}.</span>")
        return "<br>".join(lines)

    def _inspection_note(self, inspection: Inspection) -> str:
        result = inspection.result
        score = None if self.summary is None else self.summary.score
        scored_at = f" Scored at station {score.station}." if score is not None and score.station else ""
        note = f"{self._cell_note(inspection)} Heat map recomputed with model " \
               f"{inspection.model_version} ({result.tiling}).{scored_at}"
        if not inspection.matches_stored:
            note += f" Recomputed score {score_text(result.score)} differs from the stored one."
        elif not inspection.flags_match:
            note += " The recomputed cell flags differ from the stored ones."
        return note

    def _cell_note(self, inspection: Inspection) -> str:
        """Which cell is chosen (the one Details shows), in the words of the list and the boxes."""
        result, cell = inspection.result, self._cell(self.current_cell)
        verdict = cell_verdict(cell)
        if result.plan.rule == WHOLE_IMAGE:
            return f"The whole image is one cell, score {score_text(cell.score)}, {verdict}."
        highest = " (the highest)" if cell.index == result.top.index else ""
        note = (f"Chosen: cell {cell.index + 1} of {len(result.cells)} ({cell.found_by}), "
                f"score {score_text(cell.score)}{highest}, {verdict}.")
        if cell.index not in result.views:
            note += f" Its input and reconstruction are not kept: only the {KEPT_VIEWS} highest-scoring cells' are."
        return note

    def _cell(self, index: int | None) -> CellResult:
        result = self._inspected().result
        return result.cells[index] if index is not None else result.top

    def show_inspection(self, inspection: Inspection) -> None:
        summary = self.summary
        if (summary is None or inspection.slide_id != summary.slide.id or summary.score is None
                or inspection.score_id != summary.score.id):  # another slide's, or an older score's
            return
        self.inspection = inspection
        result = inspection.result
        self.current_cell = result.top.index
        self.slide_view.show_pixmaps(to_pixmap(inspection.image), to_pixmap(heat_rgba(result.heat)))
        self.shown_at = time.monotonic()
        tiled = result.plan.rule != WHOLE_IMAGE
        self.cells_box.setVisible(tiled)
        self._show_details()
        self.boxes_toggle.setEnabled(tiled)
        if tiled:
            unnumbered = (f"; boxes not numbered on the slide (over {MAX_LABELLED_BOXES})"
                          if len(result.cells) > MAX_LABELLED_BOXES else "")
            self.cells_title.setText(f"{len(result.cells)} cells, highest score first ({NEXT_CELL_KEY} / "
                                     f"{PREVIOUS_CELL_KEY}){unnumbered}")
            self.cells_title.setToolTip(f"Found as: {result.cells[0].found_by}. {NEXT_CELL_KEY} / {PREVIOUS_CELL_KEY}: "
                                        "the next / previous cell in the list, zoomed to")
            self._show_boxes()
            self.cell_list.show_cells(result.cells, inspection.image, inspection.scale, self.current_cell)
        self._show_cell_views()
        self._show_text()

    def _show_boxes(self) -> None:
        """Each cell's box, numbered as in the list, coloured by its flag."""
        inspection = self._inspected()
        self.slide_view.show_boxes([Box(_box_rect(cell, inspection.scale), str(cell.index + 1), flag_colour(cell))
                                    for cell in inspection.result.cells])
        self.slide_view.choose_box(self.current_cell)

    def choose_cell(self, index: int) -> None:
        """Show this cell: its box chosen, the slide view zoomed to it, its input and reconstruction beside."""
        if self.inspection is None or not 0 <= index < len(self.inspection.result.cells):
            return
        self.current_cell = index
        self.cell_list.mark(index)
        self.slide_view.choose_box(index)
        self.slide_view.zoom_to(_box_rect(self._cell(index), self.inspection.scale))
        self._show_cell_views()
        self._show_text()

    def _slide_clicked(self, at: QPointF) -> None:
        """A click on the slide picks the cell whose box holds it (of overlapping boxes, the one centred nearest)."""
        if self.inspection is None or not self.cells_box.isVisible():
            return
        scale = self.inspection.scale
        holding = [cell for cell in self.inspection.result.cells if _box_rect(cell, scale).contains(at)]
        if holding:
            nearest = min(holding, key=lambda cell: (_box_rect(cell, scale).center() - at).manhattanLength())
            self.choose_cell(nearest.index)

    def _show_cell_views(self) -> None:
        result, cell = self._inspected().result, self._cell(self.current_cell)
        view = result.views.get(cell.index)
        if view is None:
            message = f"Not kept for this cell:\nonly for the {KEPT_VIEWS}\nhighest-scoring cells"
            self.input_view.show_message(message)
            self.reconstruction_view.show_message(message)
        else:
            self.input_view.show_pixmaps(to_pixmap(view.model_input))
            self.reconstruction_view.show_pixmaps(to_pixmap(view.reconstruction))
        self._set_titles(None if result.plan.rule == WHOLE_IMAGE else cell.index)

    def _set_titles(self, cell_index: int | None) -> None:
        suffix = "" if cell_index is None else f" — cell {cell_index + 1}"
        self.input_title.setText(INPUT_TITLE + suffix)
        self.reconstruction_title.setText(RECONSTRUCTION_TITLE + suffix)

    def show_failure(self, slide_id: int, message: str) -> None:
        """The slide could not be recomputed: show the stored heat-map picture if there is one."""
        if self.summary is None or slide_id != self.summary.slide.id:
            return
        score = self.summary.score
        stored = Path(score.heatmap_path) if score is not None and score.heatmap_path else None
        if stored is not None and stored.is_file():
            self.slide_view.show_pixmaps(QPixmap(str(stored)))
            self.failure = f"Showing the stored heat map (opacity fixed; no cells, no reconstruction): {message}"
        else:
            self.failure = f"Cannot show this slide: {message}"
        self.shown_at = time.monotonic()
        self._show_text()
