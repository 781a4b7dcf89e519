"""Heat-map files: the threshold-anchored heat blended over the slide, saved as PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.imaging.overlay import overlay

MAX_SIDE = 2048
"""Heat-map files are scaled down to this longer side; a screen shows no more, a disk fills less."""


def heatmap_name(slide_id: int, model_version_id: int) -> str:
    """One file per (slide, model): a re-score with another model never overwrites the first."""
    return f"slide-{slide_id}-model-{model_version_id}.png"


def write_heatmap(path: str | os.PathLike[str], image: np.ndarray, heat: np.ndarray) -> Path:
    """Write the overlay of `heat` (same rows and columns as `image`) on `image` to `path`,
    atomically, so a crash never leaves a half-written PNG under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(overlay(image, heat))
    if max(picture.size) > MAX_SIDE:
        picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.BILINEAR)
    partial = path.with_name(f".{path.name}.partial")
    picture.save(partial, format="PNG")
    os.replace(partial, path)
    return path
