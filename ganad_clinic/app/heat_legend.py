"""The heat map's colour bar, labelled on the model-anchored scale (the same colour means the same
evidence on every slide): 0 where a cell differs from its reconstruction no more than normal cells
do, the other marks multiples of that (model.scoring.heat_of_ratio)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from ganad_clinic.app.images import heat_layer, to_pixmap
from ganad_clinic.model.scoring import heat_of_ratio

TICKS = ((0.0, "0"), (heat_of_ratio(2), "2×"), (heat_of_ratio(3), "3×"), (heat_of_ratio(7), "7×"))
CAPTION = "0 = as in normal cells"
TOOLTIP = ("Heat-map scale, the same on every slide: how far the cell differs from the model's "
           "reconstruction of it, in multiples of what normal cells show (the top 1 % of pixels in the "
           "model's validation-normal images). Nothing is drawn where a cell differs no more than "
           "normal cells do; 2× and more is drawn at full strength.")


class HeatLegend(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bar = to_pixmap(heat_layer(np.repeat(np.linspace(0.0, 1.0, 256)[None, :], 12, axis=0)))  # as drawn
        self.setMinimumSize(320, 34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(TOOLTIP)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        caption_width = metrics.horizontalAdvance(CAPTION) + 12
        left, width = 6.0, max(10.0, self.width() - 12.0 - caption_width)
        painter.drawPixmap(QRectF(left, 2, width, 12), self._bar, QRectF(self._bar.rect()))
        painter.setPen(self.palette().text().color())
        for value, label in TICKS:
            x = left + width * value
            painter.drawLine(int(x), 14, int(x), 18)
            text_width = metrics.horizontalAdvance(label)
            start = min(max(0.0, x - text_width / 2), left + width - text_width)
            painter.drawText(QRectF(start, 18, text_width + 2, 16), Qt.AlignmentFlag.AlignLeft, label)
        painter.drawText(QRectF(left + width + 12, 0, caption_width, 16), Qt.AlignmentFlag.AlignLeft, CAPTION)
        painter.end()
