"""Stations sharing one database: claims on slides, their leases and takeover, heartbeats, and
SQLite kept to one live station."""

from __future__ import annotations

import time

import pytest

from ganad_clinic.store import ClaimLost, SlideStatus, Store, StoreError

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
