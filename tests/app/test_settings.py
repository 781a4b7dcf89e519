"""Settings: a technician's Settings hold what reviewing needs; λ, β and the field scale are in the
Model menu's own dialog; values kept by the app itself (new-slide marks, Details) read back."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from ganad_clinic.app.settings import AppSettings, Section
from ganad_clinic.app.settings_dialog import SettingsDialog


def test_the_review_settings_hold_no_model_settings_and_the_model_dialog_holds_them(settings, qtbot):
    review = SettingsDialog(settings, (0.1, 1.0))
    model = SettingsDialog(settings, (0.1, 1.0), Section.MODEL)
    qtbot.addWidget(review)
    qtbot.addWidget(model)

    assert {"home", "watched_folders", "poll", "rescan_seconds", "outbox"} == set(review.editors)  # no typed reviewer
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
