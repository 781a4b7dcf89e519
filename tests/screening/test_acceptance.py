"""The acceptance gate on real files and tiny models: evidence, bootstrap intervals, refusals, overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganad_clinic.files import file_sha256
from ganad_clinic.imaging.synthetic import crop_rng, generate_cell
from ganad_clinic.model.bundle import load_bundle, save_bundle, trained_on
from ganad_clinic.model.scoring import roc_auc
from ganad_clinic.screening.acceptance import (
    CALIBRATION,
    CHECKED,
    HELD_OUT,
    MIN_ANOMALIES,
    MIN_NORMALS,
    OVERRIDDEN,
    AcceptanceError,
    AcceptanceRefused,
    activate_checked,
    check_candidate,
    describe,
    gather_evidence,
    paired_bootstrap,
)
from ganad_clinic.screening.registry import import_bundle
from ganad_clinic.store import ModelVersion, ReviewDecision, Store

CROP = 48
EVIDENCE_SEED = 7  # not the seed the tiny models were trained on


def write_crops(folder: Path, n: int, *, blast: bool = False, start: int = 0) -> list[Path]:
    """Synthetic cell crops the size the tiny models learnt from."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + n):
        path = folder / f"{'blast' if blast else 'cell'}-{index:03d}.png"
        Image.fromarray(generate_cell(crop_rng(EVIDENCE_SEED, blast, index), blast, size=CROP)).save(path)
        paths.append(path)
    return paths


def reviewed(store: Store, model: ModelVersion, path: Path, decision: ReviewDecision | None) -> int:
    """Record `path` as a scored slide (the score is made up: the check scores the file again) and review it."""
    slide = store.record_slide(path, file_sha256(path), path.stat().st_size, path.parent).slide
    store.add_score(slide.id, model.id, score=1.0, l_d=1.0, l_r=1.0, l_l=1.0, threshold=1.0, flagged=True,
                    duration_seconds=0.1)
    if decision is not None:
        store.add_review(slide.id, "Dr Test", decision)
    return slide.id


def reviewed_evidence(store: Store, model: ModelVersion, folder: Path, n_normal: int,
                      n_anomalous: int) -> list[Path]:
    normals = write_crops(folder, n_normal)
    anomalies = write_crops(folder, n_anomalous, blast=True)
    for path in normals:
        reviewed(store, model, path, ReviewDecision.NORMAL)
    for path in anomalies:
        reviewed(store, model, path, ReviewDecision.ANOMALY_CONFIRMED)
    return normals + anomalies


def candidate_bundle(source: Path, out: Path, *, noise: float = 0.0, version: str = "1.1.0",
                     used: tuple[list[Path], list[Path], list[Path]] = ([], [], [])) -> Path:
    """A copy of `source` keeping its calibration, its weights moved by seeded noise of size `noise`
    (a model no longer matching its calibration flags nearly everything), recording the files
    (train, validation, calibration) it was trained on."""
    bundle = load_bundle(source)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in bundle.model.parameters():
            parameter.add_(noise * torch.randn(parameter.shape, generator=generator))
    return save_bundle(out, bundle.model, bundle.score_config, bundle.operating_point(), version=version,
                       training={**bundle.metadata["ganad"]["training"], **trained_on(*used)},
                       changelog=f"candidate, noise {noise}")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_the_auc_is_the_chance_an_anomaly_scores_higher_and_each_interval_holds_its_value() -> None:
    rng = np.random.default_rng(3)
    labels = np.array([0] * 30 + [1] * 8)
    scores = rng.normal(size=38) + labels
    flagged = scores > 1.0
    [figures], differences = paired_bootstrap(labels, [(scores, flagged)], [0.05])
    assert figures.auc.value == pytest.approx(roc_auc(scores, labels))
    assert figures.sensitivity.value == pytest.approx(flagged[labels == 1].mean())
    assert figures.specificity.value == pytest.approx(1 - flagged[labels == 0].mean())
    for interval in (figures.auc, figures.sensitivity, figures.specificity):
        assert interval.low <= interval.value <= interval.high
    assert (figures.n_normal, figures.n_anomalous, figures.target_fpr) == (30, 8, 0.05)
    assert differences == {}


def test_intervals_shrink_with_more_evidence_and_the_same_seed_gives_the_same_interval() -> None:
    def width(n: int) -> float:
        rng = np.random.default_rng(n)
        labels = np.array([0] * n + [1] * n)
        scores = rng.normal(size=2 * n) + labels
        [figures], _ = paired_bootstrap(labels, [(scores, scores > 0.5)], [0.05], seed=1)
        return figures.auc.high - figures.auc.low

    assert width(400) < width(100) / 1.5 < width(25) / 3
    labels = np.array([0] * 20 + [1] * 5)
    scores = np.linspace(0, 1, 25)
    first, _ = paired_bootstrap(labels, [(scores, scores > 0.5)], [0.05], seed=4)
    again, _ = paired_bootstrap(labels, [(scores, scores > 0.5)], [0.05], seed=4)
    assert first == again


def test_the_difference_is_paired_one_model_against_itself_differs_by_nothing() -> None:
    rng = np.random.default_rng(5)
    labels = np.array([0] * 25 + [1] * 6)
    scores = rng.normal(size=31) + labels
    (one, two), differences = paired_bootstrap(labels, [(scores, scores > 1), (scores, scores > 1)], [0.05, 0.05])
    assert one == two
    for difference in differences.values():
        assert (difference.value, difference.low, difference.high) == (0.0, 0.0, 0.0)


def test_evidence_leaves_out_what_the_candidate_used_and_keeps_its_calibration_normals(
        store: Store, model: ModelVersion, tiny_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "slides"
    normals = write_crops(folder, 6)
    [anomaly, trained_anomaly] = write_crops(folder, 2, blast=True)
    for path in normals[:5]:
        reviewed(store, model, path, ReviewDecision.NORMAL)
    reviewed(store, model, normals[5], None)  # unreviewed, but one of the candidate's calibration normals
    reviewed(store, model, anomaly, ReviewDecision.ANOMALY_CONFIRMED)
    reviewed(store, model, trained_anomaly, ReviewDecision.ANOMALY_CONFIRMED)
    doubted = write_crops(folder, 1, start=50)[0]
    reviewed(store, model, doubted, ReviewDecision.SECOND_READ)
    gone = write_crops(folder, 1, start=60)[0]
    reviewed(store, model, gone, ReviewDecision.NORMAL)
    gone.unlink()
    bundle = candidate_bundle(tiny_bundle, tmp_path / "candidate",
                              used=([normals[0]], [normals[1], trained_anomaly], [normals[2], normals[5]]))

    evidence = gather_evidence(store, load_bundle(bundle).metadata)

    sources = {slide.path.name: (slide.label, slide.source) for slide in evidence.slides}
    assert sources == {"cell-002.png": (0, CALIBRATION), "cell-003.png": (0, HELD_OUT),
                       "cell-004.png": (0, HELD_OUT), "cell-005.png": (0, CALIBRATION),
                       "blast-000.png": (1, HELD_OUT)}
    assert evidence.counts() == {"normal": 4, "anomalous": 1, "held_out": 3, "calibration": 2,
                                 "used_in_training": 3, "missing": 1}


def test_too_little_evidence_is_refused_and_activation_needs_an_override_with_a_reason(
        store: Store, model: ModelVersion, tiny_bundle: Path, home: Path, tmp_path: Path) -> None:
    reviewed_evidence(store, model, tmp_path / "slides", 4, 1)
    candidate = import_bundle(store, candidate_bundle(tiny_bundle, tmp_path / "candidate"), home,
                              actor="tester").model

    check = check_candidate(store, candidate.version, actor="Dr Test")
    assert not check.accepted and check.active is not None and check.active.id == model.id
    assert check.refusals[:2] == (
        f"too little evidence: 4 normal slides, fewer than the {MIN_NORMALS} an acceptance check needs",
        f"too little evidence: 1 confirmed anomalous slides, fewer than the {MIN_ANOMALIES} an acceptance check "
        "needs")
    assert (check.candidate_figures.n_normal, check.candidate_figures.n_anomalous) == (4, 1)
    [event] = store.list_audit_events(CHECKED)
    assert event.actor == "Dr Test" and event.details["accepted"] is False
    assert event.details["candidate"]["n_normal"] == 4 and event.details["evidence"]["held_out"] == 5
    lines = describe(check)
    assert lines[0] == f"Acceptance check of model 1.1.0 against the active model {model.version}"
    assert "Verdict: refused" in lines and any("fewer than the 20" in line for line in lines)

    with pytest.raises(AcceptanceRefused, match="was not activated: too little evidence") as refused:
        activate_checked(store, candidate.version, actor="Dr Test")
    assert not refused.value.check.accepted
    assert store.active_model_version().id == model.id
    assert not store.list_audit_events("model.activated") and not store.list_audit_events(OVERRIDDEN)
    with pytest.raises(AcceptanceError, match="needs a reason"):
        activate_checked(store, candidate.version, actor="Dr Test", override="  ")

    activation = activate_checked(store, candidate.version, actor="Dr Test",
                                  override="urgent: the old model is retired")
    active = activation.model
    assert activation.check is not None and not activation.check.accepted
    assert active.version == "1.1.0" and store.active_model_version().version == "1.1.0"
    [override] = store.list_audit_events(OVERRIDDEN)
    assert override.actor == "Dr Test" and override.details["reason"] == "urgent: the old model is retired"
    assert override.details["refusals"] == list(check.refusals) and override.details["active"] == model.version
    assert [event.details["version"] for event in store.list_audit_events("model.activated")] == ["1.1.0"]
    again = activate_checked(store, candidate.version, actor="Dr Test")  # already active: unchanged, unchecked
    assert again.model.active and again.check is None


def test_a_clearly_worse_candidate_on_enough_evidence_is_refused(
        store: Store, model: ModelVersion, tiny_bundle: Path, home: Path, tmp_path: Path) -> None:
    reviewed_evidence(store, model, tmp_path / "slides", MIN_NORMALS + 5, MIN_ANOMALIES + 1)
    worse = import_bundle(store, candidate_bundle(tiny_bundle, tmp_path / "worse", noise=0.1), home,
                          actor="tester").model
    store.set_target_fpr(0.05, actor="Dr Test", reason="the lab's policy")
    steps: list[tuple[int, int]] = []

    check = check_candidate(store, worse.version, progress=lambda done, total: steps.append((done, total)))

    assert steps[-1] == (62, 62) and len(steps) == 62  # both models scored each of the 31 slides
    assert check.target_fpr == 0.05 and check.active_figures is not None
    assert (check.candidate_figures.n_normal, check.candidate_figures.n_anomalous) == (25, 6)
    assert check.candidate_figures.specificity.value < 0.2 < 0.8 < check.active_figures.specificity.value
    [refusal] = check.refusals
    assert refusal.startswith("the candidate's specificity is worse than the active model's beyond the intervals")
    assert check.differences["specificity"].high < 0
    with pytest.raises(AcceptanceRefused, match="specificity is worse"):
        activate_checked(store, worse.version, actor="Dr Test")
    assert store.active_model_version().id == model.id


def test_the_only_model_is_checked_on_its_own_figures(store: Store, model: ModelVersion, tmp_path: Path) -> None:
    reviewed_evidence(store, model, tmp_path / "slides", MIN_NORMALS, MIN_ANOMALIES)
    check = check_candidate(store, model.version)
    assert check.active is None and check.active_figures is None and check.differences == {}
    assert check.accepted and check.target_fpr is None
    assert describe(check)[0].endswith("on its own figures and the minimums (no other model is active)")
    assert "Verdict: accepted" in describe(check)
