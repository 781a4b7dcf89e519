"""What a screening report says, gathered from the results database into plain data.

The layout (`pdf.py`) and the CSV (`csv_export.py`) only format this, so the figures are computed
once and tests can check them without reading a PDF.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from ganad_clinic.imaging.tiling import WHOLE_IMAGE
from ganad_clinic.model.conformal import p_value_words, slide_p_value_words
from ganad_clinic.store import (
    DRIFT_ALARM_CLEARED,
    DRIFT_ALARM_RAISED,
    AuditEvent,
    Cell,
    ModelVersion,
    ReviewDecision,
    Signature,
    SlideStatus,
    SlideSummary,
    SpecimenSummary,
    Store,
)

BUNDLE_METADATA = Path("configs/metadata.json")
"""Where a model bundle keeps its metadata (the bundle contract in DESIGN.md). Read here as plain
JSON: reports need the threshold rule, λ and β, not torch."""

SHORT_SHA_LENGTH = 12

DECISION_LABELS = {
    ReviewDecision.ANOMALY_CONFIRMED: "anomaly confirmed",
    ReviewDecision.NORMAL: "normal",
    ReviewDecision.SECOND_READ: "second read",
}


@dataclass(frozen=True)
class CellRow:
    """One tile of a slide's current score: a white cell, a grid tile or the whole of a crop."""

    number: int  # as people see it: the stored cell_index + 1
    x: int  # its box in slide pixels
    y: int
    width: int
    height: int
    found_by: str  # "white cell" | "grid" | "whole image"
    score: float
    l_d: float
    l_r: float
    l_l: float
    flagged: bool
    p_value: float | None  # its conformal p-value; None for scores made before p-values were kept


@dataclass(frozen=True)
class SlideRow:
    """One slide as the report lists it: its current score and its current review."""

    slide_id: int
    file_name: str
    path: str  # where the image is now: the archive when it was moved there
    source_folder: str
    received: datetime  # local time
    status: SlideStatus
    reason: str | None  # why it was rejected
    duplicate_of_id: int | None
    slide_width: int | None  # pixels; None when not recorded
    score_id: int | None
    score: float | None
    threshold: float | None
    flagged: bool
    l_d: float | None
    l_r: float | None
    l_l: float | None
    model_version_id: int | None
    model_version: str | None
    model_sha256: str | None
    heatmap_path: str | None
    tiling: str | None  # how the slide was tiled; None for scores stored before that was recorded
    tiling_rule: str | None  # "whole image", "white cells" or "grid"; None for scores stored before cells were
    warning: str | None  # a caveat on the score ("page 1 of 3 scored"); None when there is none
    p_value: float | None  # the slide's conformal p-value; None for scores made before p-values were kept
    target_fpr: float | None  # the slide false-positive rate it was flagged at; None likewise
    calibration_n: int | None  # the calibration normals behind its p-values; None likewise
    cells: tuple[CellRow, ...]  # of the current score, in plan order; none for scores stored before cells were
    decision: ReviewDecision | None
    reviewer: str | None
    review_note: str
    reviewed_at: datetime | None  # local time
    accession: str | None  # its specimen's

    @property
    def decision_label(self) -> str:
        return "" if self.decision is None else DECISION_LABELS[self.decision]

    @property
    def flagged_cells(self) -> tuple[CellRow, ...]:
        """The flagged cells, highest score first (the order a reviewer looks at them)."""
        return tuple(sorted((cell for cell in self.cells if cell.flagged), key=lambda cell: (-cell.score, cell.number)))

    def p_value_text(self, p_value: float | None) -> str | None:
        """A cell's p-value in words; None for a score made before p-values were kept."""
        if p_value is None or not self.calibration_n:
            return None
        return p_value_words(p_value, self.calibration_n)

    @property
    def slide_p_value_text(self) -> str | None:
        """The slide's p-value in words (`slide_p_value_words`); None for a score made before
        p-values were kept."""
        cell_p_values = [cell.p_value for cell in self.cells if cell.p_value is not None]
        if self.p_value is None or not self.calibration_n:
            return None
        return slide_p_value_words(self.p_value, cell_p_values, self.calibration_n)

    @property
    def shows_cells(self) -> bool:
        """Whether the slide is shown cell by cell: a tiled field (also one with a single white cell
        found) whose size is known (boxes are placed by it). A crop is one cell and is shown whole,
        as is an older score."""
        return bool(self.cells) and self.tiling_rule not in (None, WHOLE_IMAGE) and bool(self.slide_width)


@dataclass(frozen=True)
class ModelInfo:
    """A model version as the report describes it; threshold rule, λ and β come from its bundle."""

    version: str
    sha256: str
    threshold: float | None
    threshold_rule: str | None
    lam: float | None
    beta: float | None
    score_mode: str | None
    thresholds_in_force: tuple[float, ...]  # as stored with this period's scores
    slides_scored: int
    problem: str | None  # why the bundle's metadata could not be read

    @property
    def short_sha256(self) -> str:
        return self.sha256[:SHORT_SHA_LENGTH]


@dataclass(frozen=True)
class SummaryCounts:
    slides: int
    scored: int
    flagged: int
    rejected: int
    pending: int  # received, not scored yet
    reviewed: int
    flags_confirmed: int
    flags_overruled: int
    flags_awaiting_review: int  # no review yet, or marked for a second read
    flags_second_read: int
    unflagged_confirmed: int  # not flagged, but a reviewer found an anomaly


@dataclass(frozen=True)
class DriftEvent:
    """The screening service's drift alarm raised or cleared (its audit event)."""

    time: datetime  # local time
    raised: bool
    model_version: str
    message: str


@dataclass(frozen=True)
class ReportContent:
    lab: str
    operator: str
    printed_at: datetime
    period: str
    folder: str | None
    flagged_only: bool
    rows: tuple[SlideRow, ...]
    models: tuple[ModelInfo, ...]  # models behind this period's scores, most used first
    counts: SummaryCounts
    drift_events: tuple[DriftEvent, ...]  # the drift alarm's changes in the period, oldest first
    accession: str | None = None  # a specimen's report: its images only
    signature: Signature | None = None  # ... and its signature, printed in the sign-off block

    @property
    def drift_alarms(self) -> tuple[DriftEvent, ...]:
        """The drift alarms raised in the period."""
        return tuple(event for event in self.drift_events if event.raised)

    @property
    def is_empty(self) -> bool:
        return not self.rows

    @property
    def flagged_rows(self) -> tuple[SlideRow, ...]:
        return tuple(row for row in self.rows if row.flagged)

    @property
    def rejected_rows(self) -> tuple[SlideRow, ...]:
        return tuple(row for row in self.rows if row.status is SlideStatus.REJECTED)

    @property
    def scores(self) -> list[float]:
        return [row.score for row in self.rows if row.score is not None]


def period_bounds(
    since: date | datetime | None, until: date | datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The [start, end) the database is asked for. A date means the whole local day, so `until`
    as a date includes that day; a naive datetime is local time."""
    start = None if since is None else _local(since)
    end = None
    if until is not None:
        end = _local(until) if isinstance(until, datetime) else _local(until + timedelta(days=1))
    return start, end


def describe_period(since: date | datetime | None, until: date | datetime | None) -> str:
    """The period in words, as the user gave it (dates inclusive)."""
    if since is None and until is None:
        return "all slides received so far"
    if until is None:
        return f"received from {_moment(since)}"
    if since is None:
        return f"received up to {_moment(until)}"
    return f"{_moment(since)} – {_moment(until)}"


def gather_content(
    store: Store,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    folder: str | None = None,
    flagged_only: bool = False,
    lab: str = "",
    operator: str = "",
    printed_at: datetime | None = None,
    specimen: SpecimenSummary | None = None,
    signature: Signature | None = None,
) -> ReportContent:
    """Read the slides of the period (one query), each current score's cells (one query a slide)
    and the model registry, and count. A period left open ends when the report is printed, so
    the report says up to when it holds every slide. With `specimen`: that specimen's images only,
    and `signature` (by default its latest) in the sign-off block."""
    printed = (printed_at or datetime.now()).astimezone()
    closed_until = printed if until is None else until
    start, end = period_bounds(since, closed_until)
    summaries = store.list_slides(since=start, until=end, source_folder=folder, flagged_only=flagged_only,
                                  specimen_id=None if specimen is None else specimen.specimen.id)
    rows = tuple(_row(summary, _cells(store, summary)) for summary in summaries)
    return ReportContent(
        lab=lab,
        operator=operator,
        printed_at=printed,
        period=describe_period(since, closed_until) if specimen is None else f"specimen {specimen.specimen.accession}",
        folder=folder,
        flagged_only=flagged_only,
        rows=rows,
        models=_models(store, rows),
        counts=count(rows),
        drift_events=_drift_events(store, start, end),
        accession=None if specimen is None else specimen.specimen.accession,
        signature=signature if signature is not None or specimen is None else specimen.signature,
    )


def count(rows: tuple[SlideRow, ...] | list[SlideRow]) -> SummaryCounts:
    flagged = [row for row in rows if row.flagged]
    flag_decisions = Counter(row.decision for row in flagged)
    return SummaryCounts(
        slides=len(rows),
        scored=sum(row.score is not None for row in rows),
        flagged=len(flagged),
        rejected=sum(row.status is SlideStatus.REJECTED for row in rows),
        pending=sum(row.status is SlideStatus.PENDING for row in rows),
        reviewed=sum(row.decision is not None for row in rows),
        flags_confirmed=flag_decisions[ReviewDecision.ANOMALY_CONFIRMED],
        flags_overruled=flag_decisions[ReviewDecision.NORMAL],
        flags_awaiting_review=flag_decisions[None] + flag_decisions[ReviewDecision.SECOND_READ],
        flags_second_read=flag_decisions[ReviewDecision.SECOND_READ],
        unflagged_confirmed=sum(
            not row.flagged and row.decision is ReviewDecision.ANOMALY_CONFIRMED for row in rows
        ),
    )


def _cells(store: Store, summary: SlideSummary) -> tuple[CellRow, ...]:
    return () if summary.score is None else tuple(_cell_row(cell) for cell in store.list_cells(summary.score.id))


def _cell_row(cell: Cell) -> CellRow:
    return CellRow(number=cell.cell_index + 1, x=cell.x, y=cell.y, width=cell.width, height=cell.height,
                   found_by=cell.found_by, score=cell.score, l_d=cell.l_d, l_r=cell.l_r, l_l=cell.l_l,
                   flagged=cell.flagged, p_value=cell.p_value)


def _row(summary: SlideSummary, cells: tuple[CellRow, ...]) -> SlideRow:
    slide, score, review = summary.slide, summary.score, summary.review
    return SlideRow(
        slide_id=slide.id,
        file_name=slide.file_name,
        path=slide.archived_path or slide.path,
        source_folder=slide.source_folder,
        received=slide.first_seen.astimezone(),
        status=slide.status,
        reason=slide.reason,
        duplicate_of_id=slide.duplicate_of_id,
        slide_width=slide.width,
        score_id=None if score is None else score.id,
        score=None if score is None else score.score,
        threshold=None if score is None else score.threshold,
        flagged=score is not None and score.flagged,
        l_d=None if score is None else score.l_d,
        l_r=None if score is None else score.l_r,
        l_l=None if score is None else score.l_l,
        model_version_id=None if score is None else score.model_version_id,
        model_version=None if score is None else score.model_version,
        model_sha256=None if score is None else score.model_sha256,
        heatmap_path=None if score is None else score.heatmap_path,
        tiling=None if score is None else score.tiling,
        tiling_rule=None if score is None else score.tiling_rule,
        warning=None if score is None else score.warning,
        p_value=None if score is None else score.p_value,
        target_fpr=None if score is None else score.target_fpr,
        calibration_n=None if score is None else score.calibration_n,
        cells=cells,
        decision=None if review is None else review.decision,
        reviewer=None if review is None else review.reviewer,
        review_note="" if review is None else review.note,
        reviewed_at=None if review is None else review.created_at.astimezone(),
        accession=summary.accession,
    )


def _drift_events(store: Store, start: datetime | None, end: datetime | None) -> tuple[DriftEvent, ...]:
    """The drift alarm's audit events of [start, end), from whichever inbox (the alarm is the service's)."""
    events = [event for action in (DRIFT_ALARM_RAISED, DRIFT_ALARM_CLEARED) for event in store.list_audit_events(action)
              if (start is None or event.time >= start) and (end is None or event.time < end)]
    return tuple(_drift_event(event) for event in sorted(events, key=lambda event: event.id))


def _drift_event(event: AuditEvent) -> DriftEvent:
    details = event.details if isinstance(event.details, dict) else {}
    return DriftEvent(time=event.time.astimezone(), raised=event.action == DRIFT_ALARM_RAISED,
                      model_version=str(details.get("model_version", "?")), message=str(details.get("message", "")))


def _models(store: Store, rows: tuple[SlideRow, ...]) -> tuple[ModelInfo, ...]:
    """The versions behind the period's scores, most used first; with no scores, the active one."""
    uses = Counter(row.model_version_id for row in rows if row.model_version_id is not None)
    registered = {model.id: model for model in store.list_model_versions()}
    if not uses:
        active = next((model for model in registered.values() if model.active), None)
        return () if active is None else (_model_info(active, (), 0),)
    infos = []
    for model_id, used in uses.most_common():
        # a row with a model version has a score, so a threshold
        thresholds = tuple(sorted({row.threshold for row in rows
                                   if row.model_version_id == model_id and row.threshold is not None}))
        model = registered.get(model_id)
        if model is None:  # a score cannot outlive its model row, but describe it from the score anyway
            row = next(row for row in rows if row.model_version_id == model_id)
            infos.append(ModelInfo(row.model_version or "?", row.model_sha256 or "", None, None, None, None,
                                   None, thresholds, used, "not in the model registry"))
            continue
        infos.append(_model_info(model, thresholds, used))
    return tuple(infos)


def _model_info(model: ModelVersion, thresholds: tuple[float, ...], used: int) -> ModelInfo:
    settings, problem = _bundle_settings(Path(model.bundle_path))
    threshold, score = _section(settings, "threshold"), _section(settings, "score")
    return ModelInfo(
        version=model.version,
        sha256=model.sha256,
        threshold=_number(threshold.get("value")),
        threshold_rule=None if threshold.get("rule") is None else str(threshold["rule"]),
        lam=_number(score.get("lambda")),
        beta=_number(score.get("beta")),
        score_mode=None if score.get("mode") is None else str(score["mode"]),
        thresholds_in_force=thresholds,
        slides_scored=used,
        problem=problem,
    )


def _bundle_settings(bundle: Path) -> tuple[dict[str, Any], str | None]:
    """The bundle's `ganad` metadata section, or ({}, why not) when it cannot be read."""
    try:
        metadata = json.loads((bundle / BUNDLE_METADATA).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, f"bundle metadata not found at {bundle / BUNDLE_METADATA}"
    except (OSError, ValueError) as error:
        return {}, f"bundle metadata at {bundle / BUNDLE_METADATA} cannot be read ({error})"
    settings = metadata.get("ganad") if isinstance(metadata, dict) else None
    if not isinstance(settings, dict):
        return {}, f"{bundle / BUNDLE_METADATA} is not GANAD Clinic bundle metadata"
    return settings, None


def _section(settings: dict[str, Any], key: str) -> dict[str, Any]:
    value = settings.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _local(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone()  # a naive datetime is taken as local time
    return datetime.combine(moment, time()).astimezone()


def _moment(moment: date | datetime | None) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone().strftime("%Y-%m-%d %H:%M")
    return "" if moment is None else moment.isoformat()
