"""Builders for report tests: a results database written through the Store API, with real slide
images and heat-map overlays on disk."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.imaging.overlay import overlay
from ganad_clinic.imaging.synthetic import draw_field, generate_cell
from ganad_clinic.store import Cell, Judgement, ModelVersion, Store, TilingRecord

THRESHOLD = 0.7
THRESHOLD_RULE = "95th percentile of 20 validation-normal scores"
TILE = 160  # a field's tiles, in slide pixels
HEAT_SCALE = 0.5  # heat-map picture pixels per slide pixel: the picture is the slide shrunk, as for a large field


def fake_bundle(folder: Path, version: str, *, threshold: float = THRESHOLD, lam: float = 0.8,
                beta: float = 1.0) -> Path:
    """A bundle folder holding only the metadata reports read (no weights: reports never load them)."""
    metadata = {"version": version, "ganad": {
        "bundle_format": 1,
        "threshold": {"value": threshold, "rule": THRESHOLD_RULE},
        "score": {"lambda": lam, "beta": beta, "mode": "normalised"},
    }}
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def register_model(store: Store, root: Path, version: str = "1.0.0", **settings: float) -> ModelVersion:
    bundle = fake_bundle(root / f"bundle-{version}", version, **settings)
    sha256 = hashlib.sha256(version.encode()).hexdigest()
    return store.register_model_version(version, bundle, sha256, actor="tester", metrics={"auc": 0.9})


@dataclass
class SlideFiles:
    """Writes synthetic slides and their heat-map overlays under one folder."""

    root: Path
    inbox: Path = field(init=False)
    heatmaps: Path = field(init=False)
    count: int = 0

    def __post_init__(self) -> None:
        self.inbox = self.root / "inbox"
        self.heatmaps = self.root / "heatmaps"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.heatmaps.mkdir(parents=True, exist_ok=True)

    def slide(self, name: str, blast: bool = False, size: int = 96) -> tuple[Path, Path]:
        """Write slide `name` and its heat map; return both paths."""
        self.count += 1
        rng = np.random.default_rng(self.count)
        image = generate_cell(rng, blast, size)
        path = self.inbox / name
        Image.fromarray(image).save(path)
        yy, xx = np.mgrid[0:size, 0:size]
        heat = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 6) ** 2)) * (0.9 if blast else 0.3)
        heatmap = self.heatmaps / f"heat-{self.count}.png"
        Image.fromarray(overlay(image, heat)).save(heatmap)
        return path, heatmap

    def field(self, name: str, hot: Sequence[int], columns: int = 4, rows: int = 3) -> Field:
        """Write a field of `columns` x `rows` tiles and its heat map, hot over the tiles `hot`
        (indices from 0, row by row) and cold elsewhere; the heat map is the field shrunk."""
        self.count += 1
        width, height = columns * TILE, rows * TILE
        image, _ = draw_field(np.random.default_rng(self.count), width, height, n_cells=4)
        path = self.inbox / name
        Image.fromarray(image).save(path)
        boxes = tuple((index % columns * TILE, index // columns * TILE, TILE, TILE) for index in range(columns * rows))
        small = np.asarray(Image.fromarray(image).resize((round(width * HEAT_SCALE), round(height * HEAT_SCALE))))
        heat = np.zeros(small.shape[:2], dtype=np.float32)
        for index in hot:
            x, y, side, _ = (round(value * HEAT_SCALE) for value in boxes[index])
            heat[y:y + side, x:x + side] = 0.9
        heatmap = self.heatmaps / f"heat-{self.count}.png"
        Image.fromarray(overlay(small, heat)).save(heatmap)
        return Field(path, heatmap, width, height, boxes)


@dataclass(frozen=True)
class Field:
    """A field written by `SlideFiles.field`: its files, size and tile boxes (x, y, width, height)."""

    path: Path
    heatmap: Path
    width: int
    height: int
    boxes: tuple[tuple[int, int, int, int], ...]

    def cells(self, scores: Sequence[float], threshold: float = THRESHOLD, found_by: str = "white cell",
              p_values: Sequence[float | None] | None = None) -> list[Cell]:
        """One stored cell per tile with these scores (and p-values, if given), flagged as the scorer
        flags (at or above the threshold)."""
        kept = [None] * len(scores) if p_values is None else p_values
        return [Cell(cell_index=index, x=x, y=y, width=width, height=height, found_by=found_by, score=score,
                     l_d=score * 0.5, l_r=score * 0.3, l_l=score * 0.2, flagged=score >= threshold, p_value=p_value)
                for index, ((x, y, width, height), score, p_value) in enumerate(zip(self.boxes, scores, kept,
                                                                                   strict=True))]


def tiling(how: str, rule: str = "grid") -> TilingRecord:
    return TilingRecord(rule, how, 257, 1.0, 0.5)


def record_scored(store: Store, model: ModelVersion, path: Path, heatmap: Path | None, score: float,
                  *, threshold: float = THRESHOLD, folder: Path | None = None, tiling: TilingRecord | None = None,
                  cells: Sequence[Cell] = (), size: tuple[int, int] | None = None, warning: str | None = None,
                  judgement: Judgement | None = None) -> int:
    """Record a slide (`size` its width and height) and score it with its cells (and the operating
    point's `judgement`, as scores since p-values were kept have it); returns the slide id."""
    width, height = (None, None) if size is None else size
    slide = store.record_slide(path, hashlib.sha256(str(path).encode()).hexdigest(), 1000,
                               folder or path.parent, width=width, height=height).slide
    store.add_score(slide.id, model.id, score=score, l_d=score * 0.5, l_r=score * 0.3, l_l=score * 0.2,
                    threshold=threshold, flagged=score >= threshold, duration_seconds=0.1, heatmap_path=heatmap,
                    tiling=tiling, cells=cells, warning=warning, judgement=judgement)
    return slide.id


def record_field(store: Store, model: ModelVersion, field: Field, scores: Sequence[float],
                 threshold: float = THRESHOLD, p_values: Sequence[float] | None = None,
                 judgement: Judgement | None = None) -> int:
    """Record a field and score it as the scorer does: its score is its highest cell's."""
    return record_scored(store, model, field.path, field.heatmap, max(scores), threshold=threshold,
                         tiling=tiling(f"{len(scores)} tiles, one per white cell", "white cells"),
                         cells=field.cells(scores, threshold, p_values=p_values), size=(field.width, field.height),
                         judgement=judgement)
