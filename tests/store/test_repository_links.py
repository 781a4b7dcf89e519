from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from ganad_clinic.store import Slide, SlideStatus, Store, repository

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
    real_find = repository._find_slide
    calls: list[str] = []

    def find_after_the_other_station(session: Session, path: str, sha256: str) -> Slide | None:
        calls.append(path)
        return None if len(calls) == 1 else real_find(session, path, sha256)

    monkeypatch.setattr(repository, "_find_slide", find_after_the_other_station)
    again = record(store, "/incoming/a.png", "same")
    assert (again.slide.id, again.is_new, len(calls)) == (first.id, False, 2)
    assert [summary.slide.id for summary in store.list_slides()] == [first.id]
