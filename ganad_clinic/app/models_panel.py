"""The model registry: versions with their calibration and validation figures; the acceptance
check of a candidate, activation through it (as `ganad models activate`), roll back, import; the
operating point.

Every change is audited by the store with the reviewer's name. The screening service picks up a
newly active model before its next batch. The registry and the bundles' metadata are read on a
worker thread, as is every check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.acceptance_view import AcceptanceView
from ganad_clinic.app.operating_words import calibration_words, rate_in_force
from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.slide_table_model import local_time
from ganad_clinic.app.workers import BackgroundCall, TaskRunner
from ganad_clinic.model.bundle import BundleError, read_metadata
from ganad_clinic.screening.registry import ImportedModel, import_bundle
from ganad_clinic.store import ModelVersion, OperatingPointSetting, Store, StoreError

COLUMNS = ("Version", "State", "Registered", "Threshold", "Calibration", "Validation AUC", "Sensitivity",
           "Specificity", "Validation slides (normal / anomalous)", "Changes")
CALIBRATION_COLUMN = COLUMNS.index("Calibration")


def figure(value: object, digits: int = 3) -> str:
    """A metric for display: '–' when absent or not a number (e.g. an AUC without anomalies)."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "–"


@dataclass(frozen=True)
class ModelRow:
    """One registered version as the table shows it (read from its bundle's metadata)."""

    model: ModelVersion
    threshold: str
    calibration: str  # what its calibration keeps at the rate in force
    changes: str
    target_fpr: float | None  # the rate it was trained for


@dataclass(frozen=True)
class Registry:
    rows: list[ModelRow]
    setting: OperatingPointSetting | None  # the lab's stated rate


def read_registry(store: Store) -> Registry:
    """The registered versions and the lab's rate, with what each bundle's calibration keeps at it."""
    setting = store.target_fpr_setting()
    rows = []
    for model in store.list_model_versions():
        try:
            metadata = read_metadata(model.bundle_path)
        except BundleError as error:
            rows.append(ModelRow(model, "–", "–", f"bundle unreadable: {error}", None))
            continue
        ganad, changelog = metadata["ganad"], metadata.get("changelog") or {}
        calibration = ganad.get("calibration") or {}
        trained_for = calibration.get("target_fpr")
        target = setting.target_fpr if setting is not None else trained_for
        kept = calibration_words(calibration, target) if isinstance(target, (int, float)) else "–"
        rows.append(ModelRow(model, figure((ganad.get("threshold") or {}).get("value"), 4), kept,
                             "; ".join(str(entry) for entry in changelog.values()),
                             trained_for if isinstance(trained_for, (int, float)) else None))
    return Registry(rows, setting)


class ModelsPanel(QWidget):
    active_changed = Signal()
    operating_point_requested = Signal()

    def __init__(self, store: Store, home: Path, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.home, self.settings = store, home, settings
        self.models: list[ModelVersion] = []
        self.registry: Registry | None = None
        self._select_next: str | None = None  # a version just imported: selected once the table shows it
        self.importer: TaskRunner | None = None
        self.reader = BackgroundCall(lambda: read_registry(store), self)
        self.reader.returned.connect(self._read)
        self.reader.errored.connect(lambda message: QMessageBox.critical(self, "Models", message))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.acceptance = AcceptanceView(store, home, settings, self)
        self.acceptance.activated.connect(self._activated)
        self.activate_button = self.acceptance.activate_button
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Re-activate the model that was active before the current one")
        self.rollback_button.setAutoDefault(False)  # Enter in the dialog never rolls back
        self.rollback_button.clicked.connect(self.roll_back)
        import_button = QPushButton("Import bundle…")
        import_button.clicked.connect(self._choose_bundle)
        self.operating_point_button = QPushButton("Operating point…")
        self.operating_point_button.setToolTip("Change the share of normal slides the tool may flag (audited)")
        self.operating_point_button.clicked.connect(self.operating_point_requested)
        self.operating_point = QLabel("")
        self.operating_point.setWordWrap(True)
        self.note = QLabel("Thresholds are each model's own, for a single cell at its training target; validation "
                           "figures rest on the few slides shown beside them. A candidate becomes active only "
                           "through its acceptance check. New slides are scored with the active model; earlier "
                           "scores keep theirs.")
        self.note.setWordWrap(True)
        self.active_calibration = QLabel("")
        self.active_calibration.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.rollback_button, import_button, self.operating_point_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        checked = QGroupBox("Acceptance check of the selected model")
        checked_layout = QVBoxLayout(checked)
        checked_layout.addWidget(self.acceptance)
        layout = QVBoxLayout(self)
        layout.addWidget(self.operating_point)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.active_calibration)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        layout.addWidget(checked)
        self.refresh()

    @property
    def reading(self) -> bool:
        return self.reader.busy

    def refresh(self) -> None:
        """Read the registry again, on the worker; the table follows."""
        self.reader.request()

    def _read(self, registry: Registry) -> None:
        selected, self._select_next = self._select_next or self.selected_version(), None
        self.registry = registry
        self.models = [row.model for row in registry.rows]
        active = next((row for row in registry.rows if row.model.active), None)
        self.operating_point.setText(rate_in_force(registry.setting, None if active is None else active.target_fpr))
        self.active_calibration.setText("" if active is None else
                                        f"Active model {active.model.version}: {active.calibration}.")
        self.table.blockSignals(True)
        self.table.setRowCount(len(registry.rows))
        for row, entry in enumerate(registry.rows):
            model, metrics = entry.model, entry.model.metrics or {}
            counts = f"{metrics.get('n_normal', '–')} / {metrics.get('n_anomalous', '–')}"
            values = (model.version, "active" if model.active else "", local_time(model.created_at), entry.threshold,
                      entry.calibration, figure(metrics.get("auc")), figure(metrics.get("sensitivity")),
                      figure(metrics.get("specificity")), counts, entry.changes)
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if model.active:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        if selected is not None:
            self.select_version(selected)

    def selected_version(self) -> str | None:
        row = self.table.currentRow()
        return self.models[row].version if 0 <= row < len(self.models) else None

    def select_version(self, version: str) -> None:
        for row, model in enumerate(self.models):
            if model.version == version:
                self.table.selectRow(row)

    def _selection_changed(self) -> None:
        row = self.table.currentRow()
        model = self.models[row] if 0 <= row < len(self.models) else None
        if model is None:
            self.acceptance.show_check(None)
        elif model.version != self.acceptance.version:
            self.acceptance.show_check(model.version, active=model.active)

    def activate_selected(self) -> None:
        """Activate the selected version through its acceptance check (see AcceptanceView.activate)."""
        if self.selected_version() is None:
            QMessageBox.information(self, "Activate", "Select a model version first.")
            return
        self.acceptance.activate()

    def _activated(self, model: ModelVersion) -> None:
        self.refresh()
        self.active_changed.emit()

    def ask_rollback_reason(self) -> str:
        """The reason for a rollback, asked every time (kept in the audit trail); empty: cancelled."""
        reason, ok = QInputDialog.getText(self, "Roll back",
                                          "Re-activate the model that was active before this one? New slides "
                                          "are then scored with it.\nYour reason (kept in the audit trail):")
        return reason.strip() if ok else ""

    def roll_back(self) -> None:
        reason = self.ask_rollback_reason()
        if not reason:
            return
        try:
            self.store.rollback_model_version(actor=self.settings.actor(), reason=reason)
        except StoreError as error:
            QMessageBox.warning(self, "Models", str(error))
            return
        self.acceptance.show_check(None)
        self.refresh()
        self.active_changed.emit()

    def _choose_bundle(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Import a model bundle (a folder)")
        if chosen:
            self.import_bundle(Path(chosen))

    def import_bundle(self, path: Path) -> None:
        """Verify, copy and register a bundle in a worker (loading weights is torch's job, off the
        main thread); it is not activated, unless the registry was empty."""
        actor = self.settings.actor()
        self.importer = TaskRunner(lambda report, cancel: import_bundle(self.store, path, self.home, actor=actor), self)
        self.importer.task.succeeded.connect(self._imported)
        self.importer.task.failed.connect(self._import_failed)
        self.importer.start()

    def _imported(self, imported: ImportedModel) -> None:
        self._select_next = imported.model.version
        self.refresh()
        self.active_changed.emit()

    def _import_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Import bundle", message)

    def stop_work(self, timeout_ms: int = 30_000) -> bool:
        stopped = [self.reader.stop(timeout_ms, for_good=False), self.acceptance.stop_work(timeout_ms)]
        return all(stopped) and (self.importer is None or self.importer.stop(timeout_ms))


class ModelsDialog(QDialog):
    def __init__(self, store: Store, home: Path, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(1100, 640)
        self.panel = ModelsPanel(store, home, settings, self)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        end_row = QHBoxLayout()
        end_row.addStretch(1)
        end_row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addLayout(end_row)
        self.setWindowFlag(Qt.WindowType.WindowContextHelpButtonHint, False)
