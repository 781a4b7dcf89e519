"""An image view with wheel zoom, drag to pan and an optional see-through layer on top."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

ZOOM_STEP = 1.25
MAX_SCALE = 64.0


class ZoomView(QGraphicsView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.base = QGraphicsPixmapItem()
        self.layer = QGraphicsPixmapItem()
        self.layer.setZValue(1)
        for item in (self.base, self.layer):
            item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            self.scene().addItem(item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(self.palette().dark())
        self._fitted = True

    def show_pixmaps(self, base: QPixmap, layer: QPixmap | None = None) -> None:
        self.base.setPixmap(base)
        self.layer.setPixmap(layer if layer is not None else QPixmap())
        self.scene().setSceneRect(self.base.boundingRect())
        self.fit()

    def clear(self) -> None:
        self.show_pixmaps(QPixmap())

    def set_layer_opacity(self, opacity: float) -> None:
        self.layer.setOpacity(opacity)

    def set_layer_visible(self, visible: bool) -> None:
        self.layer.setVisible(visible)

    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self._fitted = True
        if not self.base.pixmap().isNull():
            self.fitInView(self.base, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self, factor: float) -> None:
        factor = min(factor, MAX_SCALE / max(self.scale_factor, 1e-9))
        self._fitted = False
        self.scale(factor, factor)

    def actual_size(self) -> None:
        self._fitted = False
        self.resetTransform()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom(ZOOM_STEP ** steps)
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()
