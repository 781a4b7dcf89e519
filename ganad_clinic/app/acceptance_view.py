"""A candidate model's acceptance check, as `ganad models compare` prints it: run on a worker (both
models score the held-out evidence), shown with its figures, intervals and counts and its verdict;
Activate goes through the same gate as `ganad models activate` (a refusal can be overridden only
with a reason, which the audit trail keeps), and the check can be exported as a PDF that the
model's registry entry links to. The Models dialog and the retrain dialog both show it."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.report_dialog import REPORTS_FOLDER
from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.workers import BackgroundCall
from ganad_clinic.report.acceptance_pdf import write_acceptance_report
from ganad_clinic.screening.acceptance import (
    AcceptanceCheck,
    AcceptanceRefused,
    activate_checked,
    check_candidate,
    describe,
)
from ganad_clinic.screening.users import Permission, may
from ganad_clinic.store import ModelVersion, Store

ACCEPTED_COLOUR = "#1a7f37"
REFUSED_COLOUR = "#c82828"


def _activate(store: Store, version: str, actor: str, override: str | None,
              field_scale: float) -> ModelVersion | AcceptanceRefused:
    """Activation through the gate; a refusal comes back as a value (the window asks for an override)."""
    try:
        return activate_checked(store, version, actor=actor, override=override, field_scale=field_scale).model
    except AcceptanceRefused as refused:
        return refused


def _export(store: Store, check: AcceptanceCheck, path: Path, actor: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_acceptance_report(check, path)
    store.link_acceptance_report(check.candidate.version, path, actor=actor,
                                 details={"accepted": check.accepted, "refusals": list(check.refusals)})
    return path


class AcceptanceView(QWidget):
    """The check of one model version (`show_check(version)`); `activated` once it is made active."""

    activated = Signal(object)  # ModelVersion

    def __init__(self, store: Store, home: Path, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.home, self.settings = store, home, settings
        self.version: str | None = None  # the version whose check is shown or asked for
        self.check: AcceptanceCheck | None = None
        self.checker = BackgroundCall(
            lambda version, field_scale, actor: check_candidate(store, version, field_scale=field_scale, actor=actor),
            self)
        self.checker.returned.connect(self._checked)
        self.checker.errored.connect(self._check_failed)
        self.checker.finished.connect(self._enable)
        self.activator = BackgroundCall(lambda *args: _activate(store, *args), self)
        self.activator.returned.connect(self._activation_done)
        self.activator.errored.connect(self._activation_failed)
        self.activator.finished.connect(self._enable)
        self.exporter = BackgroundCall(lambda check, path, actor: _export(store, check, path, actor), self)
        self.exporter.returned.connect(self._exported)
        self.exporter.errored.connect(lambda message: self._say(f"The acceptance report was not written: {message}"))
        self.exporter.finished.connect(self._enable)

        self.text = QLabel("Select a candidate model to see its acceptance check.")
        self.text.setWordWrap(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.activate_button = QPushButton("Activate")
        self.activate_button.setToolTip("Make this model active if its acceptance check accepts it; a refusal "
                                        "can be overridden only with a reason (audited)")
        self.activate_button.clicked.connect(self.activate)
        self.export_button = QPushButton("Export acceptance report…")
        self.export_button.clicked.connect(self._choose_report)
        buttons = QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.verdict)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._enable()

    @property
    def busy(self) -> bool:
        return self.checker.busy or self.activator.busy or self.exporter.busy

    def show_check(self, version: str | None, *, active: bool = False) -> None:
        """Check this version on the worker (None: nothing selected; `active`: it is the active model,
        nothing to accept)."""
        self.version, self.check = version, None
        self.verdict.setText("")
        self.message.setText("")
        if version is None:
            self.text.setText("Select a candidate model to see its acceptance check.")
        elif active:
            self.version = None
            self.text.setText(f"Model {version} is the active model.")
        else:
            self.text.setText(f"Checking model {version} against the active model: both score the held-out "
                              "evidence (reviewed slides it never learnt from, and its calibration normals)…")
            self.checker.request(version, self.settings.field_scale, self.settings.actor())
        self._enable()

    def show_result(self, check: AcceptanceCheck) -> None:
        """Show a check made elsewhere (the retrain runs one for its candidate)."""
        self.version = check.candidate.version
        self.message.setText("")
        self._checked(check)

    def _enable(self) -> None:
        self.activate_button.setEnabled(self.version is not None and not self.activator.busy)
        self.export_button.setEnabled(self.check is not None and not self.exporter.busy)

    def _checked(self, check: AcceptanceCheck) -> None:
        if check.candidate.version != self.version:
            return  # an earlier selection's
        self.check = check
        self.text.setText("<pre style='margin:0'>" + html.escape("\n".join(describe(check)), quote=False) + "</pre>")
        if check.accepted:
            self.verdict.setText(f"<b style='color:{ACCEPTED_COLOUR}'>Accepted:</b> it may be activated.")
        else:
            self.verdict.setText(f"<b style='color:{REFUSED_COLOUR}'>Refused:</b> Activate asks for a reason to "
                                 "override (kept in the audit trail).")
        self._enable()

    def _check_failed(self, message: str) -> None:
        if self.version is not None:
            self.text.setText(f"The acceptance check of model {self.version} could not be made: {message}")
        self._enable()

    # activation

    def activate(self) -> None:
        """Activate the version shown: straight through the gate when its check accepts it; when it
        was refused, only with an override reason the user gives (asked first)."""
        if self.version is None:
            return
        override = None
        if self.check is not None and not self.check.accepted:
            override = self.ask_override(self.check.refusals)
            if override is None:
                return
        self._start_activation(self.version, override)

    def _start_activation(self, version: str, override: str | None) -> None:
        self.message.setText(f"Activating model {version} (its acceptance check runs again)…")
        self.activator.request(version, self.settings.actor(), override, self.settings.field_scale)
        self._enable()

    def ask_override(self, refusals: tuple[str, ...]) -> str | None:
        """The user's reason to override these refusals; None when none is given (no override), or
        when the signed-in user's role may not override (a technician's)."""
        listed = "\n".join(f"• {refusal}" for refusal in refusals)
        user = self.settings.signed_in
        if user is not None and not may(user, Permission.OVERRIDE):
            QMessageBox.information(self, "Activation refused", f"The acceptance check refuses this model:\n{listed}"
                                    f"\n\nOnly a supervisor may override it; {user.name} is a {user.role.value}.")
            return None
        reason, ok = QInputDialog.getText(
            self, "Activation refused", f"The acceptance check refuses this model:\n{listed}\n\nTo activate it "
            "anyway, give your reason (recorded in the audit trail with your name). Leave it empty to cancel.",
            QLineEdit.EchoMode.Normal, "")
        return reason.strip() if ok and reason.strip() else None

    def _activation_done(self, outcome: ModelVersion | AcceptanceRefused) -> None:
        if isinstance(outcome, AcceptanceRefused):
            self.check = outcome.check
            self._checked(outcome.check)
            override = self.ask_override(outcome.check.refusals)
            if override is None:
                self.message.setText(f"Model {outcome.check.candidate.version} was not activated: "
                                     + "; ".join(outcome.check.refusals) + ".")
                self._enable()
                return
            self._start_activation(outcome.check.candidate.version, override)
            return
        self.message.setText(f"Model {outcome.version} is now active; new slides are scored with it.")
        self.version = None
        self._enable()
        self.activated.emit(outcome)

    def _activation_failed(self, message: str) -> None:
        self.message.setText("")
        self._enable()
        QMessageBox.warning(self, "Activate", message)

    # the report

    def _choose_report(self) -> None:
        if self.check is None:
            return
        reports = self.home / REPORTS_FOLDER
        folder = reports if reports.is_dir() else self.home  # a missing folder would send the dialog elsewhere
        suggested = folder / f"acceptance-{self.check.candidate.version}.pdf"
        chosen, _ = QFileDialog.getSaveFileName(self, "Export acceptance report", str(suggested), "PDF (*.pdf)")
        if chosen:
            self.export_report(Path(chosen))

    def export_report(self, path: Path) -> None:
        """Write the check shown as a PDF (on the worker) and link it from the model's registry entry."""
        if self.check is None:
            return
        self.message.setText(f"Writing {path.name}…")
        self.exporter.request(self.check, path, self.settings.actor())
        self._enable()

    def _exported(self, path: Path) -> None:
        self._say(f"Acceptance report written to {path} and linked from the model's registry entry.")

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self._enable()

    def stop_work(self, timeout_ms: int = 60_000) -> bool:
        stopped = [worker.stop(timeout_ms, for_good=False) for worker in (self.checker, self.activator, self.exporter)]
        return all(stopped)
