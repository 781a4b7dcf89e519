"""Specimens: images grouped by accession, the sign-off gate and signatures, named users."""

from __future__ import annotations

import pytest

from ganad_clinic.store import ReviewDecision, SignOffRefused, SpecimenState, Store, StoreError, UserRole
from ganad_clinic.store.specimens import default_accession
from ganad_clinic.store.verify import verify_database

from .helpers import add_score, register_model


def test_the_default_accession_is_the_subfolder_under_the_inbox_else_the_file():
    assert default_accession("/inbox/ACC-12/field_1.jpg", "/inbox") == "ACC-12"
    assert default_accession("/inbox/ACC-12/deeper/field_1.jpg", "/inbox") == "ACC-12"
    assert default_accession("/inbox/cell_0042.png", "/inbox") == "cell_0042"
    assert default_accession("/elsewhere/cell.png", "/inbox") == "cell"


def _user(store: Store, name: str = "sam", role: UserRole = UserRole.SUPERVISOR):
    return store.add_user(name, f"{name.title()} Example", role, "hash", actor="admin")


def _sign(store: Store, specimen_id: int, user, message_id: str = "m1"):
    return store.sign_specimen(specimen_id, user, meaning="reviewed and released", message_id=message_id,
                               model_version="1.0.0", target_fpr=0.05)


def test_a_specimen_is_signed_only_once_its_flags_are_reviewed_and_again_after_an_amendment(store: Store) -> None:
    model = register_model(store)
    flagged = store.record_slide("/inbox/ACC-1/a.png", "aaa", 10, "/inbox").slide
    quiet = store.record_slide("/inbox/ACC-1/b.png", "bbb", 10, "/inbox").slide
    add_score(store, flagged.id, model.id, 0.9)
    supervisor = _user(store)
    specimen = store.get_specimen("ACC-1")
    assert specimen.state is SpecimenState.OPEN
    with pytest.raises(SignOffRefused, match="b.png is not scored yet; a.png is flagged and not reviewed|"
                                             "a.png is flagged and not reviewed; b.png is not scored yet"):
        _sign(store, specimen.specimen.id, supervisor)
    add_score(store, quiet.id, model.id, 0.1)
    store.add_review(flagged.id, "tina", ReviewDecision.SECOND_READ)
    with pytest.raises(SignOffRefused, match="a.png awaits a second read"):
        _sign(store, specimen.specimen.id, supervisor)
    assert store.list_audit_events("specimen.signed") == []

    store.add_review(flagged.id, "sam", ReviewDecision.ANOMALY_CONFIRMED)
    assert store.get_specimen("ACC-1").state is SpecimenState.REVIEWED
    first = _sign(store, specimen.specimen.id, supervisor)

    signed = store.get_specimen("ACC-1")
    assert signed.state is SpecimenState.SIGNED and signed.finding == "abnormal"
    assert (first.printed_name, first.role, first.amends_id) == ("Sam Example", "supervisor", None)
    with pytest.raises(SignOffRefused, match="signed already"):
        _sign(store, specimen.specimen.id, supervisor, "m2")
    assert not any(summary.is_amendment for summary in store.list_slides())

    store.add_review(flagged.id, "sam", ReviewDecision.NORMAL, "stain artefact")  # an amendment
    amended = store.get_specimen("ACC-1")
    assert amended.state is SpecimenState.AMENDED and amended.finding == "normal"
    assert {summary.slide.file_name: summary.is_amendment for summary in store.list_slides()} == {
        "a.png": True, "b.png": False}
    second = _sign(store, specimen.specimen.id, supervisor, "m2")
    assert second.amends_id == first.id and second.finding == "normal"
    assert verify_database(store.url).ok  # the signatures are chained


def test_a_failing_prepare_leaves_nothing_signed(store: Store) -> None:
    model = register_model(store)
    slide = store.record_slide("/inbox/ACC-2/a.png", "aaa", 10, "/inbox").slide
    add_score(store, slide.id, model.id, 0.1)

    def full_outbox(summary, signature):
        raise StoreError("the outbox is full")

    with pytest.raises(StoreError, match="outbox is full"):
        store.sign_specimen(store.get_specimen("ACC-2").specimen.id, _user(store), meaning="m", message_id="x",
                            model_version=None, target_fpr=None, prepare=full_outbox)
    assert store.get_specimen("ACC-2").signature is None
    assert store.list_audit_events("specimen.signed") == []


def test_files_of_one_folder_are_one_specimen_and_a_loose_file_its_own(store: Store) -> None:
    store.record_slide("/inbox/ACC-3/a.png", "a", 1, "/inbox")
    store.record_slide("/inbox/ACC-3/b.png", "b", 1, "/inbox")
    store.record_slide("/inbox/loose.png", "c", 1, "/inbox")
    store.record_slide("/inbox/x_1.png", "d", 1, "/inbox", accession="P-77")
    specimens = {s.specimen.accession: len(s.slides) for s in store.list_specimens()}
    assert specimens == {"ACC-3": 2, "loose": 1, "P-77": 1}


def test_users_are_named_once_disabled_audited_and_their_failed_sign_ins_counted(store: Store) -> None:
    _user(store, "ana", UserRole.TECHNICIAN)
    with pytest.raises(StoreError, match="there is a user 'ana' already"):
        _user(store, "ana")
    store.record_sign_in("ana", False, why="wrong password")
    store.record_sign_in("ana", False, why="wrong password")
    assert store.get_user("ana").failed_sign_ins == 2
    store.record_sign_in("ana", True)
    assert store.get_user("ana").failed_sign_ins == 0
    store.set_user_disabled("ana", True, actor="admin")
    assert store.get_user("ana").disabled
    actions = [event.action for event in store.list_audit_events()]
    assert actions.count("user.sign_in_failed") == 2 and "user.disabled" in actions and "user.added" in actions
