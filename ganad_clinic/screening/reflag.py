"""Re-flagging earlier slides at the lab's operating point, without re-scoring them.

A change of the target false-positive rate applies to scores made from then on; a lab that wants
its earlier slides judged at the new rate asks for it. A slide's cell scores do not depend on the
rate, only their flags do, so each slide's latest score is judged again from its stored cells with
the calibration of the model that made it, and a new score row is appended (same model, scores,
terms, tiles and heat map; new p-values, flags and threshold): stored rows are never changed, and
the slide's history shows both. Scores made before cells were kept (migration 0004) cannot be
judged again and are counted apart; so are slides whose model can no longer be loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ganad_clinic.errors import GanadError
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.screening.registry import RegistryError, load_registered
from ganad_clinic.screening.slide_records import UnrecordedTilingError, recorded_tiling
from ganad_clinic.store import Cell, Judgement, SlideStatus, Store


@dataclass(frozen=True)
class ReflagSummary:
    target_fpr: float
    reflagged: int  # new score rows appended
    unchanged: int  # already judged at this rate: nothing appended
    newly_flagged: int  # of the reflagged, flagged now and not before
    no_longer_flagged: int
    without_cells: int  # scored before cells were kept: cannot be judged again
    model_missing: int  # their model's bundle cannot be loaded


def reflag_slides(store: Store, *, actor: str, since: datetime | None = None) -> ReflagSummary:
    """Judge every scored slide first seen since `since` (all when None) again at the lab's stated
    rate; audited. Raises GanadError when the lab has stated no rate (each model's own holds)."""
    setting = store.target_fpr_setting()
    if setting is None:
        raise GanadError("the lab has not stated a false-positive rate (ganad operating-point set RATE), so each "
                         "model's own training target holds and there is nothing to re-flag")
    target = setting.target_fpr
    bundles: dict[int, Bundle | None] = {}
    counts = dict(reflagged=0, unchanged=0, newly_flagged=0, no_longer_flagged=0, without_cells=0, model_missing=0)
    for summary in store.list_slides(since=since):
        score = summary.score
        if score is None or summary.slide.duplicate_of_id is not None or summary.slide.status is not SlideStatus.SCORED:
            continue
        if score.target_fpr == target:
            counts["unchanged"] += 1
            continue
        cells = store.list_cells(score.id)
        try:
            tiling = recorded_tiling(score, cells)
        except UnrecordedTilingError:
            counts["without_cells"] += 1
            continue
        if score.model_version_id not in bundles:
            bundles[score.model_version_id] = _bundle_of(store, score.model_version_id)
        bundle = bundles[score.model_version_id]
        if bundle is None:
            counts["model_missing"] += 1
            continue
        decision = bundle.operating_point(target).decide([cell.score for cell in cells])
        flagged = any(decision.flagged)
        store.add_score(
            score.slide_id, score.model_version_id, score=score.score, l_d=score.l_d, l_r=score.l_r, l_l=score.l_l,
            threshold=decision.threshold, flagged=flagged, duration_seconds=0.0, heatmap_path=score.heatmap_path,
            tiling=tiling,
            cells=[Cell(cell_index=cell.cell_index, x=cell.x, y=cell.y, width=cell.width, height=cell.height,
                        found_by=cell.found_by, score=cell.score, l_d=cell.l_d, l_r=cell.l_r, l_l=cell.l_l,
                        flagged=flag, p_value=p)
                   for cell, p, flag in zip(cells, decision.p_values, decision.flagged)],
            warning=score.warning,
            judgement=Judgement(decision.p_value, target, decision.kept_rate, bundle.calibration.n),
        )
        counts["reflagged"] += 1
        counts["newly_flagged"] += flagged and not score.flagged
        counts["no_longer_flagged"] += score.flagged and not flagged
    result = ReflagSummary(target, **counts)
    store.audit(actor, "operating_point.reflagged",
                {"target_fpr": target, "since": since.isoformat() if since else None, **counts})
    return result


def _bundle_of(store: Store, model_version_id: int) -> Bundle | None:
    for model in store.list_model_versions():
        if model.id == model_version_id:
            try:
                return load_registered(model)
            except RegistryError:
                return None
    return None
