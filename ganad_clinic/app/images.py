"""numpy pictures to Qt images."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def to_pixmap(image: np.ndarray) -> QPixmap:
    """An H x W x 3 (RGB) or H x W x 4 (RGBA) array, float in [0, 1] or uint8."""
    pixels = np.ascontiguousarray(to_uint8(image))
    height, width, channels = pixels.shape
    image_format = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
    qimage = QImage(pixels.data, width, height, channels * width, image_format)
    return QPixmap.fromImage(qimage.copy())  # copy: the QImage must not outlive `pixels`
