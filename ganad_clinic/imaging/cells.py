"""Finding the white cells of a stained blood-smear field by their nuclei.

The model learns from ALL-IDB2-style crops, each cut from a field centred on one white cell. A field
is screened the same way: a tile centred on each white cell found here (see imaging.tiling). Nuclei
are what May-Grünwald-Giemsa staining colours violet: bluer than red, and far darker in green than
the background; red cells stay redder than blue and the pale cytoplasm keeps its green.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ganad_clinic.imaging.io import STRIP_PIXELS, pixels_to_float

CHROMATIN_GREEN = 0.6
"""A chromatin pixel's green is below this fraction of the background's green (its 99th percentile)."""

MIN_NUCLEUS_RADIUS = 0.05
"""The smallest nucleus counted, as a radius in crop sides: 13 px in a 257-px crop, well below a
lymphocyte's nucleus and well above a platelet or a stain speck."""

SAME_CELL = 0.2
"""Pieces of chromatin closer than this many crop sides are one cell's (the lobes of a
neutrophil's nucleus, a nucleus cut by a cleft or a pale band): about a cell's diameter in a crop."""

SEARCH_MAX_PIXELS = 8_000_000
"""Fields of up to this many pixels are searched at full resolution (an ALL-IDB1 field has 5 Mpx);
a larger one on a copy shrunk by the smallest whole factor that brings it under. The search
takes about 30 bytes a pixel it looks at (a float copy, masks, labels), so a field near the
pixel cap (1e8) would need 3 GB at full resolution and needs about 250 MB this way; a crop is
then still 86 px or more across, a nucleus 4 px or more in radius."""



def chromatin_mask(image: np.ndarray) -> np.ndarray:
    """Pixels coloured like stained chromatin in an H x W x 3 (or more channels) colour image of
    any non-negative value scale."""
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an H x W x 3 colour image, got shape {image.shape}")
    rgb = np.asarray(image, dtype=np.float32)
    background_green = np.percentile(rgb[..., 1], 99)
    return (rgb[..., 2] > rgb[..., 0]) & (rgb[..., 1] < CHROMATIN_GREEN * background_green)


def white_cell_centres(image: np.ndarray, cell_scale: float) -> list[tuple[float, float]]:
    """(row, column) centres of the white cells' nuclei in an H x W x 3 image, largest first.

    `cell_scale` is the side in this image's pixels of a crop framing one cell (257 for ALL-IDB1 at
    full resolution). Specks are opened away first; pieces closer than SAME_CELL crop sides are
    joined (at their area-weighted centre), and a nucleus must then cover at least a disc of
    MIN_NUCLEUS_RADIUS crop sides.
    """
    if cell_scale <= 0:
        raise ValueError(f"cell_scale must be positive, got {cell_scale}")
    if image.ndim != 3:
        raise ValueError(f"expected an H x W x 3 colour image, got shape {image.shape}")
    factor = search_factor(image.shape[0], image.shape[1])
    if factor == 1:
        return _nucleus_centres(pixels_to_float(image), cell_scale)
    centres = _nucleus_centres(shrink(image, factor), cell_scale / factor)
    middle = (factor - 1) / 2  # a block's centre, in the field's pixels, from its first pixel
    return [(row * factor + middle, col * factor + middle) for row, col in centres]


def search_factor(height: int, width: int) -> int:
    """The whole factor a field is shrunk by before its cells are searched (1: not shrunk)."""
    if height * width <= SEARCH_MAX_PIXELS:
        return 1
    return math.ceil(math.sqrt(height * width / SEARCH_MAX_PIXELS))


def shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """Float32 means of `factor` x `factor` blocks of an H x W x C image (integer pixels as
    `read_pixels` gives them, or floats), a strip at a time; rows and columns that fill no
    whole block are left out. Integer and float pixels of one image give the same values."""
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got {factor}")
    rows, cols, channels = image.shape[0] // factor, image.shape[1] // factor, image.shape[2]
    small = np.empty((rows, cols, channels), dtype=np.float32)
    step = max(1, STRIP_PIXELS // max(1, cols * factor * factor))
    for top in range(0, rows, step):
        bottom = min(top + step, rows)
        block = pixels_to_float(image[top * factor:bottom * factor, :cols * factor])
        block = block.reshape(bottom - top, factor, cols, factor, channels)
        small[top:bottom] = block.mean(axis=(1, 3), dtype=np.float32)
    return small


def _nucleus_centres(image: np.ndarray, cell_scale: float) -> list[tuple[float, float]]:
    mask = chromatin_mask(image)
    speck = max(1, round(cell_scale / 64))
    mask = ndimage.binary_opening(mask, iterations=speck)
    labels, count = ndimage.label(mask)
    if count == 0:
        return []
    areas, centres = _areas_and_centres(labels, count)
    smallest = math.pi * (MIN_NUCLEUS_RADIUS * cell_scale) ** 2
    pieces = [(float(area), centre) for area, centre in zip(areas, centres) if area >= smallest / 4]
    cells = _join_pieces(pieces, SAME_CELL * cell_scale)
    kept = sorted(((area, centre) for area, centre in cells if area >= smallest), key=lambda pair: -pair[0])
    return [(float(centre[0]), float(centre[1])) for _, centre in kept]


def _areas_and_centres(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each label's pixel count and centre (row, column), from the labelled pixels only: what
    ndimage's sum_labels and center_of_mass give for a binary mask, in one pass over the few
    chromatin pixels (ndimage's pass every label over the whole field: 0.7 s on a 5 Mpx field)."""
    rows, cols = np.nonzero(labels)
    which = labels[rows, cols]
    areas = np.bincount(which, minlength=count + 1)[1:].astype(np.float64)
    centres = np.stack([np.bincount(which, weights=rows, minlength=count + 1)[1:],
                        np.bincount(which, weights=cols, minlength=count + 1)[1:]], axis=1) / areas[:, None]
    return areas, centres


def _join_pieces(pieces: list[tuple[float, np.ndarray]], reach: float) -> list[tuple[float, np.ndarray]]:
    """Pieces (area, centre), largest first, each joined to the first cell whose centre lies
    within `reach`; a cell's centre is its pieces' area-weighted mean."""
    areas: list[float] = []
    centres: list[np.ndarray] = []
    for area, centre in sorted(pieces, key=lambda piece: -piece[0]):
        near: np.ndarray | list[int] = (np.flatnonzero(np.hypot(*(np.array(centres) - centre).T) <= reach)
                                        if centres else [])
        if len(near):
            index = near[0]
            total = areas[index] + area
            centres[index] = (centres[index] * areas[index] + centre * area) / total
            areas[index] = total
        else:
            areas.append(area)
            centres.append(centre)
    return list(zip(areas, centres))
