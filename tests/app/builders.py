"""Builders for the app tests: a tiny bundle that records its training config (so a retrain from
it is tiny too), synthetic cell files, slides with scores written straight to the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle, save_bundle
from ganad_clinic.model.trainer import TrainConfig, train
from ganad_clinic.screening.ingest import file_sha256
from ganad_clinic.store import ReviewDecision, Slide, Store

CROP = 48


def tiny_config(**overrides) -> TrainConfig:
    values = dict(spec="all", image_size=32, width=0.125, latent=16, batch_size=4, steps=4, eval_every=2, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def cells(n: int, blast: bool, start: int = 0) -> list[np.ndarray]:
    return [generate_cell(crop_rng(0, blast, start + i), blast, size=CROP).astype(np.float32) / 255 for i in range(n)]


def train_app_bundle(out: Path) -> Path:
    config = tiny_config()
    result = train(config, cells(8, False), cells(3, False, 8) + cells(3, True), [0, 0, 0, 1, 1, 1])
    return save_bundle(out, result.model, result.score_config, result.threshold,
                       training={"config": config.to_dict(), "crop_size": CROP, "n_train": 8},
                       validation_metrics=result.validation_metrics, changelog="tiny test model")


def perturbed_copy(bundle_path: Path, out: Path) -> Path:
    """The same model with slightly different weights: another registry entry, no training."""
    bundle = load_bundle(bundle_path)
    with torch.no_grad():
        next(bundle.model.parameters()).add_(0.01)
    return save_bundle(out, bundle.model, bundle.score_config, bundle.threshold,
                       training=bundle.metadata["ganad"]["training"], changelog="perturbed copy")


def write_cells(folder: Path, n: int, *, blast: bool = False, start: int = 0, prefix: str = "cell") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{prefix}-{'blast' if blast else 'normal'}-{start + i:03d}.png"
        Image.fromarray(generate_cell(crop_rng(0, blast, start + i), blast, size=CROP)).save(path)
        paths.append(path)
    return paths


def add_scored_slide(store: Store, model_id: int, path: Path, score: float, threshold: float = 1.0) -> Slide:
    recorded = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent)
    store.add_score(recorded.slide.id, model_id, score=score, l_d=score / 2, l_r=score * 10, l_l=score / 3,
                    threshold=threshold, flagged=score >= threshold, duration_seconds=0.01)
    return recorded.slide


def reviewed_slides(store: Store, model_id: int, folder: Path, normals: int, anomalies: int) -> None:
    """Scored slides with reviews: `normals` marked normal, `anomalies` confirmed anomalous."""
    for path in write_cells(folder, normals):
        store.add_review(add_scored_slide(store, model_id, path, 0.5).id, "Dr Test", ReviewDecision.NORMAL)
    for path in write_cells(folder, anomalies, blast=True):
        store.add_review(add_scored_slide(store, model_id, path, 2.0).id, "Dr Test", ReviewDecision.ANOMALY_CONFIRMED)
