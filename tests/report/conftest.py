from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ganad_clinic.store import Cell, ModelVersion, Store, open_store

from .builders import Field, SlideFiles, record_field, record_scored, register_model, tiling

MARKUP_NAME = 'a<b>&amp; "q" \'s.png'
UNICODE_NAME = "é ü ß Ω 漢 – slide.png"
MARKUP_NOTE = 'nucleus <i>large</i> & "odd" — é ü ß Ω 漢 –'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'ganad.db'}") as opened:
        yield opened


@pytest.fixture
def model(store: Store, tmp_path: Path) -> ModelVersion:
    return register_model(store, tmp_path)


@dataclass
class World:
    """A small but complete period: normal, flagged (confirmed, overruled, second read, unreviewed),
    one rejected and one pending slide, markup and Unicode names, one missing heat map."""

    store: Store
    model: ModelVersion
    files: SlideFiles
    ids: dict[str, int]


GRID_TILING = "grid of 300 tiles: no white cell found"


@pytest.fixture
def world(store: Store, model: ModelVersion, tmp_path: Path) -> World:
    files = SlideFiles(tmp_path / "data")
    ids: dict[str, int] = {}
    plan = [  # name, blast, score, heat map kept
        ("Im001_0.tif", False, 0.31, True),
        ("Im002_0.tif", False, 0.52, True),
        (MARKUP_NAME, False, 0.44, True),
        ("Im004_1.tif", True, 0.93, True),
        ("Im005_1.tif", True, 1.21, True),
        (UNICODE_NAME, True, 0.88, False),
        ("Im007_1.tif", True, 0.75, True),
        ("Im008_0.tif", False, 0.61, True),
    ]
    for name, blast, score, keep_heatmap in plan:
        path, heatmap = files.slide(name, blast)
        if not keep_heatmap:
            heatmap.unlink()
        ids[name] = record_scored(store, model, path, heatmap, score,
                                  tiling=tiling(GRID_TILING) if name == "Im005_1.tif" else None)
    store.add_review(ids["Im004_1.tif"], "Dr. Ünal", "anomaly_confirmed", MARKUP_NOTE)
    store.add_review(ids["Im005_1.tif"], "tech <a>", "normal", "staining artefact")
    store.add_review(ids[UNICODE_NAME], "tech <a>", "second_read", "")
    store.add_review(ids["Im008_0.tif"], "Dr. Ünal", "anomaly_confirmed", "missed by the model")
    store.add_review(ids["Im001_0.tif"], "tech <a>", "normal", "")
    rejected = store.record_slide(files.inbox / "broken & <bad>.jpg", "broken", 0, files.inbox).slide
    store.mark_rejected(rejected.id, "the file is empty (0 bytes)")
    ids["broken & <bad>.jpg"] = rejected.id
    pending = store.record_slide(files.inbox / "late.png", "late", 10, files.inbox).slide
    ids["late.png"] = pending.id
    return World(store, model, files, ids)


FEW_FLAGGED = (0.2, 0.3, 0.95, 0.1, 0.4, 0.82, 0.3, 0.2, 0.1, 0.75, 0.5, 0.6)  # cells 3, 6 and 10
MANY_FLAGGED = (0.9, 0.1, 0.85, 0.8, 0.2, 0.99, 0.75, 0.7, 0.3, 0.88, 0.93, 0.78)  # nine cells
NONE_FLAGGED = (0.2, 0.1, 0.3, 0.4, 0.2, 0.1, 0.3, 0.5, 0.2, 0.1, 0.3, 0.6)


@dataclass
class CellsWorld:
    """Fields with cells (few flagged, many flagged, none flagged), a crop scored as one cell, and
    a flagged slide scored before cells were kept."""

    store: Store
    fields: dict[str, Field]
    ids: dict[str, int]


@pytest.fixture
def cells_world(store: Store, model: ModelVersion, tmp_path: Path) -> CellsWorld:
    files = SlideFiles(tmp_path / "data")
    fields, ids = {}, {}
    for name, scores in (("few.jpg", FEW_FLAGGED), ("many.jpg", MANY_FLAGGED), ("calm.jpg", NONE_FLAGGED)):
        fields[name] = files.field(name, hot=[index for index, score in enumerate(scores) if score >= 0.7])
        ids[name] = record_field(store, model, fields[name], scores)
    path, heatmap = files.slide("crop.png", blast=True)
    whole = Cell(cell_index=0, x=0, y=0, width=96, height=96, found_by="whole image", score=0.9, l_d=0.45,
                 l_r=0.27, l_l=0.18, flagged=True)
    ids["crop.png"] = record_scored(store, model, path, heatmap, 0.9, tiling=tiling("the whole image", "whole image"),
                                    cells=[whole], size=(96, 96))
    path, heatmap = files.slide("old.png", blast=True)
    ids["old.png"] = record_scored(store, model, path, heatmap, 0.8)
    return CellsWorld(store, fields, ids)
