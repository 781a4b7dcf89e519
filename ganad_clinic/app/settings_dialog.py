"""Settings: reviewer, data folder, watched folders, polling, threshold offset, λ and β.

What each setting changes is said beside it, in particular what cannot change without re-scoring
or retraining. Changes are recorded in the audit trail.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QVBoxLayout, QWidget,
)

from ganad_clinic.app.folders_panel import FoldersPanel
from ganad_clinic.app.settings import AppSettings


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(mid); font-size: 11px;")
    return label


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, active_weights: tuple[float, float] | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.reviewer = QLineEdit(settings.reviewer)
        self.home = QLineEdit("" if settings.home is None else str(settings.home))
        self.home.setPlaceholderText("default data folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_home)
        home_row = QHBoxLayout()
        home_row.addWidget(self.home, 1)
        home_row.addWidget(browse)
        self.folders = FoldersPanel(settings.watched_folders, with_pause=False)
        self.poll = QCheckBox("Poll the folders (network shares, where change events are not delivered)")
        self.poll.setChecked(settings.poll)
        self.rescan = QDoubleSpinBox()
        self.rescan.setRange(2.0, 3600.0)
        self.rescan.setSuffix(" s")
        self.rescan.setValue(settings.rescan_seconds)
        self.field_scale = QDoubleSpinBox()
        self.field_scale.setRange(0.05, 8.0)
        self.field_scale.setSingleStep(0.05)
        self.field_scale.setValue(settings.field_scale)
        self.offset = QDoubleSpinBox()
        self.offset.setRange(-100.0, 100.0)
        self.offset.setDecimals(2)
        self.offset.setSingleStep(0.1)
        self.offset.setValue(settings.threshold_offset)
        self.lam = QDoubleSpinBox()
        self.lam.setRange(0.0, 1.0)
        self.lam.setSingleStep(0.05)
        self.lam.setValue(settings.lam)
        self.beta = QDoubleSpinBox()
        self.beta.setRange(0.0, 100.0)
        self.beta.setSingleStep(0.1)
        self.beta.setValue(settings.beta)
        active = ("" if active_weights is None
                  else f" The active model was calibrated with λ = {active_weights[0]:g}, β = {active_weights[1]:g}.")

        form = QFormLayout()
        form.addRow("Reviewer name", self.reviewer)
        form.addRow("", _note("Recorded with every review and every change you make."))
        form.addRow("Data folder", home_row)
        form.addRow("", _note("Database, models and heat maps. Applies at the next start of the app."))
        form.addRow(self.folders)
        form.addRow("", self.poll)
        form.addRow("Full rescan every", self.rescan)
        form.addRow("Field pixel scale", self.field_scale)
        form.addRow("", _note("Pixel scale of large field images relative to the training crops (tiling)."))
        form.addRow("Threshold offset", self.offset)
        form.addRow("", _note("Flag shown when score ≥ model threshold + offset (negative: more sensitive). Applied "
                              "in this app (queue, filters, viewer) to old and new slides alike. The stored flags, "
                              "and the PDF reports built from them, keep each model's own threshold."))
        form.addRow("λ (critic vs pixels)", self.lam)
        form.addRow("β (latent)", self.beta)
        form.addRow("", _note("Used by the next retrain. A model's threshold and score normalisation are fitted "
                              "with its own λ and β, so these cannot change the scores of an existing model "
                              "without retraining it." + active))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _choose_home(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Data folder")
        if chosen:
            self.home.setText(chosen)

    def apply(self) -> dict[str, list]:
        """Write the values to the settings; returns {setting: [old, new]} for those that changed."""
        settings = self.settings
        home_text = self.home.text().strip()
        values = {
            "reviewer": (settings.reviewer, self.reviewer.text().strip()),
            "home": (str(settings.home or ""), home_text),
            "watched_folders": ([str(f) for f in settings.watched_folders], [str(f) for f in self.folders.folders()]),
            "poll": (settings.poll, self.poll.isChecked()),
            "rescan_seconds": (settings.rescan_seconds, self.rescan.value()),
            "field_scale": (settings.field_scale, self.field_scale.value()),
            "threshold_offset": (settings.threshold_offset, self.offset.value()),
            "lambda": (settings.lam, self.lam.value()),
            "beta": (settings.beta, self.beta.value()),
        }
        settings.reviewer = self.reviewer.text()
        settings.home = Path(home_text) if home_text else None
        settings.watched_folders = self.folders.folders()
        settings.poll = self.poll.isChecked()
        settings.rescan_seconds = self.rescan.value()
        settings.field_scale = self.field_scale.value()
        settings.threshold_offset = self.offset.value()
        settings.lam = self.lam.value()
        settings.beta = self.beta.value()
        return {key: [old, new] for key, (old, new) in values.items() if old != new}
