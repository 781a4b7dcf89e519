"""What the queue's refresh reads, off the main thread: the slides new or changed since the last
read (the store's incremental read, from the mark kept here), and the active model with the score
weights it was calibrated with. Plain Python: it runs on the refresh worker's thread, one read at
a time (app.workers.BackgroundCall), and its result is merged on the main thread."""

from __future__ import annotations

from dataclasses import dataclass

from ganad_clinic.model.bundle import BundleError, read_metadata
from ganad_clinic.store import ModelVersion, SlideSummary, Store
from ganad_clinic.store.repository import SlideMark


@dataclass(frozen=True)
class QueueUpdate:
    summaries: list[SlideSummary]  # new or changed since the previous update (all of them the first time)
    active_model: ModelVersion | None
    active_weights: tuple[float, float] | None  # its λ and β, when its metadata says so
    first: bool


class QueueReader:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.mark: SlideMark | None = None
        self._weights: dict[int, tuple[float, float] | None] = {}

    def read(self) -> QueueUpdate:
        """Raises StoreError when the database cannot be read; the mark stays, so nothing is missed."""
        changes = self.store.list_slides_changed_since(self.mark)
        active = self.store.active_model_version()
        first = self.mark is None
        self.mark = changes.mark
        return QueueUpdate(changes.summaries, active, self._active_weights(active), first)

    def _active_weights(self, active: ModelVersion | None) -> tuple[float, float] | None:
        if active is None:
            return None
        if active.id not in self._weights:
            try:
                score = read_metadata(active.bundle_path)["ganad"]["score"]
                self._weights[active.id] = (float(score["lambda"]), float(score["beta"]))
            except (BundleError, KeyError, TypeError, ValueError, OSError):
                return None  # asked again next time: the bundle may be back
        return self._weights[active.id]
