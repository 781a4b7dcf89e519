"""Heat-map colours and overlays, on one fixed scale so the same colour means the same evidence.

Heat values come anchored to the model (0.5 = as strong as the top 1 % of normal pixels), so they
are never min-max scaled per slide here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Anchors of an inferno-like map: dark (no evidence) through red to pale yellow (strong evidence).
_ANCHORS = np.array([
    [0.00, 0, 0, 4], [0.25, 87, 16, 110], [0.50, 188, 55, 84], [0.75, 249, 142, 9], [1.00, 252, 255, 164],
], dtype=np.float64)


def colorize(heat: np.ndarray) -> np.ndarray:
    """Map heat in [0, 1] to RGB uint8 (H x W x 3)."""
    heat = np.clip(np.asarray(heat, dtype=np.float64), 0.0, 1.0)
    channels = [np.interp(heat, _ANCHORS[:, 0], _ANCHORS[:, c]) for c in (1, 2, 3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured heat map over an image (H x W x 3 float in [0, 1] or uint8).

    The heat map is resized to the image; pixels with little evidence (heat < 0.25) stay clear so
    the cell remains visible.
    """
    base = np.asarray(image)
    base = base.astype(np.float64) / 255.0 if base.dtype == np.uint8 else base.astype(np.float64)
    height, width = base.shape[:2]
    resized = np.asarray(Image.fromarray(np.asarray(heat, dtype=np.float32)).resize((width, height), Image.BILINEAR))
    colour = colorize(resized).astype(np.float64) / 255.0
    weight = alpha * np.clip((resized - 0.25) / 0.25, 0.0, 1.0)[..., None]
    return ((1 - weight) * base + weight * colour).clip(0, 1).__mul__(255).round().astype(np.uint8)


def legend(width: int = 256, height: int = 16) -> np.ndarray:
    """A horizontal colour bar from heat 0 to 1 (the threshold-anchored scale)."""
    return np.repeat(colorize(np.linspace(0.0, 1.0, width))[None, :, :], height, axis=0)
