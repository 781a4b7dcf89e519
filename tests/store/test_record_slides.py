"""Recording a batch of received files in one transaction (Store.record_slides): each file gets what
record_slide gives it alone, and a refusal keeps none of them."""

from __future__ import annotations

import hashlib

import pytest

from ganad_clinic.store import NewSlide, SlideStatus, Store, StoreError

from .helpers import add_score, record, register_model

LEASE = 30.0


def sha(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def entry(path: str, content: str, folder: str = "/in") -> NewSlide:
    return NewSlide(path, sha(content), 1234, folder, width=257, height=257)


def test_a_batch_of_new_files_is_recorded_pending_and_claimed_and_again_is_the_same_slides(store: Store) -> None:
    entries = [entry("/in/a.tif", "a"), entry("/in/run 7/b.tif", "b"), entry("/in/run 7/c.tif", "c")]
    recorded = store.record_slides(entries, station="st-1", lease_seconds=LEASE)
    assert [(item.is_new, item.holder) for item in recorded] == [(True, None)] * 3
    slides = [store.get_slide(item.slide.id) for item in recorded]
    assert [(slide.path, slide.status, slide.claimed_by) for slide in slides] == [
        ("/in/a.tif", SlideStatus.PENDING, "st-1"), ("/in/run 7/b.tif", SlideStatus.PENDING, "st-1"),
        ("/in/run 7/c.tif", SlideStatus.PENDING, "st-1")]
    assert all(slide.lease_until is not None for slide in slides)
    assert slides[1].specimen_id == slides[2].specimen_id != slides[0].specimen_id  # the subfolder's specimen
    again = store.record_slides(entries, station="st-1", lease_seconds=LEASE)
    assert [(item.slide.id, item.is_new) for item in again] == [(item.slide.id, False) for item in recorded]
    assert len(store.list_slides()) == 3


def test_in_a_batch_scored_content_is_linked_and_content_another_station_scores_is_left_to_it(store: Store) -> None:
    model = register_model(store)
    scored = record(store, "/in/scored.tif", sha("scored")).slide
    add_score(store, scored.id, model.id)
    held = store.record_slides([entry("/in/held.tif", "held")], station="st-2", lease_seconds=LEASE)[0]
    copy, twin, same, again = store.record_slides(
        [entry("/in/copy.tif", "scored"), entry("/in/twin.tif", "held"), entry("/in/same 1.tif", "new"),
         entry("/in/same 2.tif", "new")], station="st-1", lease_seconds=LEASE)
    assert copy.is_duplicate and copy.slide.status is SlideStatus.SCORED and copy.slide.duplicate_of_id == scored.id
    assert twin.holder == "st-2" and store.get_slide(twin.slide.id).claimed_by is None
    assert store.get_slide(held.slide.id).claimed_by == "st-2"
    assert (same.holder, again.holder) == (None, None)  # one content twice in a batch: both this station's
    assert {store.get_slide(item.slide.id).claimed_by for item in (same, again)} == {"st-1"}


def test_the_same_file_twice_in_a_batch_is_one_slide(store: Store) -> None:
    first, second = store.record_slides([entry("/in/a.tif", "a"), entry("/in/a.tif", "a")])
    assert (first.is_new, second.is_new, first.slide.id) == (True, False, second.slide.id)
    assert len(store.list_slides()) == 1


def test_a_refused_file_keeps_none_of_its_batch(store: Store) -> None:
    record(store, "/in/before.tif", sha("before"))
    refused = NewSlide("/in/b.tif", sha("b"), None, "/in")  # type: ignore[arg-type]  # size_bytes is NOT NULL
    with pytest.raises(StoreError, match="Nothing was saved"):
        store.record_slides([entry("/in/a.tif", "a"), refused, entry("/in/c.tif", "c")], station="st-1",
                            lease_seconds=LEASE)
    assert [summary.slide.path for summary in store.list_slides()] == ["/in/before.tif"]


def test_a_file_recorded_before_makes_no_specimen_when_recorded_again_from_another_folder(store: Store) -> None:
    first = store.record_slides([entry("/in/HEM-9/a.tif", "a")])[0]  # in the specimen folder HEM-9
    again = store.record_slides([entry("/in/HEM-9/a.tif", "a", folder="/in/HEM-9")])[0]
    assert (again.slide.id, again.is_new) == (first.slide.id, False)
    assert [summary.specimen.accession for summary in store.list_specimens()] == ["HEM-9"]


def test_a_file_twice_in_a_batch_that_another_station_recorded_meanwhile_is_that_slide_both_times(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganad_clinic.store import repository

    first = store.record_slides([entry("/in/a.tif", "a")])[0]
    monkeypatch.setattr(repository, "_slides_at", lambda session, places: {})  # looked up before theirs landed
    again, twice = store.record_slides([entry("/in/a.tif", "a"), entry("/in/a.tif", "a")])
    assert [(item.slide.id, item.is_new) for item in (again, twice)] == [(first.slide.id, False)] * 2
