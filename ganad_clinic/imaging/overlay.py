"""The heat layer and overlays, and cell boxes, on fixed scales so that the same look means the
same thing on every slide.

Heat values come anchored to the model (0 = a residual no larger than normal cells show, 0.5 =
three times that; see model.scoring.ScoreBatch.heat), so they are never min-max scaled per slide
here. Where heat is 0 nothing is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganad_clinic.imaging.io import STRIP_PIXELS

HEAT_COLOUR = (255, 225, 0)
"""The heat layer's one colour; how much a pixel differs is its opacity. A bright yellow reads over
purple nuclei, pink red cells and pale background alike: the dark and red ends of a colour map
vanished on a stained nucleus, which is where a blast's evidence lies."""
OPAQUE_FROM = 1 / 9
"""The heat of a residual 1.25 times what normal cells show ((1.25 - 1) / (1.25 + 1)), from which
the heat layer is drawn at full opacity; below it the layer fades in from nothing at heat 0, so the
contour of the evidence has no jagged edge. A blast crop's residual lies mostly 1.05 to 1.5 times
the normal reference (heat 0.02 to 0.2): a scale full only at twice the reference left it faint."""

FLAGGED_COLOUR = (213, 94, 0)  # Okabe-Ito vermillion and blue: told apart with any colour vision
NORMAL_COLOUR = (0, 114, 178)
LABEL_TEXT_COLOUR = (255, 255, 255)


def heat_opacity(heat: np.ndarray) -> np.ndarray:
    """How opaque the heat layer is, in [0, 1]: 0 where heat is 0, rising to 1 at OPAQUE_FROM."""
    return np.clip(np.asarray(heat, dtype=np.float32) / OPAQUE_FROM, 0.0, 1.0)


def heat_rgba(heat: np.ndarray) -> np.ndarray:
    """The heat layer as RGBA uint8 (H x W x 4): HEAT_COLOUR at `heat_opacity`."""
    heat = np.asarray(heat, dtype=np.float32)
    colour = np.broadcast_to(np.array(HEAT_COLOUR, dtype=np.uint8), heat.shape + (3,))
    return np.dstack([colour, (heat_opacity(heat) * 255).round().astype(np.uint8)])


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured heat map over an image (H x W x 3 float in [0, 1] or uint8).

    The heat map is resized to the image; where heat is 0 the image is left as it is, and from
    OPAQUE_FROM up the colour covers `alpha` of it (`heat_opacity`). Works in float32: a 2048-px
    overlay takes about 50 MB a copy.
    """
    base = np.asarray(image)
    base = base.astype(np.float32) / 255.0 if base.dtype == np.uint8 else base.astype(np.float32)
    height, width = base.shape[:2]
    heat_image = Image.fromarray(np.asarray(heat, dtype=np.float32))
    resized = np.asarray(heat_image.resize((width, height), Image.Resampling.BILINEAR))
    colour = np.array(HEAT_COLOUR, dtype=np.float32) / 255.0
    weight = alpha * heat_opacity(resized)[..., None]
    blended = (1 - weight) * base
    blended += weight * colour
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


def display_pixels(image: np.ndarray, max_side: int) -> np.ndarray:
    """An H x W x 3 image (uint8, uint16 or float in [0, 1]) as uint8 with its longer side at most
    `max_side`, made a strip at a time so that a large field never exists whole as Pillow's
    4-byte pixels or as floats: box means of whole blocks first, then a bilinear thumbnail."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    factor = max(1, math.floor(max(image.shape[:2]) / max_side))
    rows = max(factor, STRIP_PIXELS // max(1, image.shape[1]) // factor * factor)
    strips = [_reduced_strip(image[top:top + rows], factor) for top in range(0, image.shape[0], rows)]
    picture = Image.fromarray(np.concatenate(strips, axis=0))
    picture.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return np.asarray(picture)


def _reduced_strip(strip: np.ndarray, factor: int) -> np.ndarray:
    if strip.dtype == np.uint16:
        strip = (strip >> 8).astype(np.uint8)
    elif strip.dtype != np.uint8:
        strip = (np.clip(strip, 0.0, 1.0) * 255).round().astype(np.uint8)
    picture = Image.fromarray(np.ascontiguousarray(strip))
    return np.asarray(picture.reduce(factor) if factor > 1 else picture)


class CellBox(NamedTuple):
    """A cell to outline: its number as shown to the user, its box in slide pixels and whether it
    is flagged (its stored flag: the colour never decides a flag again)."""

    number: int
    x: int
    y: int
    width: int
    height: int
    flagged: bool


def cell_colour(flagged: bool) -> tuple[int, int, int]:
    """The one colour rule for cell boxes: vermillion when flagged, blue otherwise. Two colours
    only: scores may be z-scores of either sign, so a "within x % of the threshold" band would
    mean nothing."""
    return FLAGGED_COLOUR if flagged else NORMAL_COLOUR


def picture_rect(x: int, y: int, width: int, height: int, scale: float, picture_width: int,
                 picture_height: int) -> tuple[int, int, int, int] | None:
    """The part on a picture (`scale` picture pixels per slide pixel) of a box in slide pixels, as
    (left, top, right, bottom), at least a pixel wide and high; None when it lies off the picture.
    A box centred on a cell near the edge reaches beyond the slide: only its part on it is kept."""
    left, top = max(0, round(x * scale)), max(0, round(y * scale))
    if left >= picture_width or top >= picture_height:
        return None
    right = min(picture_width, max(left + 1, round((x + width) * scale)))
    bottom = min(picture_height, max(top + 1, round((y + height) * scale)))
    return left, top, right, bottom


def draw_cells(picture: np.ndarray, boxes: Iterable[CellBox], scale: float) -> np.ndarray:
    """A copy of `picture` (H x W x 3 uint8) with each box outlined in its `cell_colour` and its
    number on a label of that colour inside the top-left corner of the box's part on the picture
    (a box centred on a cell near the edge reaches beyond it); `scale` is picture pixels per slide
    pixel (a picture shrunk for display). Any tuple in CellBox's order will do."""
    canvas = Image.fromarray(np.ascontiguousarray(picture, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    line = 2 if max(canvas.size) < 1024 else 3
    font = ImageFont.load_default(size=10 + 2 * line)
    for number, x, y, width, height, flagged in boxes:
        colour = cell_colour(flagged)
        left, top = round(x * scale), round(y * scale)
        right, bottom = max(left, round((x + width) * scale) - 1), max(top, round((y + height) * scale) - 1)
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
        text = str(number)
        corner_left, corner_top = max(0, left), max(0, top)
        at = (corner_left + line + 2, corner_top + line + 1)
        _, _, text_right, text_bottom = draw.textbbox(at, text, font=font)
        draw.rectangle((corner_left, corner_top, text_right + 2, text_bottom + 1), fill=colour)
        draw.text(at, text, fill=LABEL_TEXT_COLOUR, font=font)
    return np.array(canvas)
