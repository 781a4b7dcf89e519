"""Cells: one row per tile with each score, append-only, and covered by the score's chained hash."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from ganad_clinic.store import Cell, StoreError, TilingRecord
from ganad_clinic.store.verify import verify_database
from tests.store.helpers import record, register_model

TILING = TilingRecord("white cells", "2 tiles, one per white cell", 257, 0.5, 0.5)


def _cells() -> list[Cell]:
    return [
        Cell(cell_index=0, x=10, y=20, width=128, height=128, found_by="white cell", score=0.25, l_d=0.1,
             l_r=0.2, l_l=0.3, flagged=False),
        Cell(cell_index=1, x=300, y=40, width=128, height=128, found_by="white cell", score=0.75, l_d=0.4,
             l_r=0.5, l_l=0.6, flagged=True),
    ]


def _scored(store):
    model = register_model(store)
    slide = record(store, "/incoming/field.jpg", "aaa").slide
    score = store.add_score(slide.id, model.id, score=0.75, l_d=0.4, l_r=0.5, l_l=0.6, threshold=0.5, flagged=True,
                            duration_seconds=1.0, tiling=TILING, cells=_cells())
    return score


def test_a_score_keeps_its_cells_and_its_tiling(store):
    score = _scored(store)

    cells = store.list_cells(score.id)

    assert [(c.cell_index, c.x, c.y, c.width, c.height, c.score, c.flagged) for c in cells] == [
        (0, 10, 20, 128, 128, 0.25, False), (1, 300, 40, 128, 128, 0.75, True)]
    stored = store.latest_score(score.slide_id)
    assert (stored.tiling_rule, stored.tiling, stored.crop_size, stored.field_scale, stored.tile_overlap) == (
        "white cells", "2 tiles, one per white cell", 257, 0.5, 0.5)
    assert verify_database(store.url).ok


def test_cells_must_be_numbered_from_zero_and_nothing_is_stored_otherwise(store):
    model = register_model(store)
    slide = record(store, "/incoming/field.jpg", "aaa").slide
    cells = _cells()
    cells[1].cell_index = 5

    with pytest.raises(StoreError, match="numbered 0 to 1"):
        store.add_score(slide.id, model.id, score=0.75, l_d=0, l_r=0, l_l=0, threshold=0.5, flagged=True,
                        duration_seconds=1.0, tiling=TILING, cells=cells)
    assert store.latest_score(slide.id) is None


@pytest.mark.parametrize("statement", ["UPDATE cells SET score = 0.1", "DELETE FROM cells"])
def test_cells_cannot_be_changed_or_deleted(store, statement):
    _scored(store)
    engine = create_engine(store.url)
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text(statement))
    engine.dispose()


def test_verify_finds_a_cell_added_behind_the_triggers_back(store):
    score = _scored(store)
    engine = create_engine(store.url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cells (score_id, cell_index, x, y, width, height, found_by, score, l_d, l_r, l_l, flagged) "
            f"VALUES ({score.id}, 2, 0, 0, 128, 128, 'white cell', 0.01, 0, 0, 0, false)"))
    engine.dispose()

    verification = verify_database(store.url)

    assert verification.problems == [
        f"the cells of scores row {score.id} do not match the digest in that row: a cell was changed, added or removed"]


def test_a_summary_counts_its_current_scores_cells_and_the_flagged_ones(store):
    score = _scored(store)
    unscored = record(store, "/incoming/other.jpg", "bbb").slide

    [field, other] = store.list_slides()
    [changed_field, changed_other] = store.list_slides_changed_since(None).summaries

    assert (field.slide.id, field.cells, field.flagged_cells) == (score.slide_id, 2, 1)
    assert (changed_field.cells, changed_field.flagged_cells) == (2, 1)
    assert (other.slide.id, other.cells, other.flagged_cells) == (unscored.id, 0, 0)
    assert (changed_other.cells, changed_other.flagged_cells) == (0, 0)
