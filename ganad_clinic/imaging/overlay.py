"""Heat-map colours and overlays, on one fixed scale so the same colour means the same evidence.

Heat values come anchored to the model (0.5 = as strong as the top 1 % of normal pixels), so they
are never min-max scaled per slide here.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ganad_clinic.imaging.io import STRIP_PIXELS

# Anchors of an inferno-like map: dark (no evidence) through red to pale yellow (strong evidence).
_ANCHORS = np.array([
    [0.00, 0, 0, 4], [0.25, 87, 16, 110], [0.50, 188, 55, 84], [0.75, 249, 142, 9], [1.00, 252, 255, 164],
], dtype=np.float64)


def colorize(heat: np.ndarray) -> np.ndarray:
    """Map heat in [0, 1] to RGB uint8 (H x W x 3)."""
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    channels = [np.interp(heat, _ANCHORS[:, 0], _ANCHORS[:, c]).round().astype(np.uint8) for c in (1, 2, 3)]
    return np.stack(channels, axis=-1)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured heat map over an image (H x W x 3 float in [0, 1] or uint8).

    The heat map is resized to the image; pixels with little evidence (heat < 0.25) stay clear so
    the cell remains visible. Works in float32: a 2048-px overlay takes about 50 MB a copy.
    """
    base = np.asarray(image)
    base = base.astype(np.float32) / 255.0 if base.dtype == np.uint8 else base.astype(np.float32)
    height, width = base.shape[:2]
    resized = np.asarray(Image.fromarray(np.asarray(heat, dtype=np.float32)).resize((width, height), Image.BILINEAR))
    colour = colorize(resized).astype(np.float32) / 255.0
    weight = alpha * np.clip((resized - 0.25) / 0.25, 0.0, 1.0)[..., None]
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
    picture.thumbnail((max_side, max_side), Image.BILINEAR)
    return np.asarray(picture)


def _reduced_strip(strip: np.ndarray, factor: int) -> np.ndarray:
    if strip.dtype == np.uint16:
        strip = (strip >> 8).astype(np.uint8)
    elif strip.dtype != np.uint8:
        strip = (np.clip(strip, 0.0, 1.0) * 255).round().astype(np.uint8)
    picture = Image.fromarray(np.ascontiguousarray(strip))
    return np.asarray(picture.reduce(factor) if factor > 1 else picture)


def legend(width: int = 256, height: int = 16) -> np.ndarray:
    """A horizontal colour bar from heat 0 to 1 (the threshold-anchored scale)."""
    return np.repeat(colorize(np.linspace(0.0, 1.0, width))[None, :, :], height, axis=0)
