from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import event

from ganad_clinic.screening.names import path_text
from ganad_clinic.store import ReviewDecision, SlideStatus, Store, StoreError, open_store

from .helpers import add_score, record, register_model


def test_recording_the_same_file_twice_returns_the_same_slide(store: Store) -> None:
    first = record(store, "/incoming/a.png", "aaa")
    again = record(store, "/incoming/a.png", "aaa")
    assert first.is_new and not first.is_duplicate
    assert not again.is_new
    assert again.slide.id == first.slide.id
    assert first.slide.file_name == "a.png"
    assert first.slide.status is SlideStatus.PENDING
    assert first.slide.first_seen.tzinfo is not None
    found = store.find_slides([("/incoming/a.png", "aaa"), ("/incoming/a.png", "other")])
    assert found[("/incoming/a.png", "aaa")].id == first.slide.id
    assert ("/incoming/a.png", "other") not in found


def test_changed_content_at_the_same_path_is_a_new_slide(store: Store) -> None:
    first = record(store, "/incoming/a.png", "aaa")
    changed = record(store, "/incoming/a.png", "bbb")
    assert changed.is_new and changed.slide.id != first.slide.id


def test_already_scored_content_under_a_new_path_links_to_the_original(store: Store) -> None:
    model = register_model(store)
    original = record(store, "/incoming/a.png", "aaa").slide
    add_score(store, original.id, model.id, score=0.9)

    copy = record(store, "/incoming/copy-of-a.png", "aaa")

    assert copy.is_new and copy.is_duplicate
    assert copy.slide.duplicate_of_id == original.id
    assert copy.slide.status is SlideStatus.SCORED
    assert store.list_pending_slides() == []
    assert store.latest_score(copy.slide.id).score == 0.9
    with pytest.raises(StoreError, match=f"duplicates slide {original.id}"):
        add_score(store, copy.slide.id, model.id)


def test_content_not_yet_scored_is_not_a_duplicate(store: Store) -> None:
    record(store, "/incoming/a.png", "aaa")
    other = record(store, "/incoming/b.png", "aaa")
    assert not other.is_duplicate
    assert [slide.path for slide in store.list_pending_slides()] == ["/incoming/a.png", "/incoming/b.png"]


def test_pending_slides_leave_the_list_when_scored_or_rejected(store: Store) -> None:
    model = register_model(store)
    scored, rejected, waiting = (record(store, f"/in/{name}.png", name).slide for name in "abc")
    add_score(store, scored.id, model.id)
    store.mark_rejected(rejected.id, "not an image")
    assert [slide.id for slide in store.list_pending_slides()] == [waiting.id]
    assert store.get_slide(rejected.id).status is SlideStatus.REJECTED
    assert store.get_slide(rejected.id).reason == "not an image"


def test_archived_path_is_recorded(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    store.mark_archived(slide.id, Path("/archive/2025/a.png"))
    assert store.get_slide(slide.id).archived_path == "/archive/2025/a.png"


def test_a_score_copies_the_model_identity_and_marks_the_slide_scored(store: Store) -> None:
    model = register_model(store, "2.1.0")
    slide = record(store, "/in/a.png", "aaa").slide
    score = add_score(store, slide.id, model.id, score=0.8, threshold=0.7)
    assert (score.model_version, score.model_sha256, score.flagged) == ("2.1.0", "sha-2.1.0", True)
    assert store.get_slide(slide.id).status is SlideStatus.SCORED


def test_a_failed_score_leaves_the_slide_pending(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    with pytest.raises(StoreError, match="no model_versions row with id 99"):
        add_score(store, slide.id, 99)
    assert store.get_slide(slide.id).status is SlideStatus.PENDING
    assert store.latest_score(slide.id) is None


def test_rescoring_appends_and_the_latest_row_is_current(store: Store) -> None:
    model = register_model(store)
    slide = record(store, "/in/a.png", "aaa").slide
    add_score(store, slide.id, model.id, score=0.1)
    add_score(store, slide.id, model.id, score=0.95)
    assert store.latest_score(slide.id).score == 0.95
    assert store.list_slides()[0].score.score == 0.95


def test_reviews_append_and_are_audited(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    first = store.add_review(slide.id, "ana", ReviewDecision.SECOND_READ, "unsure")
    second = store.add_review(slide.id, "ben", "anomaly_confirmed")
    assert store.current_review(slide.id).id == second.id
    assert first.decision is ReviewDecision.SECOND_READ
    events = store.list_audit_events("review.added")
    assert [(event.actor, event.details["decision"]) for event in events] == [
        ("ana", "second_read"),
        ("ben", "anomaly_confirmed"),
    ]


def test_who_asked_for_a_second_read_may_not_give_it(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    store.add_review(slide.id, "ana", ReviewDecision.SECOND_READ, "unsure")
    with pytest.raises(StoreError, match="a.png: ana asked for a second read of it; another reviewer gives it"):
        store.add_review(slide.id, "ana", ReviewDecision.NORMAL)
    assert store.current_review(slide.id).decision is ReviewDecision.SECOND_READ
    assert len(store.list_audit_events("review.added")) == 1
    assert store.add_review(slide.id, "ben", ReviewDecision.NORMAL).decision is ReviewDecision.NORMAL


def test_a_withdrawn_review_gives_way_to_the_one_before_and_is_kept_with_its_audit(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    first = store.add_review(slide.id, "ana", ReviewDecision.SECOND_READ, "unsure")
    second = store.add_review(slide.id, "ben", ReviewDecision.NORMAL)
    withdrawal = store.withdraw_review(second.id, "ana", "pressed twice")
    assert (withdrawal.withdraws_id, withdrawal.decision, withdrawal.note) == (second.id, ReviewDecision.NORMAL,
                                                                              "pressed twice")
    assert store.current_review(slide.id).id == first.id
    [summary] = store.list_slides()
    assert summary.review.id == first.id
    assert store.list_slides_changed_since(None).summaries[0].review.id == first.id
    [event] = store.list_audit_events("review.withdrawn")
    assert event.actor == "ana" and event.details == {"slide_id": slide.id, "review_id": withdrawal.id,
                                                      "withdraws": second.id, "decision": "normal"}

    store.withdraw_review(first.id, "ana")
    assert store.current_review(slide.id) is None and store.list_slides()[0].review is None
    again = store.add_review(slide.id, "ben", ReviewDecision.ANOMALY_CONFIRMED)
    assert store.current_review(slide.id).id == again.id


def test_only_the_current_review_can_be_withdrawn_and_only_once(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    first = store.add_review(slide.id, "ana", ReviewDecision.NORMAL)
    second = store.add_review(slide.id, "ana", ReviewDecision.ANOMALY_CONFIRMED)
    with pytest.raises(StoreError, match=f"review {first.id} is not the current review"):
        store.withdraw_review(first.id, "ana")
    withdrawal = store.withdraw_review(second.id, "ana")
    with pytest.raises(StoreError, match="not the current review"):
        store.withdraw_review(second.id, "ana")
    with pytest.raises(StoreError, match="is a withdrawal"):
        store.withdraw_review(withdrawal.id, "ana")
    with pytest.raises(StoreError):
        store.withdraw_review(10_000, "ana")
    assert len(store.list_audit_events("review.withdrawn")) == 1
    assert store.current_review(slide.id).id == first.id


def test_an_unknown_review_decision_is_refused(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    with pytest.raises(ValueError):
        store.add_review(slide.id, "ana", "maybe")


def test_list_slides_filters_by_period_folder_and_flag_in_one_query(store: Store) -> None:
    model = register_model(store)
    flagged = record(store, "/lab1/a.png", "aaa", folder="/lab1").slide
    calm = record(store, "/lab1/b.png", "bbb", folder="/lab1").slide
    other_folder = record(store, "/lab2/c.png", "ccc", folder="/lab2").slide
    unscored = record(store, "/lab1/d.png", "ddd", folder="/lab1").slide
    add_score(store, flagged.id, model.id, score=0.2)
    add_score(store, flagged.id, model.id, score=0.9)
    add_score(store, calm.id, model.id, score=0.1)
    add_score(store, other_folder.id, model.id, score=0.99)
    store.add_review(flagged.id, "ana", "second_read")
    store.add_review(flagged.id, "ben", "anomaly_confirmed")

    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    lab1 = store.list_slides(source_folder="/lab1")
    assert len([sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]) == 1

    assert [summary.slide.id for summary in lab1] == [flagged.id, calm.id, unscored.id]
    assert lab1[0].score.score == 0.9 and lab1[0].review.reviewer == "ben"
    assert lab1[1].review is None and lab1[2].score is None
    assert [s.slide.id for s in store.list_slides(flagged_only=True)] == [flagged.id, other_folder.id]

    now = datetime.now(UTC)
    assert len(store.list_slides(since=now - timedelta(hours=1), until=now + timedelta(hours=1))) == 4
    assert store.list_slides(since=now + timedelta(hours=1)) == []
    local = timezone(timedelta(hours=-5))
    assert len(store.list_slides(until=(now + timedelta(minutes=1)).astimezone(local))) == 4


def test_first_registered_model_becomes_active(store: Store) -> None:
    first = register_model(store, "1.0.0")
    second = register_model(store, "1.1.0")
    assert first.active and first.activated_at is not None
    assert not second.active
    assert store.active_model_version().version == "1.0.0"
    assert [model.version for model in store.list_model_versions()] == ["1.0.0", "1.1.0"]
    assert [event.details["version"] for event in store.list_audit_events("model.registered")] == [
        "1.0.0",
        "1.1.0",
    ]


def test_registering_a_version_twice_is_refused(store: Store) -> None:
    register_model(store, "1.0.0")
    with pytest.raises(StoreError, match="model version 1.0.0 is already registered"):
        register_model(store, "1.0.0")


def test_a_retrained_model_records_its_parent(store: Store) -> None:
    parent = register_model(store, "1.0.0")
    child = store.register_model_version("1.1.0", "/m/1.1.0", "sha", actor="ana", parent_id=parent.id)
    assert child.parent_id == parent.id


def test_activate_and_rollback_switch_the_active_model_with_audit(store: Store) -> None:
    register_model(store, "1.0.0")
    register_model(store, "1.1.0")

    store.activate_model_version("1.1.0", actor="ana")
    assert store.active_model_version().version == "1.1.0"
    store.activate_model_version("1.1.0", actor="ana")

    rolled_back_to = store.rollback_model_version(actor="ben")
    assert rolled_back_to.version == "1.0.0"
    assert [model.version for model in store.list_model_versions() if model.active] == ["1.0.0"]

    activated = store.list_audit_events("model.activated")
    assert [(e.actor, e.details) for e in activated] == [("ana", {"version": "1.1.0", "previous": "1.0.0"})]
    rollbacks = store.list_audit_events("model.rolled_back")
    assert [(e.actor, e.details) for e in rollbacks] == [("ben", {"version": "1.0.0", "previous": "1.1.0"})]


def test_rollback_without_an_earlier_version_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="no model version is active"):
        store.rollback_model_version(actor="ana")
    register_model(store, "1.0.0")
    register_model(store, "1.1.0")
    with pytest.raises(StoreError, match="no earlier version to roll back to"):
        store.rollback_model_version(actor="ana")
    with pytest.raises(StoreError, match="model version 9.9 is not registered"):
        store.activate_model_version("9.9", actor="ana")


def test_audit_events_keep_actor_action_and_details(store: Store) -> None:
    event_row = store.audit("service", "folder.watched", {"folder": "/lab1", "polling": True})
    assert event_row.time.tzinfo is not None
    [stored] = store.list_audit_events()
    assert (stored.actor, stored.action) == ("service", "folder.watched")
    assert stored.details == {"folder": "/lab1", "polling": True}


def test_integrity_check_finds_nothing_wrong_in_a_sound_database(store: Store) -> None:
    record(store, "/in/a.png", "aaa")
    assert store.integrity_check() == []


def test_integrity_check_reports_a_dangling_reference(sqlite_url: str, tmp_path: Path) -> None:
    with open_store(sqlite_url) as store:
        record(store, "/in/a.png", "aaa")
    connection = sqlite3.connect(tmp_path / "ganad.db")
    connection.execute("UPDATE slides SET duplicate_of_id = 42")
    connection.commit()
    connection.close()
    with open_store(sqlite_url) as store:
        assert store.integrity_check() == ["row 1 of slides refers to a missing row of slides"]


def test_a_write_retries_while_another_process_holds_the_lock(tmp_path: Path, sqlite_url: str) -> None:
    with open_store(sqlite_url, busy_timeout_ms=50) as store:
        blocker = sqlite3.connect(tmp_path / "ganad.db", isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")
        threading.Timer(0.15, blocker.execute, ["COMMIT"]).start()
        store.audit("service", "written.after.retry")
        blocker.close()
        assert [e.action for e in store.list_audit_events()] == ["written.after.retry"]


def test_a_lock_held_too_long_becomes_a_clear_store_error(tmp_path: Path, sqlite_url: str) -> None:
    with open_store(sqlite_url, busy_timeout_ms=20) as store:
        store.audit("service", "before")
        blocker = sqlite3.connect(tmp_path / "ganad.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError) as raised:
                store.audit("service", "during")
            assert [e.action for e in store.list_audit_events()] == ["before"]  # readers are not blocked
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert "is busy: another program is holding it" in str(raised.value)
        assert "locked" not in str(raised.value)
        store.audit("service", "after")
        assert [e.action for e in store.list_audit_events()] == ["before", "after"]


def test_a_score_keeps_its_warning(store: Store) -> None:
    model = register_model(store)
    slide = record(store, "/in/a.tif", "aaa").slide
    store.add_score(slide.id, model.id, score=0.2, l_d=0.1, l_r=0.1, l_l=0.1, threshold=0.7, flagged=False,
                    duration_seconds=0.1, warning="page 1 of 3 scored")
    assert store.latest_score(slide.id).warning == "page 1 of 3 scored"
    assert store.list_slides()[0].score.warning == "page 1 of 3 scored"


def test_a_scored_slide_is_never_rejected_and_a_rejected_one_never_scored(store: Store) -> None:
    model = register_model(store)
    scored = record(store, "/in/a.png", "aaa").slide
    add_score(store, scored.id, model.id, score=0.9)
    with pytest.raises(StoreError, match=f"slide {scored.id} \\(a.png\\) is already scored: its result stands"):
        store.mark_rejected(scored.id, "the file was removed before it was scored")
    rejected = record(store, "/in/b.png", "bbb").slide
    store.mark_rejected(rejected.id, "not an image")
    with pytest.raises(StoreError, match=f"slide {rejected.id} was rejected \\(not an image\\)"):
        add_score(store, rejected.id, model.id)
    assert (store.get_slide(scored.id).status, store.get_slide(rejected.id).status) == (
        SlideStatus.SCORED, SlideStatus.REJECTED)


def test_where_a_slide_was_archived_is_recorded_once(store: Store) -> None:
    slide = record(store, "/in/a.png", "aaa").slide
    store.mark_archived(slide.id, "/archive/a.png")
    store.mark_archived(slide.id, "/archive/a.png")  # the same place again: nothing changes
    with pytest.raises(StoreError, match="was already archived to /archive/a.png"):
        store.mark_archived(slide.id, "/archive/a-2.png")
    assert store.get_slide(slide.id).archived_path == "/archive/a.png"


def test_a_long_file_name_is_cut_to_its_column_and_the_path_kept_whole(store: Store) -> None:
    """A 104-byte non-UTF-8 name written \\xNN is 404 characters, over file_name's VARCHAR(255)."""
    raw_name = os.fsdecode(b"/in/" + b"\xe9" * 100 + b".png")
    path = path_text(raw_name)
    slide = record(store, path, "long").slide
    assert slide.path == path
    assert slide.file_name == Path(path).name[:255]
    assert store.get_slide(slide.id).file_name == Path(path).name[:255]
    assert record(store, path, "long").is_new is False
