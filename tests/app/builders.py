"""Builders for the app tests: a tiny bundle that records its training config (so a retrain from
it is tiny too), synthetic cell and field files, slides with scores written straight to the store
(made-up numbers) or scored for real as the screening service scores them."""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.synthetic import CROP_SIZE, FIELD_SCALE, crop_rng, field_rng, generate_cell, generate_field
from ganad_clinic.imaging.tiling import FOUND_BY, WHOLE_IMAGE
from ganad_clinic.model.bundle import load_bundle, save_bundle
from ganad_clinic.model.inference import Inferencer
from ganad_clinic.model.trainer import TrainConfig, train
from ganad_clinic.screening.registry import load_registered
from ganad_clinic.screening.slide_records import cell_rows, judgement, tiling_record
from ganad_clinic.store import Cell, Judgement, ModelVersion, ReviewDecision, Score, Slide, Store, TilingRecord

CROP = 48
TINY_FIELD_SCALE = CROP_SIZE * FIELD_SCALE / CROP
"""Synthetic fields' pixel scale for the tiny model (trained on 48-px crops): a white cell's tile is
the 128 px the fields draw it in, as for a model of 257-px crops at field scale 0.5."""


def tiny_config(**overrides) -> TrainConfig:
    values = dict(spec="all", image_size=32, width=0.125, latent=16, batch_size=4, steps=4, eval_every=2, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def cells(n: int, blast: bool, start: int = 0) -> list[np.ndarray]:
    return [generate_cell(crop_rng(0, blast, start + i), blast, size=CROP).astype(np.float32) / 255 for i in range(n)]


def train_app_bundle(out: Path) -> Path:
    config = tiny_config()
    result = train(config, cells(8, False), cells(3, False, 8) + cells(3, True), [0, 0, 0, 1, 1, 1],
                   cells(12, False, 11))
    return save_bundle(out, result.model, result.score_config, result.operating_point,
                       training={"config": config.to_dict(), "crop_size": CROP, "n_train": 8},
                       validation_metrics=result.validation_metrics, changelog="tiny test model")


def perturbed_copy(bundle_path: Path, out: Path, delta: float = 0.01) -> Path:
    """The same model with its first weights moved by `delta` (its calibration is the original's, so
    a perturbed copy is miscalibrated; 0: the same scores): another registry entry, no training."""
    bundle = load_bundle(bundle_path)
    with torch.no_grad():
        next(bundle.model.parameters()).add_(delta)
    return save_bundle(out, bundle.model, bundle.score_config, bundle.operating_point(),
                       training=bundle.metadata["ganad"]["training"], changelog="perturbed copy")


def write_cells(folder: Path, n: int, *, blast: bool = False, start: int = 0, prefix: str = "cell") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{prefix}-{'blast' if blast else 'normal'}-{start + i:03d}.png"
        Image.fromarray(generate_cell(crop_rng(0, blast, start + i), blast, size=CROP)).save(path)
        paths.append(path)
    return paths


def write_field(folder: Path, index: int, name: str | None = None) -> Path:
    """A synthetic field (972 x 1296, two to six white cells) as a PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"field-{index:03d}.png")
    path.write_bytes(_field_png(index))
    return path


@functools.cache
def _field_png(index: int) -> bytes:
    """A field's PNG bytes, drawn and encoded once per test session (about a second each)."""
    buffer = BytesIO()
    Image.fromarray(generate_field(field_rng(0, index))[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def add_scored_slide(store: Store, model_id: int, path: Path, score: float, threshold: float = 1.0, *,
                     flagged: bool | None = None, judged: Judgement | None = None) -> Slide:
    """A crop with a made-up score, kept as one whole-image cell (a recompute gives another score);
    its stored flag is `score > threshold` unless `flagged` says otherwise (another operating point)."""
    recorded = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent)
    with Image.open(path) as image:
        width, height = image.size
    flag = score > threshold if flagged is None else flagged
    cell = Cell(cell_index=0, x=0, y=0, width=width, height=height, found_by=FOUND_BY[WHOLE_IMAGE], score=score,
                l_d=score / 2, l_r=score * 10, l_l=score / 3, flagged=flag,
                p_value=None if judged is None else judged.p_value)
    store.add_score(recorded.slide.id, model_id, score=score, l_d=score / 2, l_r=score * 10, l_l=score / 3,
                    threshold=threshold, flagged=flag, duration_seconds=0.01,
                    tiling=TilingRecord(WHOLE_IMAGE, WHOLE_IMAGE, CROP, TINY_FIELD_SCALE, 0.5), cells=[cell],
                    judgement=judged)
    return recorded.slide


def score_slide(store: Store, model: ModelVersion, path: Path, target_fpr: float | None = None) -> Score:
    """Score a file with the registered model at `target_fpr` (default: the model's own) and store
    it as the screening service does: the result with its tiling, its judgement (p-value, rates) and
    one row per cell."""
    recorded = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent)
    inferencer = Inferencer(load_registered(model), TINY_FIELD_SCALE, target_fpr=target_fpr)
    result = inferencer.score_file(path)
    return store.add_score(recorded.slide.id, model.id, score=result.score, l_d=result.l_d, l_r=result.l_r,
                           l_l=result.l_l, threshold=result.threshold, flagged=result.flagged,
                           duration_seconds=0.01, tiling=tiling_record(result), cells=cell_rows(result),
                           judgement=judgement(result))


def reviewed_slides(store: Store, model_id: int, folder: Path, normals: int, anomalies: int) -> None:
    """Scored slides with reviews: `normals` marked normal, `anomalies` confirmed anomalous."""
    for path in write_cells(folder, normals):
        store.add_review(add_scored_slide(store, model_id, path, 0.5).id, "Dr Test", ReviewDecision.NORMAL)
    for path in write_cells(folder, anomalies, blast=True):
        store.add_review(add_scored_slide(store, model_id, path, 2.0).id, "Dr Test", ReviewDecision.ANOMALY_CONFIRMED)
