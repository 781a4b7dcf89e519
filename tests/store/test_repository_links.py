from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from ganad_clinic.store import Slide, SlideStatus, Store, chain, repository
from ganad_clinic.store.verify import verify_database

from .helpers import add_score, record, register_model


def test_a_pending_copy_is_linked_once_its_content_is_scored(store: Store) -> None:
    model = register_model(store)
    first = record(store, "/incoming/a.png", "same").slide
    copy = record(store, "/incoming/b.png", "same").slide
    assert copy.status is SlideStatus.PENDING and copy.duplicate_of_id is None
    assert store.link_to_scored_original(copy.id) is None  # nothing scored yet

    add_score(store, first.id, model.id)
    linked = store.link_to_scored_original(copy.id)

    assert linked is not None
    assert linked.duplicate_of_id == first.id
    assert linked.status is SlideStatus.SCORED
    assert store.latest_score(copy.id).slide_id == first.id
    assert store.list_pending_slides() == []


def test_linking_leaves_scored_rejected_and_unique_slides_alone(store: Store) -> None:
    model = register_model(store)
    scored = record(store, "/incoming/a.png", "aaa").slide
    add_score(store, scored.id, model.id)
    rejected = record(store, "/incoming/bad.png", "bbb").slide
    store.mark_rejected(rejected.id, "not an image")
    unique = record(store, "/incoming/c.png", "ccc").slide

    assert store.link_to_scored_original(scored.id) is None
    assert store.link_to_scored_original(rejected.id) is None
    assert store.link_to_scored_original(unique.id) is None
    assert store.get_slide(unique.id).status is SlideStatus.PENDING
    assert store.get_slide(rejected.id).status is SlideStatus.REJECTED


def test_a_slide_recorded_meanwhile_by_another_station_is_returned_not_an_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other station's insert lands between our look-up and our insert: the unique key refuses
    ours, and the slide it recorded is returned, in the same transaction."""
    first = record(store, "/incoming/a.png", "same").slide
    looked_up: list[list[tuple[str, str]]] = []

    def look_up_before_the_other_station(session: Session, places: list[tuple[str, str]]) -> dict:
        looked_up.append(places)
        return {}

    monkeypatch.setattr(repository, "_slides_at", look_up_before_the_other_station)
    again = record(store, "/incoming/a.png", "same")
    assert (again.slide.id, again.is_new, len(looked_up)) == (first.id, False, 1)
    assert [summary.slide.id for summary in store.list_slides()] == [first.id]


def test_a_slide_being_scored_on_one_station_is_not_linked_meanwhile_on_another(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Station A holds the slide's row lock from reading it to committing its score, so station B's
    link waits and then finds it scored: one content never ends up with two scores (issue 19)."""
    scoring, linking = repository.open_store(pg_url), repository.open_store(pg_url)
    model = register_model(scoring)
    slide = record(scoring, "/in/x.png", "same").slide
    add_score(scoring, record(scoring, "/in/y.png", "same").slide.id, model.id)  # y: the scored original
    inside, resume = threading.Event(), threading.Event()
    a_backend: list[int] = []
    real_append = chain.append_all

    def paused_append(session: Session, rows: list) -> None:
        if threading.current_thread().name == "station-A":
            a_backend.append(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            inside.set()
            resume.wait(30)
        real_append(session, rows)

    monkeypatch.setattr(chain, "append_all", paused_append)
    linked: list[Slide | None] = []
    station_a = threading.Thread(target=add_score, args=(scoring, slide.id, model.id), name="station-A")
    station_b = threading.Thread(target=lambda: linked.append(linking.link_to_scored_original(slide.id)))
    station_a.start()
    assert inside.wait(30)
    station_b.start()
    observer = create_engine(pg_url)
    try:
        deadline = time.monotonic() + 15
        blocked = 0
        while not blocked and station_b.is_alive() and time.monotonic() < deadline:
            with observer.connect() as connection:
                blocked = connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE :a = ANY(pg_blocking_pids(pid))"),
                    {"a": a_backend[0]},
                ).scalar_one()
            time.sleep(0.05)
    finally:
        resume.set()
        station_a.join(30)
        station_b.join(30)
        observer.dispose()
    assert blocked == 1  # B waited for A's lock instead of linking under it
    assert linked == [None]  # and then found the slide scored
    assert scoring.latest_score(slide.id).slide_id == slide.id
    assert verify_database(pg_url).problems == []
    scoring.close()
    linking.close()
