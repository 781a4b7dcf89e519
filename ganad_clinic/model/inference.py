"""The one slide-level scorer: a loaded bundle + a slide -> its cells, their scores, the heat map.

An inferencer in anomalib's sense: it owns the plan of tiles (crops whole, fields one tile per white
cell, or the grid; imaging.tiling), the batching, the scores and the stitching of the heat map.
The screening service, `ganad score`, `ganad evaluate`, the app's inspection, retraining's
validation and the benchmarks all score slides through `Inferencer`, so the same file gets the same
score whoever scores it; a slide re-scored from its stored tiles (`Inferencer.score` with the
stored plan) gets its stored score.

Memory stays bounded whatever the field's size: tiles are cut from the slide's integer pixels
(`read_pixels`) and made float one model batch at a time, each batch's heat maps are stitched at
once into a map of at most HEAT_MAX_SIDE pixels a side, and only the scores of each tile (and the
model's views of the `keep_views` highest-scoring tiles, when asked) are kept.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ganad_clinic.errors import GanadError
from ganad_clinic.imaging.io import ImageInfo, read_pixels
from ganad_clinic.imaging.tiling import (
    DEFAULT_CROP_SIZE,
    WHOLE_IMAGE,
    Tile,
    TilePlan,
    TilingRule,
    heat_shape,
    paint_heat,
    slide_tile_index,
)
from ganad_clinic.imaging.transforms import eval_transform, to_display
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.model.conformal import SlideDecision
from ganad_clinic.model.scoring import screening_metrics

PIXELS_PER_BATCH = 32 * 64 * 64
CROP_SIZE_KEY = "crop_size"
"""Key in a bundle's `training` metadata: the side in pixels of the crops it was trained on."""
HEAT_MAX_SIDE = 2048
"""A slide's heat map (and its heat-map file) has at most this many pixels on its longer side: a
screen shows no more; a 10000 x 10000 field's map takes 16 MB instead of 400 MB."""


class NonFiniteScoreError(GanadError, ValueError):
    """The model gave an image no finite score (NaN or infinity): such an image can be judged
    neither normal nor abnormal, so it is never reported as either."""


def batch_size_for(image_size: int) -> int:
    """Images per scoring batch: 32 at 64 px, fewer as images grow, so that a batch's activations
    stay near the caches. At 3x220x220 a batch of 32 scored a third slower per image than batches
    of 1 or 2, which are as fast as each other (training/bench.py)."""
    return max(1, PIXELS_PER_BATCH // (image_size * image_size))


def crop_size_of(bundle: Bundle) -> int:
    """The side of the crops a bundle learnt from (its field of view): recorded at training, else
    the ALL-IDB2 crop size."""
    training = bundle.metadata.get("ganad", {}).get("training") or {}
    return int(training.get(CROP_SIZE_KEY) or DEFAULT_CROP_SIZE)


def score_warning(info: ImageInfo | None, channels: int) -> str | None:
    """What a technician must know to trust a score: pages left unscreened, or a gray image given
    to a model that learnt from stained (colour) cells."""
    notes = []
    if info is not None and info.frames > 1:
        notes.append(f"page 1 of {info.frames} scored; the other pages were not screened")
    if info is not None and info.grayscale and channels == 3:
        notes.append("grayscale image: this model was trained on colour images; the score may be unreliable")
    return "; ".join(notes) or None


@dataclass
class ImageScore:
    """One tile through the model, at the model's resolution."""

    score: float
    l_d: float
    l_r: float
    l_l: float
    heat: np.ndarray  # H x W in [0, 1), the model-anchored heat (ScoreBatch.heat)
    reconstruction: torch.Tensor  # C x H x W in [-1, 1], G(E(x))
    model_input: torch.Tensor  # C x H x W in [-1, 1], what the model saw

    def view(self) -> CellView:
        """What the model saw and made of this tile, for display: made only for the tiles shown."""
        return CellView(to_display(self.model_input), to_display(self.reconstruction))


class Scorer:
    """The tile-level engine under `Inferencer`: applies a bundle's eval transform and scores
    tiles in batches (by default of `batch_size_for` the bundle's image size)."""

    def __init__(self, bundle: Bundle, batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.bundle = bundle
        self.batch_size = batch_size_for(bundle.image_size) if batch_size is None else batch_size
        self.transform = eval_transform(bundle.image_size, bundle.channels)

    def score_images(self, images: Sequence[np.ndarray]) -> list[ImageScore]:
        """Score HxWx3 images: float arrays in [0, 1] (as `read_image` returns them) or integer
        pixels (as `read_pixels` does), which give the same scores."""
        return self.score_tensors(self.transform.batch(images)) if images else []

    def score_tensors(self, x: torch.Tensor) -> list[ImageScore]:
        results: list[ImageScore] = []
        for start in range(0, len(x), self.batch_size):
            chunk = x[start:start + self.batch_size]
            batch = self.bundle.score(chunk)
            bad = (~torch.isfinite(batch.score)).nonzero().flatten().tolist()
            if bad:
                raise NonFiniteScoreError(f"the model gave no finite score ({float(batch.score[bad[0]])}) for image "
                                          f"{start + bad[0] + 1} of {len(x)}; it cannot be judged")
            heat = batch.heat(self.bundle.score_config).numpy()
            for i in range(len(chunk)):
                score = float(batch.score[i])
                results.append(ImageScore(
                    score=score, l_d=float(batch.l_d[i]), l_r=float(batch.l_r[i]), l_l=float(batch.l_l[i]),
                    heat=heat[i], reconstruction=batch.reconstruction[i], model_input=chunk[i],
                ))
        return results


@dataclass(frozen=True)
class CellResult:
    """One tile of a slide (a white cell, a grid tile, or a whole crop): where it lies in slide
    pixels, how it was found, its score and terms, its conformal p-value against the calibration
    normals, and whether it is flagged at the slide's operating point."""

    index: int  # its place in the slide's plan, from 0
    tile: Tile
    found_by: str  # "whole image", "white cell" or "grid" (imaging.tiling.FOUND_BY)
    score: float
    l_d: float
    l_r: float
    l_l: float
    p_value: float
    flagged: bool


@dataclass(frozen=True)
class CellView:
    """What the model saw of a cell and what it made of it (model resolution, H x W x 3 in [0, 1])."""

    model_input: np.ndarray
    reconstruction: np.ndarray


@dataclass(frozen=True)
class SlideResult:
    """One slide: its cells, its score (that of its highest-scoring cell, with that cell's terms;
    flagged when any cell is), the operating point's decision on it (each cell's p-value and flag,
    the slide's p-value and threshold), its heat map (the slide's rows and columns, or fewer with
    the same aspect: at most HEAT_MAX_SIDE on the longer side), the plan and rule that chose its
    tiles, and the model's views of the cells asked for (by cell index)."""

    cells: list[CellResult]
    heat: np.ndarray
    plan: TilePlan
    rule: TilingRule
    decision: SlideDecision
    calibration_n: int
    views: dict[int, CellView] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The score a cell of this slide must exceed to be flagged (Bonferroni over its cells)."""
        return self.decision.threshold

    @property
    def p_value(self) -> float:
        return self.decision.p_value

    @property
    def target_fpr(self) -> float:
        return self.decision.target_fpr

    @property
    def top(self) -> CellResult:
        return self.cells[slide_tile_index([cell.score for cell in self.cells])]

    @property
    def score(self) -> float:
        return self.top.score

    @property
    def l_d(self) -> float:
        return self.top.l_d

    @property
    def l_r(self) -> float:
        return self.top.l_r

    @property
    def l_l(self) -> float:
        return self.top.l_l

    @property
    def flagged(self) -> bool:
        return any(cell.flagged for cell in self.cells)

    @property
    def tiling(self) -> str:
        """How the tiles were chosen, in words (TilePlan.how)."""
        return self.plan.how


class Inferencer:
    """Scores slides with one bundle at one operating point. `field_scale` is the pixel scale of
    fields relative to the crops the bundle learnt from (1 for ALL-IDB1 fields at full resolution,
    0.5 for the synthetic fields, drawn at half); crops are scored whole whatever it is.
    `target_fpr` is the slide false-positive rate in force (default: the one the bundle was
    trained for); each slide's cells are judged against the bundle's calibration normals at it."""

    def __init__(self, bundle: Bundle, field_scale: float = 1.0, batch_size: int | None = None,
                 target_fpr: float | None = None) -> None:
        self.bundle = bundle
        self.rule = TilingRule(crop_size=crop_size_of(bundle), field_scale=field_scale)
        self.scorer = Scorer(bundle, batch_size)
        self.operating_point = bundle.operating_point(target_fpr)

    @property
    def threshold(self) -> float:
        """The one-cell threshold (a crop's) at the operating point; slides of several cells use
        their own (`SlideResult.threshold`)."""
        return self.operating_point.threshold()

    def plan(self, image: np.ndarray) -> TilePlan:
        """The tiles an image is scored by (finding a field's white cells takes a moment: plan once)."""
        return self.rule.plan(image)

    def score_file(self, path: str | Path, max_pixels: int | None = None, keep_views: int = 0) -> SlideResult:
        """Read a file (its first page, upright, as the screening service reads it) and score it."""
        return self.score([read_pixels(path, max_pixels)], keep_views=keep_views)[0]

    def score(self, images: Sequence[np.ndarray], plans: Sequence[TilePlan] | None = None, *,
              rule: TilingRule | None = None, keep_views: int = 0) -> list[SlideResult]:
        """Score HxWx3 images by their `plan`s (default: this inferencer's), all tiles of all
        images through the model together. Images are integer pixels as `read_pixels` gives them
        (what large fields need) or floats in [0, 1] as `read_image` does; both give the same
        scores. `rule` is the rule the given plans were made by (stored with a score; default this
        inferencer's). The model's views of each slide's `keep_views` highest-scoring cells are kept."""
        plans = [self.plan(image) for image in images] if plans is None else list(plans)
        if len(plans) != len(images):
            raise ValueError(f"{len(plans)} tile plans for {len(images)} images")
        heats = [np.zeros(heat_shape(image.shape[:2], HEAT_MAX_SIDE), dtype=np.float32) for image in images]
        scored: list[list[tuple[int, Tile, _Terms]]] = [[] for _ in images]
        kept: list[list[tuple[float, int, ImageScore]]] = [[] for _ in images]
        jobs = [(slide, index, tile) for slide, plan in enumerate(plans) for index, tile in enumerate(plan.tiles)]
        for start in range(0, len(jobs), self.scorer.batch_size):
            batch = jobs[start:start + self.scorer.batch_size]
            results = self.scorer.score_images([tile.cut(images[slide]) for slide, _, tile in batch])
            for (slide, index, tile), result in zip(batch, results):
                paint_heat(heats[slide], result.heat, tile, images[slide].shape[:2])
                scored[slide].append((index, tile, _Terms(result.score, result.l_d, result.l_r, result.l_l)))
                if keep_views:
                    view = (result.score, -index, result)
                    (heapq.heappush if len(kept[slide]) < keep_views else heapq.heappushpop)(kept[slide], view)
        rule = self.rule if rule is None else rule
        return [self._judged(own, heat, plan, rule, {-index: result.view() for _, index, result in views})
                for own, heat, plan, views in zip(scored, heats, plans, kept)]

    def _judged(self, scored: list[tuple[int, Tile, _Terms]], heat: np.ndarray, plan: TilePlan,
                rule: TilingRule, views: dict[int, CellView]) -> SlideResult:
        decision = self.operating_point.decide([terms.score for _, _, terms in scored])
        cells = [CellResult(index, tile, plan.found_by, terms.score, terms.l_d, terms.l_r, terms.l_l, p, flag)
                 for (index, tile, terms), p, flag in zip(scored, decision.p_values, decision.flagged)]
        return SlideResult(cells, heat, plan, rule, decision, self.operating_point.calibration.n, views)


class _Terms(NamedTuple):
    """What a slide keeps of each tile once its heat is painted: the score and its terms."""

    score: float
    l_d: float
    l_r: float
    l_l: float


@dataclass(frozen=True)
class Evaluation:
    """Screening metrics of a set of slides, and each slide's score and flag (in the given order)."""

    metrics: dict[str, float | int]
    scores: list[float]
    flagged: list[bool]


def evaluate_slides(inferencer: Inferencer, paths: Sequence[Path], labels: Sequence[int]) -> Evaluation:
    """Screening metrics at the inferencer's operating point of slides scored as the service
    scores them (one slide-level label per file: crops and fields alike; each slide flagged by its
    own decision), with `n_tiled`: how many were tiled."""
    results = [inferencer.score_file(path) for path in paths]
    scores = [result.score for result in results]
    flagged = [result.flagged for result in results]
    metrics = screening_metrics(np.array(scores, dtype=np.float64), np.asarray(labels), np.array(flagged, dtype=bool))
    metrics["n_tiled"] = sum(result.plan.rule != WHOLE_IMAGE for result in results)
    metrics["target_fpr"] = inferencer.operating_point.target_fpr
    return Evaluation(metrics, scores, flagged)
