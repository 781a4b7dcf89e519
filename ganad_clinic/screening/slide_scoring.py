"""Whole slides through the model: crops scored whole, fields by one tile per white cell (see imaging.tiling).

All tiles of all slides in a batch go through the model together, so a burst of small files and a
large field both fill the model's batches. Memory stays bounded whatever the field's size: tiles
are cut from the slide's integer pixels (`read_pixels`) and made float one model batch at a time,
each batch's heat maps are stitched at once into a map of at most HEAT_MAX_SIDE pixels a side,
and only the scores of each tile are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganad_clinic.imaging.io import pixels_to_float
from ganad_clinic.imaging.tiling import (
    DEFAULT_CROP_SIZE,
    TilePlan,
    TilingRule,
    heat_shape,
    paint_heat,
    slide_tile_index,
)
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.model.inference import ImageScore, Scorer
from ganad_clinic.screening.heatmaps import MAX_SIDE

CROP_SIZE_KEY = "crop_size"
"""Key in a bundle's `training` metadata: the side in pixels of the crops it was trained on."""

HEAT_MAX_SIDE = MAX_SIDE
"""A slide's heat map has at most this many pixels on its longer side: the heat-map file's size,
so nothing is lost; a 10000 x 10000 field's map takes 16 MB instead of 400 MB."""


@dataclass(frozen=True)
class SlideResult:
    """One slide's score (that of its highest-scoring tile, with that tile's terms), its heat
    map (the slide's rows and columns, or fewer with the same aspect: at most HEAT_MAX_SIDE on the
    longer side) and how its tiles were chosen (`TilePlan.how`)."""

    score: float
    l_d: float
    l_r: float
    l_l: float
    flagged: bool
    heat: np.ndarray
    tiles: int
    tiling: str


def tiling_rule_for(bundle: Bundle, field_scale: float = 1.0) -> TilingRule:
    """The tiling rule of a bundle: its training crops' size when the bundle records it, else the
    ALL-IDB2 crop size."""
    training = bundle.metadata.get("ganad", {}).get("training") or {}
    crop_size = int(training.get(CROP_SIZE_KEY) or DEFAULT_CROP_SIZE)
    return TilingRule(crop_size=crop_size, field_scale=field_scale)


@dataclass(frozen=True)
class _TileScore:
    score: float
    l_d: float
    l_r: float
    l_l: float
    flagged: bool


class SlideScorer:
    def __init__(self, bundle: Bundle, rule: TilingRule, batch_size: int | None = None) -> None:
        self.bundle = bundle
        self.rule = rule
        self.scorer = Scorer(bundle, batch_size)

    def plan(self, image: np.ndarray) -> TilePlan:
        """The tiles an image is scored by (finding a field's white cells takes a moment: plan once)."""
        return self.rule.plan(image)

    def score(self, images: Sequence[np.ndarray], plans: Sequence[TilePlan] | None = None) -> list[SlideResult]:
        """Score HxWx3 images by their `plan`s: integer pixels as `read_pixels` gives them (what
        large fields need), or floats in [0, 1] as `read_image` does; both give the same scores."""
        plans = [self.plan(image) for image in images] if plans is None else plans
        if len(plans) != len(images):
            raise ValueError(f"{len(plans)} tile plans for {len(images)} images")
        heats = [np.zeros(heat_shape(image.shape[:2], HEAT_MAX_SIDE), dtype=np.float32) for image in images]
        scores: list[list[_TileScore]] = [[] for _ in images]
        jobs = [(index, tile) for index, plan in enumerate(plans) for tile in plan.tiles]
        for start in range(0, len(jobs), self.scorer.batch_size):
            batch = jobs[start:start + self.scorer.batch_size]
            results = self.scorer.score_images([pixels_to_float(tile.cut(images[index])) for index, tile in batch])
            for (index, tile), result in zip(batch, results):
                paint_heat(heats[index], result.heat, tile, images[index].shape[:2])
                scores[index].append(_terms(result))
        return [self._result(own, heat, plan) for own, heat, plan in zip(scores, heats, plans)]

    @staticmethod
    def _result(own: list[_TileScore], heat: np.ndarray, plan: TilePlan) -> SlideResult:
        best = own[slide_tile_index([tile.score for tile in own])]
        return SlideResult(best.score, best.l_d, best.l_r, best.l_l, best.flagged, heat, len(plan.tiles), plan.how)


def _terms(result: ImageScore) -> _TileScore:
    """What a slide keeps of a tile's result: not its model-resolution images."""
    return _TileScore(result.score, result.l_d, result.l_r, result.l_l, result.flagged)
