from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.synthetic import FIELD_SCALE, crop_rng, draw_field, field_rng, generate_cell
from ganad_clinic.imaging.tiling import TilingRule
from ganad_clinic.model.bundle import read_metadata
from ganad_clinic.model.trainer import TrainConfig, TrainingCancelled
from ganad_clinic.screening.retrain import (
    FROM_FOLDER,
    GatheredSamples,
    RetrainError,
    RetrainSample,
    RetrainSplit,
    config_for,
    gather_samples,
    next_version,
    retrain,
    split_samples,
    validation_tiles,
)
from ganad_clinic.store import ModelVersion, ReviewDecision, Store

CROP = 48


def tiny_config() -> TrainConfig:
    return TrainConfig(spec="all", image_size=32, width=0.125, latent=16, batch_size=4, steps=3, eval_every=3, seed=0)


def cell_file(folder: Path, index: int, blast: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{'blast' if blast else 'cell'}-{index:03d}.png"
    Image.fromarray(generate_cell(crop_rng(0, blast, index), blast, size=CROP)).save(path)
    return path


def reviewed(store: Store, model: ModelVersion, path: Path, decision: ReviewDecision) -> int:
    slide = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent).slide
    store.add_score(slide.id, model.id, score=1.0, l_d=1.0, l_r=1.0, l_l=1.0, threshold=1.0, flagged=True,
                    duration_seconds=0.1)
    store.add_review(slide.id, "Dr Test", decision)
    return slide.id


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_gather_takes_the_latest_review_and_an_optional_folder(store, model, tmp_path: Path):
    slides = tmp_path / "slides"
    normal = reviewed(store, model, cell_file(slides, 0), ReviewDecision.NORMAL)
    changed_mind = reviewed(store, model, cell_file(slides, 1), ReviewDecision.NORMAL)
    store.add_review(changed_mind, "Dr Other", ReviewDecision.SECOND_READ)
    reviewed(store, model, cell_file(slides, 2, blast=True), ReviewDecision.ANOMALY_CONFIRMED)
    gone = cell_file(slides, 3)
    reviewed(store, model, gone, ReviewDecision.NORMAL)
    gone.unlink()
    extra = tmp_path / "extra"
    cell_file(extra, 10)
    (extra / ".hidden.png").write_bytes(b"")
    (extra / "notes.txt").write_text("not an image")

    gathered = gather_samples(store, extra)

    assert [sample.path.name for sample in gathered.normals] == ["cell-000.png", "cell-010.png"]
    assert (gathered.reviewed_normals, gathered.folder_normals, gathered.missing) == (1, 1, 1)
    assert [sample.path.name for sample in gathered.anomalies] == ["blast-002.png"]
    assert store.get_slide(normal).file_name == "cell-000.png"


def test_a_missing_folder_is_an_error(store):
    with pytest.raises(RetrainError, match="does not exist"):
        gather_samples(store, "/no/such/folder")


def test_split_holds_out_normals_and_every_anomaly(tmp_path: Path):
    normals = tuple(RetrainSample(tmp_path / f"n{i}.png", 0, FROM_FOLDER) for i in range(10))
    anomalies = (RetrainSample(tmp_path / "a.png", 1, FROM_FOLDER),)
    split = split_samples(GatheredSamples(normals, anomalies, 0))
    assert (len(split.train), len(split.val), len(split.calibration), len(split.held_out)) == (3, 3, 5, 0)
    assert split.val_labels.count(1) == 1
    assert not set(split.train) & set(split.val) and not set(split.calibration) & set(split.train + split.val)


def test_half_the_anomalies_are_held_out_for_the_acceptance_check(tmp_path: Path):
    normals = tuple(RetrainSample(tmp_path / f"n{i}.png", 0, FROM_FOLDER) for i in range(10))
    anomalies = tuple(RetrainSample(tmp_path / f"a{i}.png", 1, FROM_FOLDER) for i in range(7))
    split = split_samples(GatheredSamples(normals, anomalies, 0))
    assert (split.val_labels.count(1), len(split.held_out)) == (4, 3)
    assert set(split.held_out) | {s for s in split.val if s.label == 1} == set(anomalies)
    assert not set(split.held_out) & set(split.val)
    with pytest.raises(RetrainError, match="at least 5 normal samples"):
        split_samples(GatheredSamples(normals[:4], anomalies, 0))


def test_validation_keeps_a_normal_fields_cells_and_an_anomalous_crop_but_no_anomalous_field(tmp_path: Path):
    def field(name: str, n_cells: int, blast_fraction: float) -> Path:
        image, _ = draw_field(field_rng(2, n_cells), width=600, height=400, n_cells=n_cells,
                              blast_fraction=blast_fraction)
        Image.fromarray(image).save(tmp_path / name)
        return tmp_path / name

    val = (RetrainSample(field("normal.png", 3, 0.0), 0, FROM_FOLDER),
           RetrainSample(field("one blast.png", 1, 1.0), 1, FROM_FOLDER),
           RetrainSample(cell_file(tmp_path, 7, blast=True), 1, FROM_FOLDER))
    split = RetrainSplit(train=(), val=val, calibration=())
    images, labels = validation_tiles(split, TilingRule(field_scale=FIELD_SCALE))
    assert labels == [0, 0, 0, 1]  # one tile per white cell of the normal field, then the crop whole
    assert [image.shape[:2] for image in images] == [(128, 128)] * 3 + [(CROP, CROP)]


def test_next_version_raises_the_minor_number():
    assert next_version("1.0.0", {"1.0.0"}) == "1.1.0"
    assert next_version("1.1.0+abcdef12", {"1.2.0"}) == "1.3.0"
    assert next_version("local", set()) == "0.1.0"


def test_config_for_keeps_the_recorded_config_with_the_labs_weights(tiny_bundle: Path):
    metadata = read_metadata(tiny_bundle)
    metadata["ganad"]["training"]["config"] = {**tiny_config().to_dict(), "betas": [0.5, 0.9], "retired": 1}
    config = config_for(metadata, lam=0.5, beta=2.0, steps=7)
    assert (config.image_size, config.width, config.lam, config.beta, config.steps) == (32, 0.125, 0.5, 2.0, 7)
    assert config.betas == (0.5, 0.9)
    del metadata["ganad"]["training"]["config"]
    bare = config_for(metadata, lam=0.8, beta=1.0)
    assert (bare.image_size, bare.latent) == (32, 16)


def test_config_for_a_baseline_keeps_its_references_score_weights(tiny_bundle: Path):
    metadata = read_metadata(tiny_bundle)
    alad = dataclasses.replace(tiny_config(), method="alad", lam=1.0, beta=0.0)
    metadata["ganad"]["training"]["config"] = {**alad.to_dict(), "betas": [0.5, 0.9]}
    config = config_for(metadata, lam=0.5, beta=2.0, steps=7)
    assert (config.method, config.lam, config.beta, config.steps) == ("alad", 1.0, 0.0, 7)


def test_retrain_registers_an_inactive_candidate_and_audits_it(store, model, home: Path, tmp_path: Path):
    for index in range(5):
        reviewed(store, model, cell_file(tmp_path / "slides", index), ReviewDecision.NORMAL)
    reviewed(store, model, cell_file(tmp_path / "slides", 0, blast=True), ReviewDecision.ANOMALY_CONFIRMED)
    split = split_samples(gather_samples(store))
    steps: list[int] = []

    candidate = retrain(store, home, split, tiny_config(), parent=model, actor="Dr Test",
                        progress=lambda progress: steps.append(progress.step))

    assert steps == [1, 2, 3]
    assert candidate.model.version == "1.1.0" and not candidate.model.active
    assert store.active_model_version().id == model.id
    assert (candidate.n_train_tiles, candidate.n_val_normal, candidate.n_val_anomalous) == (2, 2, 1)
    check = candidate.check  # every reviewed slide went into the retrain: only its calibration normal is evidence
    assert check.active.id == model.id and check.candidate.id == candidate.model.id and not check.accepted
    assert (check.evidence.calibration, check.evidence.held_out, check.evidence.used_in_training) == (1, 0, 5)
    [checked] = store.list_audit_events("model.acceptance_checked")
    assert checked.actor == "Dr Test" and checked.details["version"] == "1.1.0"
    metadata = read_metadata(candidate.model.bundle_path)
    assert metadata["ganad"]["parent"] == {"version": model.version, "sha256": model.sha256}
    assert metadata["ganad"]["training"]["crop_size"] == CROP
    assert metadata["ganad"]["training"]["choices"]["figure"] == "auc"  # one confirmed anomaly validates
    [event] = store.list_audit_events("model.retrained")
    assert event.actor == "Dr Test" and event.details["parent"] == model.version
    assert not any((home / "candidates").iterdir())


def test_a_cancelled_retrain_registers_nothing(store, model, home: Path, tmp_path: Path):
    for index in range(5):
        reviewed(store, model, cell_file(tmp_path / "slides", index), ReviewDecision.NORMAL)
    cancel = threading.Event()

    def cancel_after_first_step(progress) -> None:
        cancel.set()

    with pytest.raises(TrainingCancelled):
        retrain(store, home, split_samples(gather_samples(store)), tiny_config(), parent=model, actor="Dr Test",
                progress=cancel_after_first_step, cancel=cancel)
    assert [m.version for m in store.list_model_versions()] == [model.version]
    assert not store.list_audit_events("model.retrained")
