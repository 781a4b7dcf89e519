"""A small live plot of the training losses (QPainter, no plotting library)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SERIES = (("ae", "autoencoder", QColor(31, 119, 180)), ("d", "critic", QColor(214, 39, 40)),
          ("g", "generator", QColor(44, 160, 44)))
MARGIN = 46


class LossPlot(QWidget):
    """Each loss against the training step, every series on the same autoscaled axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {key: [] for key, _, _ in SERIES}
        self.total_steps = 1
        self.setMinimumSize(320, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def clear(self, total_steps: int) -> None:
        self.steps.clear()
        for values in self.values.values():
            values.clear()
        self.total_steps = max(1, total_steps)
        self.update()

    def add(self, step: int, losses: dict[str, float]) -> None:
        self.steps.append(step)
        for key, values in self.values.items():
            values.append(float(losses.get(key, float("nan"))))
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        area = QRectF(MARGIN, 8, max(1, self.width() - MARGIN - 8), max(1, self.height() - MARGIN))
        painter.setPen(QPen(self.palette().text().color(), 1))
        painter.drawRect(area)
        finite = [value for values in self.values.values() for value in values if value == value]
        low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        painter.drawText(QRectF(0, area.top() - 6, MARGIN - 4, 14), Qt.AlignmentFlag.AlignRight, f"{high:.3g}")
        painter.drawText(QRectF(0, area.bottom() - 8, MARGIN - 4, 14), Qt.AlignmentFlag.AlignRight, f"{low:.3g}")
        painter.drawText(QRectF(area.left(), area.bottom() + 2, area.width(), 14), Qt.AlignmentFlag.AlignRight,
                         f"step {self.total_steps}")

        def point(step: int, value: float) -> QPointF:
            x = area.left() + area.width() * step / self.total_steps
            y = area.bottom() - area.height() * (value - low) / (high - low)
            return QPointF(x, y)

        legend_x = area.left() + 6
        for key, label, colour in SERIES:
            path = QPainterPath()
            points = [point(step, value) for step, value in zip(self.steps, self.values[key]) if value == value]
            for index, position in enumerate(points):
                if index == 0:
                    path.moveTo(position)
                else:
                    path.lineTo(position)
            painter.setPen(QPen(colour, 1.5))
            painter.drawPath(path)
            painter.drawText(QPointF(legend_x, area.bottom() + 26), label)
            legend_x += painter.fontMetrics().horizontalAdvance(label) + 16
        painter.end()
