"""A slide's result as the database keeps it, and back: what the service stores with each score
(the tiling that decided the tiles, one row per cell) and the plan a recompute takes from there,
so that a slide re-scored from its record gets its stored score."""

from __future__ import annotations

from collections.abc import Sequence

from ganad_clinic.errors import GanadError
from ganad_clinic.imaging.tiling import FOUND_BY, Tile, TilePlan, TilingRule
from ganad_clinic.model.inference import SlideResult
from ganad_clinic.store import Cell, Judgement, Score, TilingRecord


class UnrecordedTilingError(GanadError, ValueError):
    """The score was written before its tiles were kept: it cannot be recomputed as it was made."""


def tiling_record(result: SlideResult) -> TilingRecord:
    rule = result.rule
    return TilingRecord(result.plan.rule, result.plan.how, rule.crop_size, rule.field_scale, rule.overlap)


def judgement(result: SlideResult) -> Judgement:
    decision = result.decision
    return Judgement(decision.p_value, decision.target_fpr, decision.kept_rate, result.calibration_n)


def cell_rows(result: SlideResult) -> list[Cell]:
    """One cells row per tile of the slide, not yet tied to its score."""
    return [
        Cell(cell_index=cell.index, x=cell.tile.left, y=cell.tile.top, width=cell.tile.width,
             height=cell.tile.height, found_by=cell.found_by, score=cell.score, l_d=cell.l_d, l_r=cell.l_r,
             l_l=cell.l_l, flagged=cell.flagged, p_value=cell.p_value)
        for cell in result.cells
    ]


def recorded_tiling(score: Score, cells: Sequence[Cell]) -> TilingRecord:
    """The tiling a stored score was made with, as `tiling_record` gave it."""
    # the four tiling columns are written together (all or none)
    if (score.tiling_rule is None or score.crop_size is None or score.field_scale is None
            or score.tile_overlap is None or not cells):
        raise UnrecordedTilingError(
            f"score {score.id} was made before GANAD Clinic kept each score's cells, so it cannot be recomputed "
            "as it was made: only its stored heat-map picture (in the earlier colours) can be shown. Scores made "
            "from now on keep their cells, also when a new model re-scores the slide (ganad watch --rescore)"
        )
    return TilingRecord(score.tiling_rule, score.tiling or score.tiling_rule, score.crop_size, score.field_scale,
                        score.tile_overlap)


def recorded_plan(score: Score, cells: Sequence[Cell]) -> tuple[TilePlan, TilingRule]:
    """The tiles a stored score was made from, and the rule that chose them."""
    tiling = recorded_tiling(score, cells)
    rule = TilingRule(crop_size=tiling.crop_size, field_scale=tiling.field_scale, overlap=tiling.overlap)
    ordered = sorted(cells, key=lambda cell: cell.cell_index)
    if {cell.found_by for cell in ordered} != {FOUND_BY[tiling.rule]}:
        raise ValueError(f"score {score.id}: its cells were not all found by its rule ({tiling.rule})")
    tiles = [Tile(cell.y, cell.x, cell.height, cell.width) for cell in ordered]
    return TilePlan(tiles, tiling.how, tiling.rule), rule
