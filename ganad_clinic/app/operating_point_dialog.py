"""Change the operating point: the share of normal slides the lab allows the tool to flag.

Each model keeps its calibration normals' scores, so the rate changes without retraining. The
change is audited (who, when, why: a reason is required) and applies to slides scored from then
on; stored flags stay as they were (`ganad operating-point reflag` judges earlier slides again,
as new score rows). It is written on a worker thread, never on the window's.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.operating_words import rate_in_force
from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.workers import BackgroundCall
from ganad_clinic.model.config import DEFAULT_TARGET_FPR
from ganad_clinic.screening.users import Permission, may
from ganad_clinic.store import OperatingPointSetting, Store

LOWEST_PERCENT, HIGHEST_PERCENT = 0.1, 50.0
APPLIES = ("It applies to slides scored from now on: the flags already stored stay as they were "
           "(`ganad operating-point reflag` judges earlier slides again, as new score rows).")


class OperatingPointDialog(QDialog):
    changed = Signal(object)  # OperatingPointSetting, once stored

    def __init__(self, store: Store, settings: AppSettings, current: OperatingPointSetting | None,
                 model_target: float | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Operating point")
        self.settings = settings
        self.writer = BackgroundCall(
            lambda rate, actor, reason: store.set_target_fpr(rate, actor=actor, reason=reason), self)
        self.writer.returned.connect(self._stored)
        self.writer.errored.connect(self._failed)
        self.writer.finished.connect(self._enable)

        now = QLabel(rate_in_force(current, model_target))
        now.setWordWrap(True)
        self.rate = QDoubleSpinBox()
        self.rate.setRange(LOWEST_PERCENT, HIGHEST_PERCENT)
        self.rate.setDecimals(1)
        self.rate.setSingleStep(0.5)
        self.rate.setSuffix(" %")
        start = current.target_fpr if current is not None else model_target or DEFAULT_TARGET_FPR
        self.rate.setValue(start * 100)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("required: why the lab changes it (kept in the audit trail)")
        note = QLabel(f"At most this share of normal slides is flagged. {APPLIES} The change is recorded in the "
                      "audit trail with your name and reason.")
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid);")
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c82828;")
        form = QFormLayout()
        form.addRow("Normal slides flagged at most", self.rate)
        form.addRow("Reason", self.reason)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._enable)
        layout = QVBoxLayout(self)
        layout.addWidget(now)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        if not self.allowed:
            self.error.setText("Only a supervisor may change the operating point.")
        self._enable()

    @property
    def save_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    @property
    def allowed(self) -> bool:
        """A supervisor's (or an admin's) change; anyone may look."""
        user = self.settings.signed_in
        return user is None or may(user, Permission.OPERATING_POINT)

    def _enable(self) -> None:
        self.save_button.setEnabled(self.allowed and bool(self.reason.text().strip()) and not self.writer.busy)

    def save(self) -> None:
        """Store the rate (on the worker); the dialog closes once it is stored."""
        if not self.allowed or not self.reason.text().strip() or self.writer.busy:
            return
        self.error.setText("")
        self.writer.request(self.rate.value() / 100, self.settings.actor(), self.reason.text().strip())
        self._enable()

    def _stored(self, setting: OperatingPointSetting) -> None:
        self.changed.emit(setting)
        self.accept()

    def _failed(self, message: str) -> None:
        self.error.setText(f"Not changed: {message}")

    def done(self, result: int) -> None:
        self.writer.stop(for_good=False)  # a write under way finishes first
        super().done(result)
