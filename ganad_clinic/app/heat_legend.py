"""The heat map's colour bar, labelled on the model-anchored scale (the same colour means the same
evidence on every slide: 0.5 is a residual as strong as the top 1 % of normal pixels)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from ganad_clinic.app.images import CLEAR_BELOW, to_pixmap
from ganad_clinic.imaging.overlay import legend

TICKS = ((0.0, "0"), (CLEAR_BELOW, f"{CLEAR_BELOW:g}"), (0.5, "0.5"), (1.0, "1"))
CAPTION = "0.5 = top 1 % of normal pixels"


class HeatLegend(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bar = to_pixmap(legend(256, 12))
        self.setMinimumSize(320, 34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Heat-map scale, anchored to the model: below 0.25 nothing is drawn; 0.5 marks a residual "
                        "as strong as the top 1 % of pixels in the model's validation-normal images.")

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
