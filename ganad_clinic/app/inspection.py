"""What the viewer shows of one slide, computed on demand in a worker thread (no Qt here).

The database keeps each score with its cells (their boxes in slide pixels) and the tiling that
decided them, but not the raw heat or G(E(x)). Both are recomputed here through the one slide-level
scorer (model.inference.Inferencer) from exactly the stored tiles and tiling, with the model that
made the score and at the false-positive rate it was flagged at, so the recomputed score and flags
are the stored ones; a score made before cells were kept is not recomputed at all (its stored
heat-map picture is shown instead). The cells' stored p-values come along, for the viewer to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganad_clinic.imaging.io import read_pixels
from ganad_clinic.imaging.overlay import display_pixels
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.model.inference import HEAT_MAX_SIDE, Inferencer, SlideResult
from ganad_clinic.screening.slide_records import recorded_plan
from ganad_clinic.store import Cell, Score

KEPT_VIEWS = 64
"""The model's input and reconstruction are kept for this many of a slide's highest-scoring cells
(a grid of thousands of tiles would otherwise hold hundreds of megabytes)."""
DISPLAY_MAX_SIDE = HEAT_MAX_SIDE
"""The slide is shown with at most this many pixels a side, those of its heat map: a 10000-px field
does not take 300 MB on screen, and the heat lies pixel for pixel on the picture."""
SAME_SCORE = 1e-5
"""Relative difference within which a recomputed score is the stored one."""


@dataclass(frozen=True)
class Inspection:
    slide_id: int
    score_id: int
    image: np.ndarray  # H x W x 3 uint8: the slide, shrunk to at most DISPLAY_MAX_SIDE a side (about the heat's shape)
    scale: float  # image pixels per slide pixel
    result: SlideResult  # cells (slide pixels), heat map, model views of the top KEPT_VIEWS cells
    stored_score: float
    model_version: str
    stored_p_values: tuple[float | None, ...]  # each cell's, by cell index (None: scored before they were kept)
    stored_flags: tuple[bool, ...]  # each cell's, by cell index

    @property
    def matches_stored(self) -> bool:
        """Within SAME_SCORE of the stored score, relatively (absolutely for a stored score of 0)."""
        return abs(self.result.score - self.stored_score) <= SAME_SCORE * (abs(self.stored_score) or 1.0)

    @property
    def flags_match(self) -> bool:
        """The recompute flags the cells the stored score flagged."""
        return tuple(cell.flagged for cell in self.result.cells) == self.stored_flags


def inspect_slide(slide_id: int, path: Path, bundle: Bundle, score: Score, cells: list[Cell]) -> Inspection:
    """Recompute a stored score from its own tiles and tiling, at the rate it was flagged at
    (UnrecordedTilingError for a score made before its tiles were kept)."""
    plan, rule = recorded_plan(score, cells)
    pixels = read_pixels(path)
    inferencer = Inferencer(bundle, rule.field_scale, target_fpr=score.target_fpr)
    result = inferencer.score([pixels], [plan], rule=rule, keep_views=KEPT_VIEWS)[0]
    image = display_pixels(pixels, DISPLAY_MAX_SIDE)
    ordered = sorted(cells, key=lambda cell: cell.cell_index)
    return Inspection(slide_id, score.id, image, image.shape[1] / pixels.shape[1], result, score.score,
                      score.model_version, tuple(cell.p_value for cell in ordered),
                      tuple(cell.flagged for cell in ordered))
