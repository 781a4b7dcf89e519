"""The acceptance gate: a candidate model becomes active only after it was compared with the active
model on the same held-out evidence, and found no worse beyond the figures' uncertainty.

The evidence is what the store knows and the candidate never learnt from: slides whose latest
review says normal or anomaly confirmed and whose content the candidate's training did not use
(model.bundle.used_in_training), plus the candidate's own calibration normals where the store has
those files (no review contradicting them). Calibration normals set the candidate's threshold, so
its specificity on them is favoured by construction; the check says how many of the normals they
are. Both models score every evidence slide as the screening service scores it (Inferencer, at the
lab's stated false-positive rate, else both at the active model's own training target, the rate in
force).

Each figure (AUC, sensitivity and specificity at the operating point) has a 95 % percentile
bootstrap interval: RESAMPLES resamples drawn with a seeded generator, stratified by class (each
resample keeps the numbers of normals and anomalies), and paired (both models are judged on the
same resamples), so the interval of the difference candidate - active reflects the evidence once.
A candidate is refused when the evidence is below MIN_NORMALS or MIN_ANOMALIES, or when one of its
figures is worse than the active model's beyond the interval (the difference's upper bound below
0). A person may override a refusal with a reason, which the audit trail keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ganad_clinic.errors import GanadError
from ganad_clinic.model.bundle import TRAINED_ON_KEY, used_in_training
from ganad_clinic.model.conformal import percent
from ganad_clinic.model.inference import Inferencer
from ganad_clinic.screening.names import slide_file
from ganad_clinic.screening.registry import current_actor, find_model_version, load_registered
from ganad_clinic.store import ModelVersion, ReviewDecision, SlideStatus, Store
from ganad_clinic.store.models import utc_now

MIN_NORMALS = 20  # normal slides the evidence needs at least
MIN_ANOMALIES = 5  # confirmed anomalous slides the evidence needs at least
RESAMPLES = 2_000
CONFIDENCE = 0.95
FIGURES = ("auc", "sensitivity", "specificity")
FIGURE_NAMES = {"auc": "AUC", "sensitivity": "sensitivity", "specificity": "specificity"}
FIGURE_TITLES = {"auc": "AUC", "sensitivity": "Sensitivity", "specificity": "Specificity"}
CHECKED = "model.acceptance_checked"  # audit actions
OVERRIDDEN = "model.activation_override"
NORMAL = 0
ANOMALOUS = 1
HELD_OUT = "held out"  # an evidence slide's source: a reviewed slide the candidate never used
CALIBRATION = "calibration"  # one of the candidate's calibration normals


class AcceptanceError(GanadError):
    """An acceptance check or activation that cannot be done as asked."""


class AcceptanceRefused(AcceptanceError):
    """The check refused the candidate and no override was given; nothing was changed."""

    def __init__(self, check: AcceptanceCheck) -> None:
        self.check = check
        super().__init__(f"model {check.candidate.version} was not activated: " + "; ".join(check.refusals)
                         + ". An override with a reason activates it anyway.")


@dataclass(frozen=True)
class Interval:
    """A figure and its 95 % bootstrap interval (NaN throughout when the figure is undefined)."""

    value: float
    low: float
    high: float

    def words(self, digits: int = 3) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        return f"{self.value:.{digits}f} ({self.low:.{digits}f} to {self.high:.{digits}f})"

    def to_dict(self) -> dict[str, float | None]:
        return {name: _finite_or_none(getattr(self, name)) for name in ("value", "low", "high")}


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures on the evidence, at the false-positive rate it was judged at."""

    auc: Interval
    sensitivity: Interval
    specificity: Interval
    n_normal: int
    n_anomalous: int
    target_fpr: float

    def figure(self, name: str) -> Interval:
        return {"auc": self.auc, "sensitivity": self.sensitivity, "specificity": self.specificity}[name]

    def to_dict(self) -> dict[str, Any]:
        return {**{name: self.figure(name).to_dict() for name in FIGURES}, "n_normal": self.n_normal,
                "n_anomalous": self.n_anomalous, "target_fpr": self.target_fpr}


@dataclass(frozen=True)
class EvidenceSlide:
    path: Path
    label: int  # NORMAL or ANOMALOUS
    source: str  # HELD_OUT or CALIBRATION


@dataclass(frozen=True)
class Evidence:
    """The slides a check rests on, and what was left out and why."""

    slides: tuple[EvidenceSlide, ...]
    used_in_training: int  # reviewed slides left out: the candidate trained or validated on them
    missing: int  # reviewed slides left out: their file is gone

    @property
    def n_normal(self) -> int:
        return sum(slide.label == NORMAL for slide in self.slides)

    @property
    def n_anomalous(self) -> int:
        return sum(slide.label == ANOMALOUS for slide in self.slides)

    @property
    def held_out(self) -> int:
        return sum(slide.source == HELD_OUT for slide in self.slides)

    @property
    def calibration(self) -> int:
        return sum(slide.source == CALIBRATION for slide in self.slides)

    def counts(self) -> dict[str, int]:
        return {"normal": self.n_normal, "anomalous": self.n_anomalous, "held_out": self.held_out,
                "calibration": self.calibration, "used_in_training": self.used_in_training,
                "missing": self.missing}


@dataclass(frozen=True)
class AcceptanceCheck:
    """A candidate judged against the active model (None: no other model is active, so the
    candidate is judged on its own figures and the minimums). `target_fpr` is the lab's stated
    rate, None when it stated none; both models are judged at one rate (ModelFigures.target_fpr):
    the lab's, else the active model's own training target, the rate in force."""

    candidate: ModelVersion
    active: ModelVersion | None
    target_fpr: float | None
    candidate_figures: ModelFigures
    active_figures: ModelFigures | None
    differences: dict[str, Interval]  # candidate - active, by figure name; empty without an active model
    evidence: Evidence
    refusals: tuple[str, ...]
    checked_at: datetime = field(default_factory=utc_now)
    resamples: int = RESAMPLES
    seed: int = 0

    @property
    def accepted(self) -> bool:
        return not self.refusals

    def to_dict(self) -> dict[str, Any]:
        """The check for JSON (the audit trail, `ganad models compare --json`)."""
        return {
            "version": self.candidate.version, "active": None if self.active is None else self.active.version,
            "accepted": self.accepted, "refusals": list(self.refusals), "target_fpr": self.target_fpr,
            "candidate": self.candidate_figures.to_dict(),
            "active_figures": None if self.active_figures is None else self.active_figures.to_dict(),
            "differences": {name: interval.to_dict() for name, interval in self.differences.items()},
            "evidence": self.evidence.counts(), "resamples": self.resamples, "seed": self.seed,
            "checked_at": self.checked_at.isoformat(),
        }


def gather_evidence(store: Store, candidate_metadata: dict[str, Any]) -> Evidence:
    """The held-out reviewed slides and the candidate's calibration normals the store has (each
    content once), for a candidate whose bundle metadata is `candidate_metadata`."""
    used = used_in_training(candidate_metadata)
    calibration = _calibration_digests(candidate_metadata)
    slides: list[EvidenceSlide] = []
    seen: set[str] = set()
    left_out, missing = set(), set()
    for summary in store.list_slides():
        slide, review = summary.slide, summary.review
        decision = None if review is None else review.decision
        if slide.status is not SlideStatus.SCORED or slide.sha256 in seen:
            continue
        if slide.sha256 in calibration and decision in (None, ReviewDecision.NORMAL):
            label, source = NORMAL, CALIBRATION
        elif decision in (ReviewDecision.NORMAL, ReviewDecision.ANOMALY_CONFIRMED):
            if slide.sha256 in used:
                left_out.add(slide.sha256)
                continue
            label, source = (NORMAL if decision is ReviewDecision.NORMAL else ANOMALOUS), HELD_OUT
        else:
            continue
        path = slide_file(slide.archived_path, slide.path)
        if not path.is_file():
            missing.add(slide.sha256)
            continue
        seen.add(slide.sha256)
        slides.append(EvidenceSlide(path, label, source))
    return Evidence(tuple(slides), len(left_out - seen), len(missing - seen))


def _calibration_digests(metadata: dict[str, Any]) -> set[str]:
    recorded = (metadata.get("ganad", {}).get("training") or {}).get(TRAINED_ON_KEY) or {}
    digests = recorded.get("calibration") or []
    return {digest for digest in digests if isinstance(digest, str)}


def check_candidate(store: Store, version: str, *, field_scale: float = 1.0, seed: int = 0,
                    actor: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> AcceptanceCheck:
    """Judge registered model `version` against the active model on the held-out evidence, and
    audit the check (as `actor`, default the operating-system user). `progress(done, total)` is
    told after each slide a model scored."""
    candidate = find_model_version(store, version)
    active = store.active_model_version()
    if active is not None and active.id == candidate.id:
        active = None
    setting = store.target_fpr_setting()
    target = None if setting is None else setting.target_fpr
    candidate_bundle = load_registered(candidate)
    active_bundle = None if active is None else load_registered(active)
    # one rate for both models: the lab's, else the one in force now (the active model's own target)
    rate = target if target is not None else (active_bundle or candidate_bundle).target_fpr
    candidate_scorer = Inferencer(candidate_bundle, field_scale, target_fpr=rate)
    evidence = gather_evidence(store, candidate_bundle.metadata)
    scorers = [candidate_scorer]
    if active_bundle is not None:
        scorers.append(Inferencer(active_bundle, field_scale, target_fpr=rate))
    labels = np.array([slide.label for slide in evidence.slides], dtype=np.int64)
    total = len(scorers) * len(evidence.slides)
    scored: list[tuple[np.ndarray, np.ndarray]] = []
    for scorer in scorers:
        scores, flagged = [], []
        for slide in evidence.slides:
            result = scorer.score_file(slide.path)
            scores.append(result.score)
            flagged.append(result.flagged)
            if progress is not None:
                progress(len(scored) * len(evidence.slides) + len(scores), total)
        scored.append((np.array(scores, dtype=np.float64), np.array(flagged, dtype=bool)))
    figures, differences = paired_bootstrap(labels, scored, [scorer.operating_point.target_fpr for scorer in scorers],
                                            seed=seed)
    active_figures = figures[1] if active is not None else None
    check = AcceptanceCheck(candidate, active, target, figures[0], active_figures, differences, evidence,
                            refusals(figures[0], active_figures, differences), seed=seed)
    store.audit(actor or current_actor(), CHECKED, check.to_dict())
    return check


def paired_bootstrap(labels: np.ndarray, scored: Sequence[tuple[np.ndarray, np.ndarray]],
                     target_fprs: Sequence[float], *, resamples: int = RESAMPLES,
                     seed: int = 0) -> tuple[list[ModelFigures], dict[str, Interval]]:
    """The figures of each model's (scores, flags) on slides of `labels`, each with its interval
    over the same stratified resamples, and the differences first model - second (when there are two)."""
    labels = np.asarray(labels, dtype=np.int64)
    normal, anomalous = labels == NORMAL, labels == ANOMALOUS
    rng = np.random.default_rng(seed)
    weights_normal = _resample_weights(rng, int(normal.sum()), resamples)
    weights_anomalous = _resample_weights(rng, int(anomalous.sum()), resamples)
    point_normal, point_anomalous = np.ones((1, weights_normal.shape[1])), np.ones((1, weights_anomalous.shape[1]))
    point_values, resampled = [], []
    for scores, flagged in scored:
        parts = (scores[normal], scores[anomalous], flagged[normal], flagged[anomalous])
        point_values.append(_figures(*parts, point_normal, point_anomalous))
        resampled.append(_figures(*parts, weights_normal, weights_anomalous))
    figures = [ModelFigures(auc=_interval(point["auc"][0], draws["auc"]),
                            sensitivity=_interval(point["sensitivity"][0], draws["sensitivity"]),
                            specificity=_interval(point["specificity"][0], draws["specificity"]),
                            n_normal=int(normal.sum()), n_anomalous=int(anomalous.sum()), target_fpr=target)
               for point, draws, target in zip(point_values, resampled, target_fprs)]
    differences = {}
    if len(scored) == 2:
        differences = {name: _interval(point_values[0][name][0] - point_values[1][name][0],
                                       resampled[0][name] - resampled[1][name]) for name in FIGURES}
    return figures, differences


def _resample_weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How often each of `n` slides is drawn in each resample of `n` draws with replacement."""
    if n == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _figures(normal_scores: np.ndarray, anomalous_scores: np.ndarray, normal_flagged: np.ndarray,
             anomalous_flagged: np.ndarray, weights_normal: np.ndarray,
             weights_anomalous: np.ndarray) -> dict[str, np.ndarray]:
    """AUC (the Mann-Whitney form: the chance that an anomalous slide scores above a normal one,
    ties counting half), sensitivity and specificity of the slides weighted as given, per row."""
    n_normal, n_anomalous = len(normal_scores), len(anomalous_scores)
    rows = len(weights_normal)
    nan = np.full(rows, np.nan)
    if n_normal and n_anomalous:
        above = (anomalous_scores[None, :] > normal_scores[:, None]).astype(np.float64)
        tied = (anomalous_scores[None, :] == normal_scores[:, None]).astype(np.float64)
        pairs = above + 0.5 * tied
        auc = np.einsum("bi,ij,bj->b", weights_normal, pairs, weights_anomalous) / (n_normal * n_anomalous)
    else:
        auc = nan
    sensitivity = weights_anomalous @ anomalous_flagged.astype(np.float64) / n_anomalous if n_anomalous else nan
    specificity = weights_normal @ (~normal_flagged).astype(np.float64) / n_normal if n_normal else nan
    return {"auc": auc, "sensitivity": sensitivity, "specificity": specificity}


def _interval(value: float, draws: np.ndarray) -> Interval:
    if not math.isfinite(value):
        return Interval(math.nan, math.nan, math.nan)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


def refusals(candidate: ModelFigures, active: ModelFigures | None,
             differences: dict[str, Interval]) -> tuple[str, ...]:
    """Why a candidate with these figures must not become active, one plain sentence a reason."""
    reasons = []
    if candidate.n_normal < MIN_NORMALS:
        reasons.append(f"too little evidence: {candidate.n_normal} normal slides, fewer than the {MIN_NORMALS} "
                       "an acceptance check needs")
    if candidate.n_anomalous < MIN_ANOMALIES:
        reasons.append(f"too little evidence: {candidate.n_anomalous} confirmed anomalous slides, fewer than the "
                       f"{MIN_ANOMALIES} an acceptance check needs")
    if active is not None:
        for name in FIGURES:
            difference = differences[name]
            if math.isfinite(difference.high) and difference.high < 0:
                reasons.append(
                    f"the candidate's {FIGURE_NAMES[name]} is worse than the active model's beyond the intervals: "
                    f"{candidate.figure(name).value:.3f} against {active.figure(name).value:.3f} "
                    f"(difference {difference.words()})")
    return tuple(reasons)


@dataclass(frozen=True)
class Activation:
    """An activation through the gate: the model now active and the check it passed or whose
    refusal was overridden (None: it was active already, and nothing was checked)."""

    model: ModelVersion
    check: AcceptanceCheck | None


def activate_checked(store: Store, version: str, *, actor: str, override: str | None = None,
                     field_scale: float = 1.0) -> Activation:
    """Make `version` active if its acceptance check accepts it, or if a person overrides the
    refusal with a reason (audited with the refusals). Refused without an override: raises
    AcceptanceRefused and changes nothing. An already active model stays as it is, unchecked."""
    if override is not None and not override.strip():
        raise AcceptanceError("an override needs a reason, for the audit trail")
    model = find_model_version(store, version)
    if model.active:
        return Activation(model, None)
    check = check_candidate(store, version, field_scale=field_scale, actor=actor)
    if not check.accepted:
        if override is None:
            raise AcceptanceRefused(check)
        store.audit(actor, OVERRIDDEN, {"version": version, "reason": override.strip(),
                                        "refusals": list(check.refusals),
                                        "active": None if check.active is None else check.active.version})
    return Activation(store.activate_model_version(version, actor=actor), check)


def describe(check: AcceptanceCheck) -> list[str]:
    """The check in lines of plain text, for the command line and the app."""
    against = (f"against the active model {check.active.version}" if check.active is not None
               else "on its own figures and the minimums (no other model is active)")
    lines = [f"Acceptance check of model {check.candidate.version} {against}",
             f"Operating point: {operating_point_words(check)}",
             f"Evidence: {evidence_words(check.evidence)}"]
    columns = [("candidate", check.candidate_figures)]
    if check.active_figures is not None:
        columns.append(("active", check.active_figures))
    header = f"  {'':<12}" + "".join(f"{title:<26}" for title, _ in columns)
    if check.differences:
        header += "difference (candidate - active)"
    lines.append(header.rstrip())
    for name in FIGURES:
        row = f"  {FIGURE_TITLES[name]:<12}" + "".join(f"{figures.figure(name).words():<26}"
                                                                  for _, figures in columns)
        if check.differences:
            row += check.differences[name].words()
        lines.append(row.rstrip())
    paired = "paired " if check.differences else ""
    lines.append(f"  95 % intervals: {check.resamples} {paired}bootstrap resamples, stratified by class "
                 f"(seed {check.seed})")
    if check.accepted:
        lines.append("Verdict: accepted")
    else:
        lines.append("Verdict: refused")
        lines += [f"  - {refusal}" for refusal in check.refusals]
    return lines


def operating_point_words(check: AcceptanceCheck) -> str:
    """The one rate both models were judged at, and where it comes from."""
    rate = percent(check.candidate_figures.target_fpr)
    if check.target_fpr is not None:
        return f"at most {rate} of normal slides flagged (the lab's stated rate)"
    whose = "the active model's" if check.active is not None else "the candidate's"
    return f"at most {rate} of normal slides flagged ({whose} training target; the lab has stated no rate)"


def evidence_words(evidence: Evidence) -> str:
    text = (f"{evidence.n_normal} normal and {evidence.n_anomalous} confirmed anomalous slides "
            f"({evidence.held_out} reviewed slides the candidate never used, {evidence.calibration} of its "
            f"calibration normals)")
    if evidence.used_in_training:
        text += f"; {evidence.used_in_training} reviewed slides left out: the candidate trained on them"
    if evidence.missing:
        text += f"; {evidence.missing} left out: their file is gone"
    return text


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
