"""Sign-in at the start, and the specimen list with its Sign button."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog

from ganad_clinic.app.sign_in_dialog import SignInDialog
from ganad_clinic.app.specimens_dialog import SpecimensDialog
from ganad_clinic.screening.users import add_user
from ganad_clinic.store import ReviewDecision, UserRole
from tests.app.builders import add_scored_slide, write_cells

TIMEOUT_MS = 30_000


def test_a_database_without_users_makes_its_first_admin_then_signs_in(store, qtbot):
    first = SignInDialog(store, first_admin=True)
    qtbot.addWidget(first)
    first.name.setText("adam")
    first.full_name.setText("Adam Admin")
    first.password.setText("admin-pass-1")
    first.again.setText("admin-pass-2")
    first.submit()
    assert "differ" in first.message.text() and store.list_users() == []
    first.again.setText("admin-pass-1")
    with qtbot.waitSignal(first.accepted, timeout=TIMEOUT_MS):
        first.submit()
    assert first.user.name == "adam" and first.user.role is UserRole.ADMIN

    again = SignInDialog(store, first_admin=False)
    qtbot.addWidget(again)
    again.show()
    again.name.setText("adam")
    again.password.setText("not-it")
    again.submit()
    qtbot.waitUntil(lambda: "wrong password" in again.message.text(), timeout=TIMEOUT_MS)
    assert store.get_user("adam").failed_sign_ins == 1 and again.password.text() == ""
    label = again.message  # the refusal in full (it was clipped to two half lines in a walk-through)
    assert label.height() >= label.heightForWidth(label.width()) and again.width() >= 420
    again.password.setText("admin-pass-1")
    with qtbot.waitSignal(again.accepted, timeout=TIMEOUT_MS):
        again.submit()
    assert store.get_user("adam").failed_sign_ins == 0


def _specimen(store, model, tmp_path: Path):
    folder = tmp_path / "inbox" / "HEM-9"
    paths = write_cells(folder, 2)
    for path, score in zip(paths, (3.0, 0.2)):
        store.record_slide(path, *_content(path), folder.parent)
        add_scored_slide(store, model.id, path, score)
    return store.get_specimen("HEM-9")


def _content(path: Path) -> tuple[str, int]:
    from ganad_clinic.files import file_sha256

    return file_sha256(path), path.stat().st_size


def _dialog(qtbot, store, settings) -> SpecimensDialog:
    dialog = SpecimensDialog(store, settings)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1, timeout=TIMEOUT_MS)
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(0))
    return dialog


def test_sign_is_offered_once_the_flags_are_reviewed_and_sends_the_result(qtbot, store, model, settings, user,
                                                                          tmp_path: Path, monkeypatch):
    specimen = _specimen(store, model, tmp_path)
    settings.outbox = tmp_path / "outbox"
    settings.outbox.mkdir()
    dialog = _dialog(qtbot, store, settings)
    item = dialog.tree.topLevelItem(0)
    assert (item.text(0), item.text(1), item.childCount()) == ("HEM-9", "open", 2)
    assert not dialog.sign_button.isEnabled()

    flagged = next(s for s in specimen.slides if s.score.flagged)
    store.add_review(flagged.slide.id, user.name, ReviewDecision.ANOMALY_CONFIRMED)
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItem(0).text(1) == "reviewed", timeout=TIMEOUT_MS)
    assert dialog.sign_button.isEnabled()
    answers = iter([("test-password", True), ("reviewed and released", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: next(answers))
    dialog.sign_button.click()
    qtbot.waitUntil(lambda: "igned" in dialog.status.text(), timeout=TIMEOUT_MS)
    assert dialog.status.text().startswith("Signed: abnormal, by Dr Test"), dialog.status.text()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItem(0).text(1) == "signed", timeout=TIMEOUT_MS)
    assert len(list(settings.outbox.glob("*.hl7"))) == 1 and len(list(settings.outbox.glob("*.fhir.json"))) == 1
    assert not dialog.sign_button.isEnabled()  # nothing changed since


def test_a_technician_is_not_offered_sign(qtbot, store, model, settings, tmp_path: Path):
    _specimen(store, model, tmp_path)
    settings.signed_in = add_user(store, "tina", "Tina", UserRole.TECHNICIAN, "tech-pass-1", actor="admin")
    dialog = _dialog(qtbot, store, settings)
    assert not dialog.sign_button.isEnabled()
    assert "Only a supervisor or an admin" in dialog.sign_button.toolTip()


def test_a_technician_may_look_at_the_operating_point_but_not_change_it(qtbot, store, settings):
    from ganad_clinic.app.operating_point_dialog import OperatingPointDialog

    settings.signed_in = add_user(store, "tina", "Tina", UserRole.TECHNICIAN, "tech-pass-1", actor="admin")
    dialog = OperatingPointDialog(store, settings, None, 0.05)
    qtbot.addWidget(dialog)
    dialog.reason.setText("a reason")
    assert not dialog.save_button.isEnabled()
    assert "Only a supervisor" in dialog.error.text()
    dialog.save()
    assert store.target_fpr_setting() is None
