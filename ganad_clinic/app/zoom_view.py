"""An image view with wheel zoom, drag to pan, an optional see-through layer on top, and outlined,
numbered boxes (a slide's cells) that a click picks and the view can zoom to."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

ZOOM_STEP = 1.25
MAX_SCALE = 64.0
BOX_LINE = 2.0
CHOSEN_LINE = 4.0
"""Box outlines in screen pixels (cosmetic pens), whatever the zoom; the chosen box is drawn thicker."""
ZOOM_MARGIN = 0.6
"""Zooming to a box shows this fraction of its size around it on each side: the cell and its neighbourhood."""
LABEL_TEXT = QColor(255, 255, 255)
MAX_LABELLED_BOXES = 200
"""Boxes are numbered only when there are at most this many: thousands of labels (a grid of tiles)
would stall every repaint and hide the slide under them."""


@dataclass(frozen=True)
class Box:
    """A box to outline, in scene (picture) pixels, with its label and colour."""

    rect: QRectF
    label: str
    colour: QColor


class _Label(QGraphicsItem):
    """A box's number, white on the box's colour, the same size on screen at any zoom."""

    def __init__(self, text: str, colour: QColor, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.text, self.colour = text, colour
        self.font = QFont()
        self.font.setPixelSize(12)
        self.font.setBold(True)
        width = QFontMetricsF(self.font).horizontalAdvance(text)
        self._rect = QRectF(0, 0, width + 6, 16)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.fillRect(self._rect, self.colour)
        painter.setPen(LABEL_TEXT)
        painter.setFont(self.font)
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)


class ZoomView(QGraphicsView):
    clicked = Signal(QPointF)  # a click without a drag, in scene pixels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.base = QGraphicsPixmapItem()
        self.layer = QGraphicsPixmapItem()
        self.layer.setZValue(1)
        for item in (self.base, self.layer):
            item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            self.scene().addItem(item)
        self.message = QGraphicsSimpleTextItem()
        self.message.setBrush(self.palette().light())
        self.scene().addItem(self.message)
        self.boxes: list[QGraphicsRectItem] = []
        self._boxes_visible = True
        self._chosen: int | None = None
        self._pressed_at: QPoint | None = None
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(self.palette().dark())
        self._fitted = True

    def show_pixmaps(self, base: QPixmap, layer: QPixmap | None = None) -> None:
        """Show a picture (and a layer over it, stretched to the picture: a heat map may be a pixel
        short of it); any boxes and message of the previous picture go."""
        self.show_boxes([])
        self.message.setText("")
        self.base.setPixmap(base)
        layer = layer if layer is not None else QPixmap()
        self.layer.setPixmap(layer)
        if not layer.isNull() and layer.size() != base.size():
            self.layer.setTransform(QTransform.fromScale(base.width() / layer.width(), base.height() / layer.height()))
        else:
            self.layer.setTransform(QTransform())
        self.scene().setSceneRect(self.base.boundingRect())
        self.fit()

    def clear(self) -> None:
        self.show_pixmaps(QPixmap())

    def show_message(self, text: str) -> None:
        """No picture, a line of text instead (why there is no picture)."""
        self.show_pixmaps(QPixmap())
        self.message.setText(text)
        self.scene().setSceneRect(self.message.boundingRect())
        self.resetTransform()

    def set_layer_opacity(self, opacity: float) -> None:
        self.layer.setOpacity(opacity)

    def set_layer_visible(self, visible: bool) -> None:
        self.layer.setVisible(visible)

    # boxes

    def show_boxes(self, boxes: list[Box]) -> None:
        """Outline these boxes over the picture (replacing any shown), in their order (index = place),
        numbered when there are at most MAX_LABELLED_BOXES of them."""
        for item in self.boxes:
            self.scene().removeItem(item)
        self.boxes = []
        self._chosen = None
        labelled = len(boxes) <= MAX_LABELLED_BOXES
        for box in boxes:
            item = QGraphicsRectItem(box.rect)
            item.setPen(self._pen(box.colour, BOX_LINE))
            item.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            item.setZValue(2)
            item.setVisible(self._boxes_visible)
            if labelled:
                label = _Label(box.label, box.colour, item)
                # a box may start above or left of the picture (a tile centred on a cell at its edge)
                label.setPos(max(0.0, box.rect.left()), max(0.0, box.rect.top()))
            self.scene().addItem(item)
            self.boxes.append(item)

    def set_boxes_visible(self, visible: bool) -> None:
        self._boxes_visible = visible
        for item in self.boxes:
            item.setVisible(visible)

    def choose_box(self, place: int | None) -> None:
        """Draw the box at this place thicker, above the others (None: no box is chosen)."""
        if self._chosen is not None and self._chosen < len(self.boxes):
            item = self.boxes[self._chosen]
            item.setPen(self._pen(item.pen().color(), BOX_LINE))
            item.setZValue(2)
        self._chosen = place
        if place is not None:
            item = self.boxes[place]
            item.setPen(self._pen(item.pen().color(), CHOSEN_LINE))
            item.setZValue(3)

    @staticmethod
    def _pen(colour: QColor, width: float) -> QPen:
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        return pen

    # zoom

    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self._fitted = True
        if not self.base.pixmap().isNull():
            self.fitInView(self.base, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_to(self, rect: QRectF) -> None:
        """Fill the view with this rectangle and ZOOM_MARGIN of its size around it."""
        margin_x, margin_y = rect.width() * ZOOM_MARGIN, rect.height() * ZOOM_MARGIN
        self._fitted = False
        self.fitInView(rect.adjusted(-margin_x, -margin_y, margin_x, margin_y), Qt.AspectRatioMode.KeepAspectRatio)

    def visible_rect(self) -> QRectF:
        """The part of the scene the view shows now."""
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def zoom(self, factor: float) -> None:
        factor = min(factor, MAX_SCALE / max(self.scale_factor, 1e-9))
        self._fitted = False
        self.scale(factor, factor)

    def actual_size(self) -> None:
        self._fitted = False
        self.resetTransform()

    # events

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom(ZOOM_STEP ** steps)
        event.accept()

    def mousePressEvent(self, event) -> None:
        self._pressed_at = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        pressed, self._pressed_at = self._pressed_at, None
        at = event.position().toPoint()
        if pressed is not None and (at - pressed).manhattanLength() < QApplication.startDragDistance():
            self.clicked.emit(self.mapToScene(at))

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()
