"""What the viewer shows of one slide, computed on demand in a worker thread (no Qt here).

The database keeps each slide's score, its three terms and a blended heat-map picture, but not the
raw heat or G(E(x)). Both are recomputed here with the model that produced the slide's score, as
the screening service computes them: crops whole, fields by one tile per white cell, the heat stitched back to
the slide's pixels. The reconstruction shown is that of the tile that gives the slide its score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganad_clinic.imaging.io import read_image
from ganad_clinic.imaging.tiling import Tile, TilingRule, slide_tile_index, stitch_heat
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.model.inference import Scorer


@dataclass(frozen=True)
class Inspection:
    slide_id: int
    image: np.ndarray  # H x W x 3 float in [0, 1]
    heat: np.ndarray  # H x W in [0, 1): the threshold-anchored heat at the slide's resolution
    model_input: np.ndarray  # the top tile as the model saw it (model resolution)
    reconstruction: np.ndarray  # G(E(x)) of that tile
    top_tile: Tile
    tiles: int
    tiling: str  # how the tiles were chosen (TilePlan.how)
    score: float
    l_d: float
    l_r: float
    l_l: float
    threshold: float
    model_version: str


def inspect_slide(slide_id: int, path: Path, bundle: Bundle, rule: TilingRule, model_version: str) -> Inspection:
    image = read_image(path)
    plan = rule.plan(image)
    results = Scorer(bundle).score_images([tile.cut(image) for tile in plan.tiles])
    top = slide_tile_index([result.score for result in results])
    best = results[top]
    heat = stitch_heat([result.heat for result in results], plan.tiles, image.shape[:2])
    return Inspection(slide_id, image, heat, best.model_input, best.reconstruction, plan.tiles[top],
                      len(plan.tiles), plan.how, best.score, best.l_d, best.l_r, best.l_l, bundle.threshold.value,
                      model_version)
