"""The heat layer's scale bar, labelled on the model-anchored scale (the same look means the same
evidence on every slide): clear where a cell differs from its reconstruction no more than normal
cells do, the other marks multiples of that (model.scoring.heat_of_ratio)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from ganad_clinic.app.images import to_pixmap
from ganad_clinic.imaging.overlay import heat_rgba
from ganad_clinic.model.scoring import heat_of_ratio

SPAN = heat_of_ratio(1.5)
"""The bar shows heat from 0 to that of 1.5 times what normal cells show (drawn fully from 1.25 times)."""
TICKS = ((1.0, "1×"), (1.1, "1.1×"), (1.25, "1.25×"), (1.5, "1.5×"))  # residual / what normal cells show
CAPTION = "× what normal cells show"
TOOLTIP = ("Heat-map scale, the same on every slide: how far the cell differs from the model's "
           "reconstruction of it, in multiples of what normal cells show (the top 1 % of pixels in the "
           "model's validation-normal images). Nothing is drawn where a cell differs no more than "
           "normal cells do; 1.25 times and more is drawn at full strength.")


MIN_BAR_WIDTH = 170
"""The bar's narrowest with its four tick labels apart."""


class HeatLegend(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bar = to_pixmap(heat_rgba(np.repeat(np.linspace(0.0, SPAN, 256)[None, :], 12, axis=0)))  # as drawn
        self.setMinimumSize(220, 34)  # the window fits 1280 px with the queue beside it
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(TOOLTIP)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        caption_width = metrics.horizontalAdvance(CAPTION) + 12
        if self.width() - caption_width < MIN_BAR_WIDTH:  # narrow: the bar and its ticks; the caption is in the tooltip
            caption_width = 0
        left, width = 6.0, max(10.0, self.width() - 12.0 - caption_width)
        painter.drawPixmap(QRectF(left, 2, width, 12), self._bar, QRectF(self._bar.rect()))
        painter.setPen(self.palette().text().color())
        for ratio, label in TICKS:
            x = left + width * heat_of_ratio(ratio) / SPAN
            painter.drawLine(int(x), 14, int(x), 18)
            text_width = metrics.horizontalAdvance(label)
            start = min(max(0.0, x - text_width / 2), left + width - text_width)
            painter.drawText(QRectF(start, 18, text_width + 2, 16), Qt.AlignmentFlag.AlignLeft, label)
        if caption_width:
            painter.drawText(QRectF(left + width + 12, 0, caption_width, 16), Qt.AlignmentFlag.AlignLeft, CAPTION)
        painter.end()
