"""Stations sharing one database: claims on slides, their leases and takeover, heartbeats, and
SQLite kept to one live station."""

from __future__ import annotations

import time

import pytest

from ganad_clinic.store import ClaimLost, NewScore, SlideStatus, Store, StoreError

from .helpers import add_score, record, register_model

LEASE = 30.0


def test_a_claimed_slide_is_scored_by_its_holder_only_and_a_lapsed_claim_is_taken_over(store: Store) -> None:
    model = register_model(store)
    slide = record(store, "/in/a.png", "aaa").slide
    assert store.claim_slide(slide.id, "st-1", lease_seconds=0.2) is None
    assert store.claim_slide(slide.id, "st-2", lease_seconds=LEASE) == "st-1"
    assert store.claim_slide(slide.id, "st-1", lease_seconds=0.2) is None  # its own claim, renewed

    time.sleep(0.3)  # st-1 stalls past its lease
    assert store.claim_slide(slide.id, "st-2", lease_seconds=LEASE) is None
    [takeover] = store.list_audit_events("slide.claim_taken_over")
    assert (takeover.actor, takeover.details["from"], takeover.details["slide_id"]) == ("st-2", "st-1", slide.id)
    with pytest.raises(ClaimLost, match="held by station st-2, not st-1"):
        add_score(store, slide.id, model.id, 0.9, station="st-1")
    with pytest.raises(ClaimLost):
        store.mark_rejected(slide.id, "unreadable here", station="st-1")
    assert store.latest_score(slide.id) is None and store.get_slide(slide.id).status is SlideStatus.PENDING

    assert add_score(store, slide.id, model.id, 0.9, station="st-2").station == "st-2"
    assert store.get_slide(slide.id).claimed_by is None


def test_heartbeats_renew_leases_and_a_clean_stop_gives_the_claims_back(db_url: str, store: Store) -> None:
    first, second = (record(store, f"/in/{name}.png", name).slide for name in ("a", "b"))
    store.register_station("st-1", "pc-1", 101, lease_seconds=LEASE)
    for slide in (first, second):
        assert store.claim_slide(slide.id, "st-1", lease_seconds=0.2) is None
    assert store.heartbeat("st-1", lease_seconds=LEASE) == 2
    time.sleep(0.3)
    assert store.claim_slide(first.id, "st-2", lease_seconds=LEASE) == "st-1"  # renewed: still st-1's
    assert [(station.name, held) for station, held in store.list_stations()] == [("st-1", 2)]

    store.station_stopped("st-1")
    assert store.claim_slide(first.id, "st-2", lease_seconds=LEASE) is None  # at once, not a lease later
    assert store.list_audit_events("slide.claim_taken_over") == []  # given back, not taken over
    [(station, held)] = store.list_stations()
    assert station.stopped and held == 0
    assert store.live_stations(lease_seconds=LEASE) == []
    store.release_claim(first.id, "st-2", "the file is not at this station's path")
    [released] = store.list_audit_events("slide.claim_released")
    assert released.details == {"slide_id": first.id, "reason": "the file is not at this station's path"}


def test_sqlite_holds_one_live_station_and_postgresql_several(db_url: str, store: Store) -> None:
    store.register_station("st-1", "pc-1", 101, lease_seconds=LEASE)
    if db_url.startswith("sqlite"):
        with pytest.raises(StoreError, match="station st-1 .* is screening into this SQLite database already"):
            store.register_station("st-2", "pc-2", 202, lease_seconds=LEASE)
        store.station_stopped("st-1")
    store.register_station("st-2", "pc-2", 202, lease_seconds=LEASE)
    assert sorted(store.live_stations(lease_seconds=LEASE)) == (
        ["st-2"] if db_url.startswith("sqlite") else ["st-1", "st-2"])


def test_a_new_slide_is_claimed_with_its_record_unless_another_station_scores_its_content(store: Store) -> None:
    first = store.record_slide("/in/a.png", "5a3e", 10, "/in", station="st-1", lease_seconds=LEASE)
    assert first.is_new and first.holder is None and store.get_slide(first.slide.id).claimed_by == "st-1"
    twin = store.record_slide("/in/copy of a.png", "5a3e", 10, "/in", station="st-2", lease_seconds=LEASE)
    assert twin.is_new and twin.holder == "st-1"  # the content is being scored: linked to it afterwards
    assert store.get_slide(twin.slide.id).claimed_by is None
    again = store.record_slide("/in/a.png", "5a3e", 10, "/in", station="st-2", lease_seconds=LEASE)
    assert not again.is_new and again.holder is None  # known slides are claimed as they are resumed
    assert store.get_slide(first.slide.id).claimed_by == "st-1"


def test_scores_added_together_keep_each_slides_claim_and_refuse_together(store: Store) -> None:
    model = register_model(store)
    held, lost, other = (store.record_slide(f"/in/{name}.png", sha256, 10, "/in", station="st-1",
                                            lease_seconds=LEASE).slide
                         for name, sha256 in (("held", "aa"), ("lost", "bb"), ("other", "cc")))
    store.station_stopped("st-1")
    assert store.claim_slide(held.id, "st-1", lease_seconds=LEASE) is None
    assert store.claim_slide(lost.id, "st-2", lease_seconds=LEASE) is None  # st-1 lost this one

    def entry(slide_id: int, score: float) -> NewScore:
        return NewScore(slide_id, model.id, score=score, l_d=0.1, l_r=0.2, l_l=0.3, threshold=0.7,
                        flagged=score > 0.7, duration_seconds=0.1, station="st-1")

    scored, refused = store.add_scores([entry(held.id, 0.2), entry(lost.id, 0.9)])
    assert isinstance(refused, ClaimLost) and "held by station st-2, not st-1" in str(refused)
    assert store.latest_score(held.id).id == scored.id and scored.score == 0.2
    assert store.latest_score(lost.id) is None and store.get_slide(lost.id).claimed_by == "st-2"

    assert store.claim_slide(other.id, "st-1", lease_seconds=LEASE) is None
    store.mark_rejected(lost.id, "unreadable", station="st-2")
    with pytest.raises(StoreError, match="was rejected"):  # any other refusal: none of them is kept
        store.add_scores([entry(other.id, 0.3), NewScore(**{**entry(lost.id, 0.3).__dict__, "station": None})])
    assert store.latest_score(other.id) is None and store.get_slide(other.id).status is SlideStatus.PENDING


def test_a_claim_locks_the_content_before_the_slide_so_recording_a_copy_meanwhile_cannot_deadlock(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording a copy of a scored slide holds its content's lock, then needs the original's row
    (the link's foreign key); a re-score's claim on the original must therefore take the content's
    lock first too. While the claim holds only the content's lock, the original's row is free."""
    import threading

    from sqlalchemy import create_engine, text

    from ganad_clinic.store import open_store, repository

    store = open_store(pg_url)
    model = register_model(store)
    original = record(store, "/in/original.png", "ab" * 32).slide
    add_score(store, original.id, model.id)
    holding, resume = threading.Event(), threading.Event()
    real_lock = repository.Store._lock_contents

    def lock_then_wait(self, session, contents):
        real_lock(self, session, contents)
        if threading.current_thread().name == "re-score":
            holding.set()
            resume.wait(30)

    monkeypatch.setattr(repository.Store, "_lock_contents", lock_then_wait)
    claimed: list[str | None] = []
    claim = threading.Thread(name="re-score", target=lambda: claimed.append(
        store.claim_slide(original.id, "st-1", lease_seconds=LEASE, rescore=True)))
    claim.start()
    try:
        assert holding.wait(30)
        observer = create_engine(pg_url)
        with observer.connect() as connection:  # the row is not locked yet: NOWAIT would fail if it were
            locked = connection.execute(text("SELECT id FROM slides WHERE id = :id FOR UPDATE NOWAIT"),
                                        {"id": original.id}).scalar_one()
            connection.rollback()
        observer.dispose()
        assert locked == original.id
    finally:
        resume.set()
        claim.join(30)
    assert claimed == [None]
    store.close()
