"""Runs `inspect_slide` on a long-lived worker thread; only the latest request is worked on.

Clicking through the queue sends many requests; those overtaken by a newer one are skipped, so
the viewer never lags behind. Loaded bundles are kept per registered model version; a slide is
recomputed with the model, the tiles and the tiling its stored score was made with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ganad_clinic.app.inspection import inspect_slide
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.screening.registry import RegistryError, load_registered
from ganad_clinic.store import Score, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InspectionRequest:
    serial: int
    slide_id: int
    path: Path
    score: Score  # the stored score to recompute


class InspectionWorker(QObject):
    finished = Signal(object)  # Inspection
    failed = Signal(int, str)  # slide id, message
    _requested = Signal(object)

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self._latest = 0
        self._bundles: dict[int, Bundle] = {}
        self._requested.connect(self._inspect)

    def request(self, slide_id: int, path: Path, score: Score) -> None:
        """From the main thread: inspect this slide's score next, dropping any request not yet started."""
        self._latest += 1
        self._requested.emit(InspectionRequest(self._latest, slide_id, path, score))

    def cancel_pending(self) -> None:
        self._latest += 1

    @Slot(object)
    def _inspect(self, request: InspectionRequest) -> None:
        if request.serial != self._latest:
            return
        try:
            bundle = self._bundle(request.score.model_version_id)
            cells = self.store.list_cells(request.score.id)
            inspection = inspect_slide(request.slide_id, request.path, bundle, request.score, cells)
        except Exception as error:  # shown in the viewer; the slide's stored result still stands
            log.warning("cannot inspect slide %s: %s", request.slide_id, error)
            self.failed.emit(request.slide_id, str(error) or type(error).__name__)
            return
        if request.serial == self._latest:
            self.finished.emit(inspection)

    def _bundle(self, version_id: int) -> Bundle:
        """The bundle of the model that made the score (never another: its score would differ)."""
        if version_id not in self._bundles:
            registered = {model.id: model for model in self.store.list_model_versions()}
            if version_id not in registered:
                raise RegistryError(f"the model that made this score (id {version_id}) is not registered")
            self._bundles[version_id] = load_registered(registered[version_id])
        return self._bundles[version_id]


class InspectionThread(QObject):
    """Owns the worker's QThread; `stop()` before the window goes."""

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = InspectionWorker(store)
        self.worker_thread = QThread(self)
        self.worker.moveToThread(self.worker_thread)
        self.worker_thread.start()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        self.worker.cancel_pending()
        self.worker_thread.quit()
        return self.worker_thread.wait(timeout_ms)
