"""Retraining on the lab's own normal samples: gather, split, train, save and register a candidate.

The training images are the slides a reviewer marked normal (their latest review) plus, optionally,
a folder of normal images. A share of those normals is held out to calibrate the threshold
(model.conformal); another share and half of the slides confirmed anomalous form the validation
set, which picks the checkpoint and the score's form and never takes part in a gradient step; the
other half of the anomalies is held out for the acceptance check, which must judge the candidate
on slides it never saw. Slides are cut into tiles with the active model's tiling rule, so the model learns from what
it will score. The result is registered but never activated here: its acceptance check against
the active model (screening.acceptance) is run and audited, and activation goes through it.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganad_clinic.errors import GanadError
from ganad_clinic.imaging.io import SUPPORTED_SUFFIXES, read_image
from ganad_clinic.imaging.tiling import TilingRule
from ganad_clinic.model.bundle import save_bundle, threshold_rule, trained_on
from ganad_clinic.model.conformal import split_calibration
from ganad_clinic.model.inference import CROP_SIZE_KEY, Inferencer
from ganad_clinic.model.trainer import CancelFlag, TrainConfig, TrainingCancelled, TrainProgress, train
from ganad_clinic.screening.acceptance import AcceptanceCheck, check_candidate
from ganad_clinic.screening.names import slide_file
from ganad_clinic.screening.registry import import_bundle, load_registered
from ganad_clinic.store import ModelVersion, ReviewDecision, SlideStatus, Store, resolve_home

NORMAL = 0
ANOMALOUS = 1
MIN_TRAIN_NORMALS = 2
MIN_VAL_NORMALS = 2
DEFAULT_VAL_FRACTION = 0.2
CANDIDATES_FOLDER = "candidates"
FROM_REVIEW = "review"
FROM_FOLDER = "folder"


class RetrainError(GanadError, ValueError):
    """Retraining cannot start with what there is; the message says what is missing."""


@dataclass(frozen=True)
class RetrainSample:
    path: Path
    label: int  # NORMAL or ANOMALOUS
    origin: str  # FROM_REVIEW or FROM_FOLDER


@dataclass(frozen=True)
class GatheredSamples:
    """Everything usable for a retrain, before the split."""

    normals: tuple[RetrainSample, ...]
    anomalies: tuple[RetrainSample, ...]
    missing: int  # reviewed slides whose file is gone (neither at its path nor archived)

    @property
    def reviewed_normals(self) -> int:
        return sum(sample.origin == FROM_REVIEW for sample in self.normals)

    @property
    def folder_normals(self) -> int:
        return sum(sample.origin == FROM_FOLDER for sample in self.normals)


@dataclass(frozen=True)
class RetrainSplit:
    train: tuple[RetrainSample, ...]  # normal only
    val: tuple[RetrainSample, ...]  # normal and confirmed anomalous
    calibration: tuple[RetrainSample, ...]  # normal only: they set the threshold and take no other part
    held_out: tuple[RetrainSample, ...] = ()  # confirmed anomalies kept for the acceptance check: no part at all

    @property
    def val_labels(self) -> list[int]:
        return [sample.label for sample in self.val]


@dataclass(frozen=True)
class Candidate:
    """A registered, inactive model, what it was trained on, and its acceptance check against the
    active model (`check`: the held-out evidence, which leaves out every slide this retrain used
    except its calibration normals)."""

    model: ModelVersion
    parent: ModelVersion
    threshold: float
    threshold_rule: str
    check: AcceptanceCheck
    n_train_tiles: int
    n_val_normal: int
    n_val_anomalous: int


def gather_samples(store: Store, folder: str | os.PathLike[str] | None = None) -> GatheredSamples:
    """Slides whose latest review says normal (and confirmed anomalies, for validation), plus the
    images directly in `folder`; the same content reviewed under two names counts once."""
    normals: list[RetrainSample] = []
    anomalies: list[RetrainSample] = []
    seen: set[str] = set()
    missing = 0
    for summary in store.list_slides():
        review, slide = summary.review, summary.slide
        if review is None or slide.status is not SlideStatus.SCORED or slide.sha256 in seen:
            continue
        if review.decision is ReviewDecision.SECOND_READ:
            continue
        path = slide_file(slide.archived_path, slide.path)
        if not path.is_file():
            missing += 1
            continue
        seen.add(slide.sha256)
        label = NORMAL if review.decision is ReviewDecision.NORMAL else ANOMALOUS
        (normals if label == NORMAL else anomalies).append(RetrainSample(path, label, FROM_REVIEW))
    if folder is not None:
        normals += [RetrainSample(path, NORMAL, FROM_FOLDER) for path in images_in(folder)]
    return GatheredSamples(tuple(normals), tuple(anomalies), missing)


def images_in(folder: str | os.PathLike[str]) -> list[Path]:
    """Visible image files directly in `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RetrainError(f"the folder of normal images {folder} does not exist")
    return sorted(entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith((".", "~"))
                  and entry.suffix.lower() in SUPPORTED_SUFFIXES)


def split_samples(gathered: GatheredSamples, val_fraction: float = DEFAULT_VAL_FRACTION,
                  seed: int = 0) -> RetrainSplit:
    """Hold out the calibration normals (model.conformal.calibration_count of them), then
    `val_fraction` of the other normals (at least MIN_VAL_NORMALS) for validation; the confirmed
    anomalies go half to validation (the larger half when odd) and half to the acceptance check."""
    needed = MIN_TRAIN_NORMALS + MIN_VAL_NORMALS + 1
    if len(gathered.normals) < needed:
        raise RetrainError(f"retraining needs at least {needed} normal samples (slides reviewed as normal or "
                           f"images in the folder): {MIN_TRAIN_NORMALS} to train, {MIN_VAL_NORMALS} to validate "
                           f"and one to calibrate; found {len(gathered.normals)}")
    rest, calibration = split_calibration(gathered.normals, seed)
    normals = list(rest)
    random.Random(seed).shuffle(normals)
    n_val = min(max(MIN_VAL_NORMALS, round(len(normals) * val_fraction)), len(normals) - MIN_TRAIN_NORMALS)
    anomalies = list(gathered.anomalies)
    random.Random(seed).shuffle(anomalies)
    n_held = len(anomalies) // 2
    return RetrainSplit(tuple(normals[n_val:]), tuple(normals[:n_val]) + tuple(anomalies[n_held:]),
                        tuple(calibration), tuple(anomalies[:n_held]))


def config_for(metadata: dict[str, Any], *, lam: float, beta: float, steps: int | None = None) -> TrainConfig:
    """The training config recorded in a bundle's metadata (`read_metadata`) with this lab's λ, β
    (the paper's model only) and step budget; a bundle that recorded none gives its architecture
    sizes on TrainConfig's defaults."""
    ganad = metadata.get("ganad", {})
    recorded = (ganad.get("training") or {}).get("config")
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    if recorded:
        values = {key: value for key, value in recorded.items() if key in known}
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
    else:
        architecture = ganad.get("architecture", {})
        values = {key: int(architecture[key]) for key in ("image_size", "channels", "latent") if key in architecture}
    if values.get("method", "ganad") == "ganad":  # a baseline keeps its reference's score weights
        values.update(lam=lam, beta=beta)
    if steps is not None:
        values["steps"] = steps
    return TrainConfig(**values)


def next_version(parent: str, taken: set[str]) -> str:
    """The parent's version with its minor number raised until free: 1.0.0 -> 1.1.0 (1.2.0 if taken)."""
    release = parent.split("+")[0].split(".")
    major = int(release[0]) if release[0].isdigit() else 0
    minor = int(release[1]) if len(release) > 1 and release[1].isdigit() else 0
    while True:
        minor += 1
        candidate = f"{major}.{minor}.0"
        if candidate not in taken:
            return candidate


def slide_tiles(paths: Sequence[Path], rule: TilingRule) -> list[list[np.ndarray]]:
    """Each slide cut as the screening service cuts it: crops whole, fields in tiles (one per white cell)."""
    cut = []
    for path in paths:
        image = read_image(path)
        cut.append([tile.cut(image) for tile in rule.plan(image).tiles])
    return cut


def validation_tiles(split: RetrainSplit, rule: TilingRule) -> tuple[list[np.ndarray], list[int]]:
    """What training validates on: every tile of a normal slide is normal; an anomalous slide
    counts only when it is a crop (which tile of an anomalous field shows the anomaly is not known)."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    for sample in split.val:
        image = read_image(sample.path)
        if sample.label == ANOMALOUS and rule.is_tiled(*image.shape[:2]):
            continue
        tiles = [tile.cut(image) for tile in rule.plan(image).tiles]
        images += tiles
        labels += [sample.label] * len(tiles)
    return images, labels


def retrain(store: Store, home: str | os.PathLike[str] | None, split: RetrainSplit, config: TrainConfig, *,
            parent: ModelVersion, actor: str, field_scale: float = 1.0,
            progress: Callable[[TrainProgress], None] | None = None, cancel: CancelFlag | None = None) -> Candidate:
    """Train on `split`, save the bundle, register it inactive, audit the retrain and run the
    candidate's acceptance check (audited too). Fields are tiled at `field_scale` (the screening
    service's), for training and for the check.

    Raises TrainingCancelled (nothing written or registered) when `cancel` is set.
    """
    parent_scorer = Inferencer(load_registered(parent), field_scale)
    rule = parent_scorer.rule
    train_images = [tile for tiles in slide_tiles([sample.path for sample in split.train], rule) for tile in tiles]
    val_images, val_labels = validation_tiles(split, rule)
    calibration_images = [tile for tiles in slide_tiles([sample.path for sample in split.calibration], rule)
                          for tile in tiles]
    result = train(config, train_images, val_images, val_labels, calibration_images, progress=progress,
                   cancel=cancel)
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("training was cancelled; no bundle was written")

    normals = split.train + split.val + split.calibration
    reviewed = sum(sample.origin == FROM_REVIEW for sample in normals if sample.label == NORMAL)
    from_folder = sum(sample.origin == FROM_FOLDER for sample in normals)
    anomalous = val_labels.count(ANOMALOUS)
    version = next_version(parent.version, {model.version for model in store.list_model_versions()})
    changelog = (f"retrained locally by {actor} from {parent.version} on {reviewed} slides reviewed as normal"
                 f"{f' and {from_folder} folder images' if from_folder else ''}")
    training = {"config": config.to_dict(), CROP_SIZE_KEY: rule.crop_size, "data": "local retrain",
                "n_train": len(train_images), "n_val_normal": val_labels.count(NORMAL),
                "n_val_anomalous": anomalous, "n_calibration": len(calibration_images),
                **result.record(),
                **trained_on(*([sample.path for sample in part] for part in (split.train, split.val,
                                                                             split.calibration)))}
    staging = resolve_home(home) / CANDIDATES_FOLDER / uuid.uuid4().hex
    try:
        save_bundle(staging, result.model, result.score_config, result.operating_point, version=version,
                    training=training,
                    validation_metrics=result.validation_metrics, changelog=changelog,
                    parent={"version": parent.version, "sha256": parent.sha256})
        model = import_bundle(store, staging, home, actor=actor).model
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    store.audit(actor, "model.retrained", {"version": model.version, "parent": parent.version,
                                           "train_tiles": len(train_images), "reviewed_normals": reviewed,
                                           "folder_images": from_folder, "val_anomalous": anomalous})
    check = check_candidate(store, model.version, field_scale=field_scale, actor=actor)
    return Candidate(model, parent, result.operating_point.threshold(), threshold_rule(result.operating_point),
                     check, len(train_images), val_labels.count(NORMAL), anomalous)
