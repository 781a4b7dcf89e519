from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ganad_clinic.store import ModelVersion, Store, open_store

from .builders import SlideFiles, record_scored, register_model

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
                                  tiling=GRID_TILING if name == "Im005_1.tif" else None)
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
