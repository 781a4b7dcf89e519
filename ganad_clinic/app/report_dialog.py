"""Export a PDF screening report: period, folder, flagged only; built in a worker, then opened.

Once built, "Open report" opens it again; when no viewer can open it, the dialog says where the
file is (the report is written either way)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from PySide6.QtCore import QDate, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ganad_clinic.app.settings import AppSettings
from ganad_clinic.app.workers import TaskRunner
from ganad_clinic.report import ReportSummary, build_report
from ganad_clinic.store import Store

REPORTS_FOLDER = "reports"


def open_in_viewer(path: Path) -> bool:
    """Whether the desktop found a program to open the file."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def _day(edit: QDateEdit) -> date:
    """The edit's date as a Python date (QDate.toPython is typed as returning any object)."""
    day = edit.date()
    return date(day.year(), day.month(), day.day())


class ReportDialog(QDialog):
    open_report = staticmethod(open_in_viewer)  # replaced in tests

    def __init__(self, store: Store, home: Path, settings: AppSettings, folders: list[Path],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export screening report")
        self.setMinimumWidth(720)  # the report's path in full
        self.store, self.settings = store, settings
        self.runner: TaskRunner | None = None
        self.summary: ReportSummary | None = None
        today = QDate.currentDate()
        self.since = QDateEdit(QDate(today.year(), today.month(), 1))
        self.until = QDateEdit(today)
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.folder = QComboBox()
        self.folder.addItem("All folders", None)
        for folder in folders:
            self.folder.addItem(str(folder), folder)
        self.flagged_only = QCheckBox("Flagged slides only")
        self.lab = QLineEdit(settings.lab)
        self.with_csv = QCheckBox("Also write the slides and their cells as CSV beside the PDF "
                                  "(<name>.csv and <name>_cells.csv)")
        self.out = QLineEdit(str(home / REPORTS_FOLDER / f"screening-{date.today():%Y-%m-%d}.pdf"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_file)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("From", self.since)
        form.addRow("To (included)", self.until)
        form.addRow("Folder", self.folder)
        form.addRow("", self.flagged_only)
        form.addRow("Laboratory", self.lab)
        form.addRow("Save as", out_row)
        form.addRow("", self.with_csv)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.export)
        self.open_button = QPushButton("Open report")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_built)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    @property
    def running(self) -> bool:
        return self.runner is not None and self.runner.running

    def _choose_file(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, "Save report as", self.out.text(), "PDF (*.pdf)")
        if chosen:
            self.out.setText(chosen)

    def export(self) -> None:
        if self.running:
            return
        out = Path(self.out.text().strip()).expanduser()
        if out.suffix.lower() != ".pdf":
            out = out.with_suffix(".pdf")
        since, until = _day(self.since), _day(self.until)
        if since > until:
            QMessageBox.warning(self, "Report", "The period ends before it starts.")
            return
        store, folder, flagged_only = self.store, self.folder.currentData(), self.flagged_only.isChecked()
        lab, operator = self.lab.text().strip(), self.settings.printed_name()
        csv_path = out.with_suffix(".csv") if self.with_csv.isChecked() else None
        self.settings.lab = lab

        def work(report, cancel) -> ReportSummary:
            out.parent.mkdir(parents=True, exist_ok=True)
            return build_report(store, out, since=since, until=until, folder=folder, flagged_only=flagged_only,
                                lab=lab, operator=operator, csv_path=csv_path)

        self.runner = TaskRunner(work, self)
        self.runner.task.succeeded.connect(self._on_built)
        self.runner.task.failed.connect(self._on_failed)
        self.runner.task.done.connect(self._on_done)
        self.export_button.setEnabled(False)
        self.status.setText("Building the report…")
        self.runner.start()

    def _on_built(self, summary: ReportSummary) -> None:
        self.summary = summary
        empty = " (no slides in this period)" if summary.is_empty else ""
        written = f"Wrote {summary.pdf_path} — {summary.pages} page(s), {summary.counts.slides} slides{empty}."
        if summary.csv_path is not None:
            written += f" The slides as CSV: {summary.csv_path}."
        if summary.cells_csv_path is not None:
            written += f" Their cells as CSV: {summary.cells_csv_path}."
        self.status.setText(written)
        self.open_button.setEnabled(True)
        self.open_built()

    def open_built(self) -> None:
        """Open the report just built; say plainly where it is when no viewer could open it."""
        if self.summary is None:
            return
        if not self.open_report(self.summary.pdf_path):
            self.status.setText(f"{self.status.text()} No PDF viewer could be opened on this computer: open "
                                f"{self.summary.pdf_path} yourself.")

    def _on_failed(self, message: str) -> None:
        self.status.setText("The report could not be built.")
        QMessageBox.critical(self, "Report", f"The report could not be built: {message}")

    def _on_done(self) -> None:
        self.export_button.setEnabled(True)

    def stop_work(self, timeout_ms: int = 60_000) -> bool:
        """Wait for a report being built (it cannot be cancelled half-way; its file is written atomically)."""
        return self.runner is None or self.runner.stop(timeout_ms)

    def closeEvent(self, event) -> None:
        self.stop_work()
        super().closeEvent(event)
