from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from ganad_clinic.app.report_dialog import ReportDialog
from tests.app.builders import add_scored_slide, write_cells


def test_the_report_is_built_in_a_worker_opened_and_its_csv_files_named(qtbot, store, model, home, settings,
                                                                        tmp_path: Path, monkeypatch):
    for path, score in zip(write_cells(tmp_path / "slides", 3), (3.0, 0.5, 0.4)):
        add_scored_slide(store, model.id, path, score)
    opened: list[Path] = []
    monkeypatch.setattr(ReportDialog, "open_report", staticmethod(lambda path: opened.append(path) or True))
    dialog = ReportDialog(store, home, settings, [tmp_path / "slides"])
    qtbot.addWidget(dialog)
    out = tmp_path / "out" / "report.pdf"
    dialog.out.setText(str(out))
    dialog.flagged_only.setChecked(True)
    dialog.with_csv.setChecked(True)

    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(opened), timeout=60_000)

    assert opened == [out]
    assert out.read_bytes().startswith(b"%PDF")
    assert dialog.summary.counts.slides == 1  # flagged only
    assert out.with_suffix(".csv").is_file()
    cells_csv = out.with_name("report_cells.csv")
    assert dialog.summary.cells_csv_path == cells_csv and cells_csv.is_file()
    assert str(out.with_suffix(".csv")) in dialog.status.text() and str(cells_csv) in dialog.status.text()
    assert "cells" in dialog.with_csv.text()
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled())
    assert "No PDF viewer" not in dialog.status.text()

    monkeypatch.setattr(ReportDialog, "open_report", staticmethod(lambda path: opened.append(path) and False))
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)  # opened again, and no viewer this time
    assert opened == [out, out]
    assert f"No PDF viewer could be opened on this computer: open {out} yourself." in dialog.status.text()
