"""The slide viewer: the slide with its heat map (opacity slider, legend), the model's input and
its reconstruction G(E(x)), zoom and pan, the score and its three terms.

The stored score is shown at once; the picture, the raw heat and the reconstruction arrive from
the inspection worker (see inspection.py). When the original file is gone, the stored heat-map
picture is shown instead.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter, QVBoxLayout, QWidget,
)

from ganad_clinic.app.heat_legend import HeatLegend
from ganad_clinic.app.images import heat_layer, to_pixmap
from ganad_clinic.app.inspection import Inspection
from ganad_clinic.app.slide_table_model import flag_text, is_flagged
from ganad_clinic.app.zoom_view import ZoomView
from ganad_clinic.store import SlideStatus, SlideSummary

CAUTION_COLOUR = "#a64b00"
"""A caveat on a score (pages not screened, a gray image) stands out from the grey notes."""


def _titled(title: str, view: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    label = QLabel(title)
    label.setStyleSheet("color: palette(mid); font-size: 11px;")
    layout.addWidget(label)
    layout.addWidget(view, 1)
    return box


class SlideViewer(QWidget):
    opacity_changed = Signal(int)

    def __init__(self, opacity_percent: int = 50, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary: SlideSummary | None = None
        self.inspection: Inspection | None = None
        self.threshold_offset = 0.0

        self.title = QLabel("No slide selected")
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.slide_view = ZoomView()
        self.input_view = ZoomView()
        self.reconstruction_view = ZoomView()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(_titled("Model input x (top tile)", self.input_view))
        side_layout.addWidget(_titled("Reconstruction G(E(x))", self.reconstruction_view))
        images = QSplitter(Qt.Orientation.Horizontal)
        images.addWidget(_titled("Slide and heat map (wheel: zoom, drag: pan, double-click: fit)", self.slide_view))
        images.addWidget(side)
        images.setStretchFactor(0, 3)
        images.setStretchFactor(1, 1)
        images.setSizes([600, 200])

        self.heat_toggle = QCheckBox("Heat map")
        self.heat_toggle.setChecked(True)
        self.heat_toggle.setShortcut("H")
        self.heat_toggle.setToolTip("Show the heat map (H)")
        self.heat_toggle.toggled.connect(self.slide_view.set_layer_visible)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(opacity_percent)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("Heat-map opacity")
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
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity)
        controls.addWidget(HeatLegend(), 1)
        controls.addWidget(fit)
        controls.addWidget(actual)

        self.terms: dict[str, QLabel] = {}
        grid = QGridLayout()
        for column, (key, caption) in enumerate((("score", "Score A(x)"), ("threshold", "Threshold"),
                                                 ("l_d", "L_D (critic)"), ("l_r", "L_R (pixels)"),
                                                 ("l_l", "L_L (latent)"), ("model", "Model"))):
            label = QLabel(caption)
            label.setStyleSheet("color: palette(mid); font-size: 11px;")
            value = QLabel("–")
            value.setStyleSheet("font-size: 14px;")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(label, 0, column)
            grid.addWidget(value, 1, column)
            self.terms[key] = value
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: palette(mid);")

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(images, 1)
        layout.addLayout(controls)
        layout.addLayout(grid)
        layout.addWidget(self.status)

    def _apply_opacity(self, percent: int) -> None:
        self.slide_view.set_layer_opacity(percent / 100)
        self.opacity_changed.emit(percent)

    def _fit_all(self) -> None:
        for view in (self.slide_view, self.input_view, self.reconstruction_view):
            view.fit()

    # content

    def show_summary(self, summary: SlideSummary | None, *, keep_pictures: bool = False) -> None:
        """Show a slide's stored result; its pictures follow from `show_inspection`."""
        same_slide = summary is not None and self.summary is not None and summary.slide.id == self.summary.slide.id
        self.summary = summary
        if not (keep_pictures and same_slide):
            self.inspection = None
            for view in (self.slide_view, self.input_view, self.reconstruction_view):
                view.clear()
        self._show_text()

    def _show_text(self) -> None:
        summary = self.summary
        if summary is None:
            self.title.setText("No slide selected")
            for value in self.terms.values():
                value.setText("–")
            self.status.setText("")
            return
        slide, score = summary.slide, summary.score
        flag = flag_text(summary, self.threshold_offset)
        colour = "#c82828" if is_flagged(summary, self.threshold_offset) else "palette(text)"
        self.title.setText(f"{html.escape(slide.file_name)} — <span style='color:{colour}'>{flag}</span>")
        if score is None:
            for value in self.terms.values():
                value.setText("–")
        else:
            self.terms["score"].setText(f"{score.score:.4f}")
            threshold = f"{score.threshold:.4f}"
            if self.threshold_offset:
                threshold += f" {self.threshold_offset:+.2f}"
            self.terms["threshold"].setText(threshold)
            self.terms["l_d"].setText(f"{score.l_d:.4g}")
            self.terms["l_r"].setText(f"{score.l_r:.4g}")
            self.terms["l_l"].setText(f"{score.l_l:.4g}")
            self.terms["model"].setText(score.model_version)
        if slide.status is SlideStatus.REJECTED:
            self.status.setText(f"Rejected: {slide.reason}")
        elif score is None:
            self.status.setText("Waiting to be scored")
        elif self.inspection is None:
            self.status.setText(f"Computing the heat map and G(E(x)) with model {score.model_version}…")
        else:
            self.status.setText(self._inspection_note(self.inspection))
        if score is not None and score.warning and slide.status is SlideStatus.SCORED:
            self.status.setText(f"<span style='color:{CAUTION_COLOUR}'><b>Caution:</b> {html.escape(score.warning)}."
                                f"</span> {html.escape(self.status.text())}")

    def _inspection_note(self, inspection: Inspection) -> str:
        result = inspection.result
        tiles = result.tiling + ("; the side panels show the top-scoring tile" if len(result.cells) > 1 else "")
        note = f"Heat map and reconstruction recomputed with model {inspection.model_version} ({tiles})."
        if not inspection.matches_stored:
            note += f" Recomputed score {result.score:.4f} differs from the stored one."
        return note

    def show_inspection(self, inspection: Inspection) -> None:
        if self.summary is None or inspection.slide_id != self.summary.slide.id:
            return
        self.inspection = inspection
        top = inspection.result.views[inspection.result.top.index]
        self.slide_view.show_pixmaps(to_pixmap(inspection.image), to_pixmap(heat_layer(inspection.result.heat)))
        self.input_view.show_pixmaps(to_pixmap(top.model_input))
        self.reconstruction_view.show_pixmaps(to_pixmap(top.reconstruction))
        self._show_text()

    def show_failure(self, slide_id: int, message: str) -> None:
        """The slide could not be recomputed: show the stored heat-map picture if there is one."""
        if self.summary is None or slide_id != self.summary.slide.id:
            return
        score = self.summary.score
        stored = Path(score.heatmap_path) if score is not None and score.heatmap_path else None
        if stored is not None and stored.is_file():
            self.slide_view.show_pixmaps(QPixmap(str(stored)))
            self.status.setText(f"Showing the stored heat map (opacity fixed; no reconstruction): {message}")
        else:
            self.status.setText(f"Cannot show this slide: {message}")

    def set_threshold_offset(self, offset: float) -> None:
        self.threshold_offset = offset
        self._show_text()
