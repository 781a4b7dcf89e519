"""What the queue's refresh reads, off the main thread: the slides new or changed since the last
read (the store's incremental read, from the mark kept here), the active model with the score
weights it was calibrated with and the rate it was trained for, and the lab's stated operating
point, and the drift alarm's last change as the audit trail has it (whichever station's service
raised it, and before this window opened). Plain Python: it runs on the refresh worker's thread, one read at a time
(app.workers.BackgroundCall), and its result is merged on the main thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ganad_clinic.model.bundle import BundleError, read_metadata
from ganad_clinic.screening.drift import DriftState
from ganad_clinic.store import (
    DRIFT_ALARM_CLEARED,
    DRIFT_ALARM_RAISED,
    ModelVersion,
    OperatingPointSetting,
    SlideSummary,
    Store,
)
from ganad_clinic.store.repository import SlideMark


@dataclass(frozen=True)
class ModelFacts:
    """What the window says of the active model, from its bundle's metadata."""

    weights: tuple[float, float]  # its λ and β
    target_fpr: float  # the slide false-positive rate it was trained for


@dataclass(frozen=True)
class QueueUpdate:
    summaries: list[SlideSummary]  # new or changed since the previous update (all of them the first time)
    active_model: ModelVersion | None
    active_facts: ModelFacts | None  # None when its metadata cannot be read
    operating_point: OperatingPointSetting | None  # the lab's stated rate (None: each model's own)
    first: bool
    drift: StoredDrift | None = None  # the active model's drift alarm as last recorded


@dataclass(frozen=True)
class StoredDrift:
    """A change of the drift alarm as the audit trail keeps it, with when it was recorded."""

    state: DriftState
    time: datetime


class QueueReader:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.mark: SlideMark | None = None
        self._facts: dict[int, ModelFacts] = {}

    def read(self) -> QueueUpdate:
        """Raises StoreError when the database cannot be read; the mark stays, so nothing is missed."""
        changes = self.store.list_slides_changed_since(self.mark)
        active = self.store.active_model_version()
        setting = self.store.target_fpr_setting()
        first = self.mark is None
        self.mark = changes.mark
        return QueueUpdate(changes.summaries, active, self._active_facts(active), setting, first,
                           self._drift(active))

    def _drift(self, active: ModelVersion | None) -> StoredDrift | None:
        """The last drift change recorded for the active model (another model's alarm is not its)."""
        event = self.store.latest_audit_event((DRIFT_ALARM_RAISED, DRIFT_ALARM_CLEARED))
        if event is None or active is None or not isinstance(event.details, dict):
            return None
        state = DriftState.from_dict(event.details)
        if state is None or event.details.get("model_version") != active.version:
            return None
        return StoredDrift(state, event.time)

    def _active_facts(self, active: ModelVersion | None) -> ModelFacts | None:
        if active is None:
            return None
        if active.id not in self._facts:
            try:
                ganad = read_metadata(active.bundle_path)["ganad"]
                score = ganad["score"]
                self._facts[active.id] = ModelFacts((float(score["lambda"]), float(score["beta"])),
                                                    float(ganad["calibration"]["target_fpr"]))
            except (BundleError, KeyError, TypeError, ValueError, OSError):
                return None  # asked again next time: the bundle may be back
        return self._facts[active.id]
