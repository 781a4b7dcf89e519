"""The zoom view's boxes: numbered on the picture even when they reach beyond it, not numbered by
the thousand."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QPixmap

from ganad_clinic.app.zoom_view import MAX_LABELLED_BOXES, Box, ZoomView


@pytest.fixture
def view(qtbot) -> ZoomView:
    view = ZoomView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    picture = QPixmap(200, 100)
    picture.fill(QColor(0, 0, 0))
    view.show_pixmaps(picture)
    return view


def test_a_box_reaching_beyond_the_picture_keeps_its_number_on_the_picture(view):
    red = QColor(200, 0, 0)
    view.show_boxes([Box(QRectF(-12, -7, 40, 40), "1", red), Box(QRectF(150, -3, 40, 40), "2", red),
                     Box(QRectF(-5, 60, 40, 40), "3", red), Box(QRectF(20, 30, 40, 40), "4", red)])

    positions = [box.childItems()[0].pos() for box in view.boxes]
    assert positions == [QPointF(0, 0), QPointF(150, 0), QPointF(0, 60), QPointF(20, 30)]


def test_many_boxes_are_outlined_without_numbers(view):
    colour = QColor(0, 0, 200)
    rects = [QRectF(column * 2, row * 2, 2, 2) for row in range(15) for column in range(15)]  # 225 boxes
    assert len(rects) > MAX_LABELLED_BOXES

    view.show_boxes([Box(rect, str(place + 1), colour) for place, rect in enumerate(rects)])

    assert len(view.boxes) == len(rects)
    assert all(box.childItems() == [] for box in view.boxes)
    view.show_boxes([Box(rect, str(place + 1), colour) for place, rect in enumerate(rects[:MAX_LABELLED_BOXES])])
    assert all(len(box.childItems()) == 1 for box in view.boxes)
