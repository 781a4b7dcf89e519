from __future__ import annotations

from ganad_clinic.store import SlideStatus, Store

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
