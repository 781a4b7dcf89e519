"""Whole slides through the model: crops scored whole, fields by one tile per white cell (see imaging.tiling).

All tiles of all slides in a batch go through the model together, so a burst of small files and a
large field both fill the model's batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganad_clinic.imaging.tiling import DEFAULT_CROP_SIZE, TilePlan, TilingRule, slide_tile_index, stitch_heat
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.model.inference import Scorer

CROP_SIZE_KEY = "crop_size"
"""Key in a bundle's `training` metadata: the side in pixels of the crops it was trained on."""


@dataclass(frozen=True)
class SlideResult:
    """One slide's score (that of its highest-scoring tile, with that tile's terms), its heat
    map at the slide's own resolution, and how its tiles were chosen (`TilePlan.how`)."""

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


class SlideScorer:
    def __init__(self, bundle: Bundle, rule: TilingRule, batch_size: int | None = None) -> None:
        self.bundle = bundle
        self.rule = rule
        self.scorer = Scorer(bundle, batch_size)

    def plan(self, image: np.ndarray) -> TilePlan:
        """The tiles an image is scored by (finding a field's white cells takes a moment: plan once)."""
        return self.rule.plan(image)

    def score(self, images: Sequence[np.ndarray], plans: Sequence[TilePlan] | None = None) -> list[SlideResult]:
        """Score HxWx3 float images in [0, 1] (as `read_image` returns them), by their `plan`s."""
        plans = [self.plan(image) for image in images] if plans is None else plans
        if len(plans) != len(images):
            raise ValueError(f"{len(plans)} tile plans for {len(images)} images")
        pieces = [tile.cut(image) for image, plan in zip(images, plans) for tile in plan.tiles]
        tile_scores = self.scorer.score_images(pieces)
        results: list[SlideResult] = []
        start = 0
        for image, plan in zip(images, plans):
            own = tile_scores[start:start + len(plan.tiles)]
            start += len(plan.tiles)
            best = own[slide_tile_index([result.score for result in own])]
            heat = stitch_heat([result.heat for result in own], plan.tiles, image.shape[:2])
            results.append(SlideResult(best.score, best.l_d, best.l_r, best.l_l, best.flagged, heat,
                                       len(plan.tiles), plan.how))
        return results
