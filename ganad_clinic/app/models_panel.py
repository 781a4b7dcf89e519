"""The model registry: versions with their validation figures; activate, roll back, import.

Every change is audited by the store with the reviewer's name. The screening service picks up a
newly active model before its next batch.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.slide_table_model import local_time
from ganad_clinic.app.workers import TaskRunner
from ganad_clinic.model.bundle import BundleError, read_metadata
from ganad_clinic.screening.registry import ImportedModel, import_bundle
from ganad_clinic.store import ModelVersion, Store, StoreError

COLUMNS = ("Version", "State", "Registered", "Threshold", "AUC", "Sensitivity", "Specificity", "Changes")


def figure(value: object, digits: int = 3) -> str:
    """A metric for display: '–' when absent or not a number (e.g. an AUC without anomalies)."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "–"


class ModelsPanel(QWidget):
    active_changed = Signal()

    def __init__(self, store: Store, home: Path, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.home, self.settings = store, home, settings
        self.models: list[ModelVersion] = []
        self.importer: TaskRunner | None = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.activate_button = QPushButton("Activate selected")
        self.activate_button.clicked.connect(self.activate_selected)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Re-activate the model that was active before the current one")
        self.rollback_button.clicked.connect(self.roll_back)
        import_button = QPushButton("Import bundle…")
        import_button.clicked.connect(self._choose_bundle)
        self.note = QLabel("Thresholds and figures are each model's own, measured on its validation set. "
                           "New slides are scored with the active model; earlier scores keep theirs.")
        self.note.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.activate_button, self.rollback_button, import_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self) -> None:
        try:
            self.models = self.store.list_model_versions()
        except StoreError as error:
            QMessageBox.critical(self, "Models", str(error))
            return
        self.table.setRowCount(len(self.models))
        for row, model in enumerate(self.models):
            threshold, changes = self._from_bundle(model)
            metrics = model.metrics or {}
            values = (model.version, "active" if model.active else "", local_time(model.created_at), threshold,
                      figure(metrics.get("auc")), figure(metrics.get("sensitivity")),
                      figure(metrics.get("specificity")), changes)
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if model.active:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)

    @staticmethod
    def _from_bundle(model: ModelVersion) -> tuple[str, str]:
        try:
            metadata = read_metadata(model.bundle_path)
        except BundleError as error:
            return "–", f"bundle unreadable: {error}"
        threshold = metadata["ganad"].get("threshold", {})
        changelog = metadata.get("changelog") or {}
        text = f"{figure(threshold.get('value'), 4)}"
        return text, "; ".join(str(entry) for entry in changelog.values())

    def selected_version(self) -> str | None:
        row = self.table.currentRow()
        return self.models[row].version if 0 <= row < len(self.models) else None

    def select_version(self, version: str) -> None:
        for row, model in enumerate(self.models):
            if model.version == version:
                self.table.selectRow(row)

    def activate_selected(self) -> None:
        version = self.selected_version()
        if version is None:
            QMessageBox.information(self, "Activate", "Select a model version first.")
            return
        self._change(lambda: self.store.activate_model_version(version, actor=self.settings.actor()))

    def roll_back(self) -> None:
        self._change(lambda: self.store.rollback_model_version(actor=self.settings.actor()))

    def _change(self, change) -> None:
        try:
            change()
        except StoreError as error:
            QMessageBox.warning(self, "Models", str(error))
            return
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
        self.refresh()
        self.select_version(imported.model.version)
        self.active_changed.emit()

    def _import_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Import bundle", message)

    def stop_work(self, timeout_ms: int = 30_000) -> bool:
        return self.importer is None or self.importer.stop(timeout_ms)


class ModelsDialog(QDialog):
    def __init__(self, store: Store, home: Path, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(860, 320)
        self.panel = ModelsPanel(store, home, settings, self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        self.setWindowFlag(Qt.WindowType.WindowContextHelpButtonHint, False)

    def closeEvent(self, event) -> None:
        self.panel.stop_work()
        super().closeEvent(event)
