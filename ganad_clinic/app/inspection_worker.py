"""Runs `inspect_slide` on a long-lived worker thread; only the latest request is worked on.

Clicking through the queue sends many requests; those overtaken by a newer one are skipped, so
the viewer never lags behind. Loaded bundles are kept per registered model version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ganad_clinic.app.inspection import inspect_slide
from ganad_clinic.imaging.tiling import TilingRule
from ganad_clinic.model.bundle import Bundle
from ganad_clinic.screening.registry import find_model_version, load_registered
from ganad_clinic.screening.slide_scoring import tiling_rule_for
from ganad_clinic.store import ModelVersion, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InspectionRequest:
    serial: int
    slide_id: int
    path: Path
    model_version_id: int | None  # the model that scored the slide; None: the active model


class InspectionWorker(QObject):
    finished = Signal(object)  # Inspection
    failed = Signal(int, str)  # slide id, message
    _requested = Signal(object)

    def __init__(self, store: Store, field_scale: float = 1.0) -> None:
        super().__init__()
        self.store = store
        self.field_scale = field_scale
        self._latest = 0
        self._bundles: dict[int, tuple[ModelVersion, Bundle]] = {}
        self._requested.connect(self._inspect)

    def request(self, slide_id: int, path: Path, model_version_id: int | None) -> None:
        """From the main thread: inspect this slide next, dropping any request not yet started."""
        self._latest += 1
        self._requested.emit(InspectionRequest(self._latest, slide_id, path, model_version_id))

    def cancel_pending(self) -> None:
        self._latest += 1

    @Slot(object)
    def _inspect(self, request: InspectionRequest) -> None:
        if request.serial != self._latest:
            return
        try:
            model, bundle, rule = self._model(request.model_version_id)
            inspection = inspect_slide(request.slide_id, request.path, bundle, rule, model.version)
        except Exception as error:  # shown in the viewer; the slide's stored result still stands
            log.warning("cannot inspect slide %s: %s", request.slide_id, error)
            self.failed.emit(request.slide_id, str(error) or type(error).__name__)
            return
        if request.serial == self._latest:
            self.finished.emit(inspection)

    def _model(self, version_id: int | None) -> tuple[ModelVersion, Bundle, TilingRule]:
        registered = {model.id: model for model in self.store.list_model_versions()}
        model = registered.get(version_id) if version_id is not None else None
        if model is None:
            model = find_model_version(self.store, None)
        if model.id not in self._bundles:
            self._bundles[model.id] = (model, load_registered(model))
        model, bundle = self._bundles[model.id]
        return model, bundle, tiling_rule_for(bundle, self.field_scale)


class InspectionThread(QObject):
    """Owns the worker's QThread; `stop()` before the window goes."""

    def __init__(self, store: Store, field_scale: float = 1.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = InspectionWorker(store, field_scale)
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        self.worker.cancel_pending()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
