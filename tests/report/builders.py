"""Builders for report tests: a results database written through the Store API, with real slide
images and heat-map overlays on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ganad_clinic.imaging.overlay import overlay
from ganad_clinic.imaging.synthetic import generate_cell
from ganad_clinic.store import ModelVersion, Store

THRESHOLD = 0.7
THRESHOLD_RULE = "95th percentile of 20 validation-normal scores"


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


def record_scored(store: Store, model: ModelVersion, path: Path, heatmap: Path | None, score: float,
                  *, threshold: float = THRESHOLD, folder: Path | None = None, tiling: str | None = None,
                  warning: str | None = None) -> int:
    """Record a slide and score it; returns the slide id."""
    slide = store.record_slide(path, hashlib.sha256(str(path).encode()).hexdigest(), 1000,
                               folder or path.parent).slide
    store.add_score(slide.id, model.id, score=score, l_d=score * 0.5, l_r=score * 0.3, l_l=score * 0.2,
                    threshold=threshold, flagged=score >= threshold, duration_seconds=0.1, heatmap_path=heatmap,
                    tiling=tiling, warning=warning)
    return slide.id
