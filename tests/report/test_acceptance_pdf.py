"""The acceptance report PDF: what it says, on a page or two, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pypdf import PdfReader

from ganad_clinic.report.acceptance_pdf import write_acceptance_report
from ganad_clinic.screening.acceptance import (
    CALIBRATION,
    HELD_OUT,
    AcceptanceCheck,
    Evidence,
    EvidenceSlide,
    paired_bootstrap,
    refusals,
)
from ganad_clinic.store import ModelVersion


def a_check(tmp_path: Path, *, n_normal: int, n_anomalous: int, worse: bool = False,
            active: bool = True) -> AcceptanceCheck:
    """A check made from made-up scores (the layout does not care where the figures came from)."""
    rng = np.random.default_rng(0)
    labels = np.array([0] * n_normal + [1] * n_anomalous)
    good = rng.normal(size=len(labels)) + 2 * labels
    bad = rng.normal(size=len(labels))
    candidate_scores = bad if worse else good
    scored = [(candidate_scores, candidate_scores > 1.5)] + ([(good, good > 1.5)] if active else [])
    figures, differences = paired_bootstrap(labels, scored, [0.05] * len(scored))
    slides = tuple(EvidenceSlide(tmp_path / f"{index}.png", int(label), CALIBRATION if index < 3 else HELD_OUT)
                   for index, label in enumerate(labels))
    candidate = ModelVersion(version="1.1.0 <b>&", sha256="ab" * 32, bundle_path="/models/1.1.0", active=False)
    previous = ModelVersion(version="1.0.0", sha256="cd" * 32, bundle_path="/models/1.0.0", active=True)
    active_figures = figures[1] if active else None
    return AcceptanceCheck(candidate, previous if active else None, 0.05, figures[0], active_figures, differences,
                           Evidence(slides, used_in_training=4, missing=1),
                           refusals(figures[0], active_figures, differences))


def text_of(path: Path) -> tuple[str, int]:
    reader = PdfReader(path)
    return " ".join((page.extract_text() or "").replace("\n", " ") for page in reader.pages), len(reader.pages)


def test_a_refused_check_names_both_models_the_figures_and_every_refusal(tmp_path: Path) -> None:
    check = a_check(tmp_path, n_normal=30, n_anomalous=3, worse=True)
    assert len(check.refusals) >= 2
    path = write_acceptance_report(check, tmp_path / "out" / "acceptance.pdf")
    text, pages = text_of(path)
    assert pages <= 2
    assert "Acceptance check of model 1.1.0 <b>&" in text and "1.0.0" in text
    assert "Refused" in text and "Accepted" not in text and "AUC" in text
    assert "fewer than the 5" in text and "worse than the active model" in text
    assert "at most 5 % of normal slides flagged" in text
    assert f"{check.candidate_figures.auc.value:.3f}" in text and f"{check.differences['auc'].high:.3f}" in text
    assert "30 normal, 3 anomalous" in text
    assert "30 normal and 3 confirmed anomalous slides (30 reviewed slides the candidate never used, 3 of its" \
           in text
    assert "4 reviewed slides left out" in text and "2000 bootstrap resamples" in text
    assert [entry.name for entry in path.parent.iterdir()] == ["acceptance.pdf"]  # no partial file left


def test_an_accepted_check_without_an_active_model(tmp_path: Path) -> None:
    check = a_check(tmp_path, n_normal=25, n_anomalous=6, active=False)
    assert check.accepted
    text, pages = text_of(write_acceptance_report(check, tmp_path / "accepted.pdf"))
    assert pages == 1
    assert "Accepted" in text and "none other" in text and "Difference" not in text
