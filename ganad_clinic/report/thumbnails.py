"""Small JPEG thumbnails of slides and heat maps for the report, a field's overview with its cells
boxed and its cells' crops, or a placeholder when a file is missing or unreadable.

Originals are never embedded: a few hundred full-size images would make a huge PDF and can
exhaust memory; a thumbnail sized to its box also can never be too large for a page frame.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.platypus import Flowable
from reportlab.platypus import Image as PdfImage

from ganad_clinic.imaging.overlay import CellBox, draw_cells, picture_rect

THUMBNAIL_PIXELS = 320
"""Longer side of an embedded thumbnail: sharp at about 200 dpi in a 4 cm box."""
OVERVIEW_PIXELS = 512
"""Longer side of a field's overview: the boxes' numbers (drawn at a fixed pixel size) stay legible
in a 9 cm box."""
CROP_PIXELS = 200
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
    rgb = _read_rgb(path, max_side)
    return None if rgb is None else _jpeg(rgb)


@dataclass(frozen=True)
class FieldPictures:
    """A field's overview with every cell boxed and numbered, and the crops asked for."""

    overview: Thumbnail
    crops: tuple[Thumbnail | None, ...]  # in the order asked; None where a box lies outside the picture


def field_pictures(heatmap_path: str | None, slide_width: int, boxes: Sequence[CellBox],
                   crops: Sequence[CellBox]) -> FieldPictures | None:
    """The overview and crops, both cut from the heat-map picture at `heatmap_path` (the slide
    shrunk with its heat blended over it), so the crops show the heat too; None when there is no
    readable picture there. Boxes are in slide pixels, `slide_width` wide."""
    picture = _read_rgb(heatmap_path)
    if picture is None:
        return None
    scale = picture.width / slide_width
    overview = picture.copy()
    overview.thumbnail((OVERVIEW_PIXELS, OVERVIEW_PIXELS), Image.Resampling.LANCZOS)
    boxed = Image.fromarray(draw_cells(np.asarray(overview), boxes, overview.width / slide_width))
    return FieldPictures(_jpeg(boxed), tuple(_crop(picture, box, scale) for box in crops))


def image_box(path: str | None, size: float, missing_text: str, font: str) -> Flowable:
    """A flowable at most `size` points square: the image's thumbnail, or a labelled placeholder."""
    thumbnail = make_thumbnail(path)
    if thumbnail is None:
        return placeholder(size, missing_text, font)
    return picture_box(thumbnail, size)


def picture_box(thumbnail: Thumbnail, size: float) -> PdfImage:
    """`thumbnail` scaled to fit `size` points square, so it can never outgrow a page frame."""
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


def _read_rgb(path: str | None, max_side: int | None = None) -> Image.Image | None:
    """The picture at `path`, upright, in RGB: whole (heat-map pictures are at most 2048 px), or
    shrunk to at most `max_side` pixels a side (a JPEG decoded at a reduced scale); None when there
    is no readable image there."""
    if not path:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if max_side is not None:
                    image.draft("RGB", (max_side, max_side))
                upright = ImageOps.exif_transpose(image)
                if max_side is not None:
                    upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                return _to_rgb(upright)
    except _READ_ERRORS:
        return None


def _crop(picture: Image.Image, box: CellBox, scale: float) -> Thumbnail | None:
    rect = picture_rect(box.x, box.y, box.width, box.height, scale, picture.width, picture.height)
    if rect is None:
        return None
    crop = picture.crop(rect)
    crop.thumbnail((CROP_PIXELS, CROP_PIXELS), Image.Resampling.LANCZOS)
    return _jpeg(crop)


def _jpeg(rgb: Image.Image) -> Thumbnail:
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumbnail(buffer.getvalue(), rgb.width, rgb.height)


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
