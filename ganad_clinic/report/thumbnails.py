"""Small JPEG thumbnails of slides and heat maps for the report, or a placeholder when a file is
missing or unreadable.

Originals are never embedded: a few hundred full-size images would make a huge PDF and can
exhaust memory; a thumbnail sized to its box also can never be too large for a page frame.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.platypus import Flowable
from reportlab.platypus import Image as PdfImage

THUMBNAIL_PIXELS = 320
"""Longer side of an embedded thumbnail: sharp at about 200 dpi in a 4 cm box."""
JPEG_QUALITY = 85
_SIXTEEN_BIT_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I"})
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError, Image.DecompressionBombError)


@dataclass(frozen=True)
class Thumbnail:
    jpeg: bytes
    width: int
    height: int


def make_thumbnail(path: str | None, max_side: int = THUMBNAIL_PIXELS) -> Thumbnail | None:
    """A JPEG of the image at `path`, at most `max_side` pixels on its longer side, upright and on
    white where it was transparent; None when there is no readable image there."""
    if not path:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((max_side, max_side), Image.LANCZOS)
                rgb = _to_rgb(upright)
    except _READ_ERRORS:
        return None
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumbnail(buffer.getvalue(), rgb.width, rgb.height)


def image_box(path: str | None, size: float, missing_text: str, font: str) -> Flowable:
    """A flowable at most `size` points square: the image's thumbnail, or a labelled placeholder."""
    thumbnail = make_thumbnail(path)
    if thumbnail is None:
        return placeholder(size, missing_text, font)
    scale = size / max(thumbnail.width, thumbnail.height)
    return PdfImage(io.BytesIO(thumbnail.jpeg), width=thumbnail.width * scale, height=thumbnail.height * scale)


def placeholder(size: float, text: str, font: str) -> Drawing:
    drawing = Drawing(size, size)
    drawing.add(Rect(0.5, 0.5, size - 1, size - 1, fillColor=colors.HexColor("#f2f2f2"),
                     strokeColor=colors.HexColor("#999999"), strokeWidth=0.6, strokeDashArray=[3, 2]))
    for line, words in enumerate(text.split("\n")):
        drawing.add(String(size / 2, size / 2 + 4 - 10 * line, words, fontName=font, fontSize=7.5,
                           textAnchor="middle", fillColor=colors.HexColor("#555555")))
    return drawing


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_GRAY_MODES:
        gray = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        image = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    return image.convert("RGB")
