"""Settings: a technician's Settings hold what reviewing needs; λ, β and the field scale are in the
Model menu's own dialog; values kept by the app itself (new-slide marks, Details) read back."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from ganad_clinic.app.settings import AppSettings, Section
from ganad_clinic.app.settings_dialog import SettingsDialog
from ganad_clinic.screening.users import add_user
from ganad_clinic.store import UserRole


def test_the_review_settings_hold_no_model_settings_and_the_model_dialog_holds_them(settings, qtbot):
    review = SettingsDialog(settings, (0.1, 1.0))
    model = SettingsDialog(settings, (0.1, 1.0), Section.MODEL)
    qtbot.addWidget(review)
    qtbot.addWidget(model)

    assert {"home", "watched_folders", "poll", "rescan_seconds", "accession_pattern", "station", "outbox"} == set(
        review.editors)  # no typed reviewer
    assert set(model.editors) == {"field_scale", "lam", "beta"}
    assert (review.windowTitle(), model.windowTitle()) == ("Settings", "Training and model settings")

    before = settings.lam
    model.editors["lam"].widget.setValue(0.3)
    assert model.apply() == {"lambda": [before, 0.3]}  # what the main window audits
    assert settings.lam == 0.3


def test_the_new_slide_marks_and_details_read_back_as_kept(tmp_path: Path):
    path = str(tmp_path / "kept.ini")
    settings = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    assert (settings.seen_up_to, settings.unseen, settings.show_details) == (0, [], False)
    settings.seen_up_to, settings.unseen, settings.show_details = 41, [7, 12], True
    settings.unseen = [12]  # one id alone: an ini file gives it back as a lone string

    again = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    assert (again.seen_up_to, again.unseen, again.show_details) == (41, [12], True)


def _titles_opened_by(action) -> list[str]:
    """Trigger a menu action that opens a modal dialog; the dialog's title, once it is closed."""
    titles: list[str] = []

    def close() -> None:
        dialog = QApplication.activeModalWidget()
        titles.append(dialog.windowTitle())
        dialog.reject()

    QTimer.singleShot(0, close)
    action.trigger()
    return titles


def test_the_menus_open_the_settings_and_only_a_supervisor_gets_the_model_settings(make_window, store, qtbot):
    window = make_window()  # a supervisor
    assert _titles_opened_by(window.settings_action) == ["Settings"]  # the menu's triggered(bool) is not a section
    assert _titles_opened_by(window.model_settings_action) == ["Training and model settings"]

    technician = add_user(store, "tina", "Tina", UserRole.TECHNICIAN, "tech-pass-1", actor="admin")
    assert not make_window(technician).model_settings_action.isEnabled()


def test_an_accession_pattern_without_its_group_is_refused_and_a_good_one_kept(settings, qtbot, monkeypatch):
    dialog = SettingsDialog(settings, None)
    qtbot.addWidget(dialog)
    said: list[str] = []
    monkeypatch.setattr("ganad_clinic.app.settings_dialog.QMessageBox.warning",
                        lambda parent, title, text: said.append(text))
    dialog.editors["accession_pattern"].widget.setText("^([A-Z]+-\\d+)_")
    dialog.accept()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    assert said and "Accession from file names: the accession pattern" in said[0]
    assert "has no group named accession" in said[0]

    dialog.editors["accession_pattern"].widget.setText(" ^(?P<accession>[A-Z]+-\\d+)_ ")
    dialog.accept()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted
    assert dialog.apply() == {"accession_pattern": ["", "^(?P<accession>[A-Z]+-\\d+)_"]}
    assert settings.accession_pattern == "^(?P<accession>[A-Z]+-\\d+)_"
