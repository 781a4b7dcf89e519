"""`Store.list_slides_changed_since`: the queue's incremental read returns exactly the summaries
that are new or changed since a mark, as `list_slides` would give them."""

from __future__ import annotations

from dataclasses import replace

from ganad_clinic.store import ReviewDecision, SlideStatus, Store
from ganad_clinic.store.repository import SlideChanges, SlideMark

from .helpers import add_score, record, register_model


def _ids(changes: SlideChanges) -> list[int]:
    return [summary.slide.id for summary in changes.summaries]


def _key(summary) -> tuple:
    return (summary.slide.id, summary.slide.status, summary.slide.archived_path, summary.slide.duplicate_of_id,
            summary.score.id if summary.score else None, summary.review.id if summary.review else None)


def test_a_first_read_is_every_slide_as_list_slides_gives_it(store: Store) -> None:
    model = register_model(store)
    first = record(store, "/incoming/a.png", "aaa").slide
    add_score(store, first.id, model.id, 0.9)
    add_score(store, first.id, model.id, 0.4)  # the latest score is the current one
    second = record(store, "/incoming/b.png", "bbb").slide
    store.add_review(first.id, "ana", ReviewDecision.SECOND_READ)
    store.add_review(first.id, "ben", ReviewDecision.NORMAL)  # the second read is another reviewer's
    duplicate = record(store, "/incoming/c.png", "aaa").slide

    changes = store.list_slides_changed_since(None)

    assert [_key(s) for s in changes.summaries] == [_key(s) for s in store.list_slides()]
    assert _ids(changes) == [first.id, second.id, duplicate.id]
    assert changes.summaries[0].score.score == 0.4
    assert changes.summaries[0].review.decision is ReviewDecision.NORMAL
    assert changes.summaries[2].score.slide_id == first.id  # a duplicate shows its original's score
    assert changes.mark.slide_id == duplicate.id
    assert changes.mark.pending == {second.id}


def test_an_empty_database_and_nothing_new(store: Store) -> None:
    changes = store.list_slides_changed_since(None)
    assert changes.summaries == [] and changes.mark == SlideMark()
    assert store.list_slides_changed_since(changes.mark).summaries == []


def test_only_new_or_changed_slides_come_again(store: Store) -> None:
    model = register_model(store)
    slides = [record(store, f"/incoming/{n}.png", f"sha{n}").slide for n in range(5)]
    for slide in slides[:4]:
        add_score(store, slide.id, model.id)
        store.mark_archived(slide.id, f"/archive/{slide.file_name}")
    mark = store.list_slides_changed_since(None).mark
    again = store.list_slides_changed_since(mark)
    assert _ids(again) == [slides[4].id]  # still pending: read again until it is scored or rejected
    mark = again.mark

    store.add_review(slides[1].id, "ana", ReviewDecision.NORMAL)
    add_score(store, slides[2].id, model.id, 0.95)  # a re-score
    new = record(store, "/incoming/new.png", "shanew").slide
    changes = store.list_slides_changed_since(mark)

    assert set(_ids(changes)) == {slides[1].id, slides[2].id, slides[4].id, new.id}
    by_id = {summary.slide.id: summary for summary in changes.summaries}
    assert by_id[slides[1].id].review.decision is ReviewDecision.NORMAL
    assert by_id[slides[2].id].score.score == 0.95
    assert [_key(s) for s in changes.summaries] == [_key(s) for s in store.list_slides() if s.slide.id in by_id]


def test_a_rejection_a_link_and_an_archive_without_new_rows_are_seen(store: Store) -> None:
    model = register_model(store)
    original = record(store, "/incoming/a.png", "aaa").slide
    copy = record(store, "/incoming/copy-of-a.png", "aaa").slide  # pending: same content, not yet scored
    broken = record(store, "/incoming/broken.png", "bad").slide
    mark = store.list_slides_changed_since(None).mark
    assert mark.pending == {original.id, copy.id, broken.id}

    add_score(store, original.id, model.id, 0.9)
    store.link_to_scored_original(copy.id)
    store.mark_rejected(broken.id, "not an image")
    changes = store.list_slides_changed_since(mark)
    by_id = {summary.slide.id: summary for summary in changes.summaries}
    assert by_id[copy.id].slide.duplicate_of_id == original.id
    assert by_id[copy.id].score.slide_id == original.id
    assert by_id[broken.id].slide.status is SlideStatus.REJECTED
    assert changes.mark.pending == frozenset()

    store.mark_archived(original.id, "/archive/a.png")  # recorded after the result, before the next read
    changes = store.list_slides_changed_since(changes.mark)
    assert {s.slide.id: s.slide.archived_path for s in changes.summaries}[original.id] == "/archive/a.png"

    quiet = store.list_slides_changed_since(changes.mark)
    assert store.list_slides_changed_since(quiet.mark).summaries == []  # settled: nothing comes again


def test_a_new_score_of_an_original_changes_its_duplicates(store: Store) -> None:
    model = register_model(store)
    original = record(store, "/incoming/a.png", "aaa").slide
    add_score(store, original.id, model.id, 0.2)
    duplicate = record(store, "/incoming/b.png", "aaa").slide
    for slide in (original, duplicate):
        store.mark_archived(slide.id, f"/archive/{slide.file_name}")
    mark = store.list_slides_changed_since(None).mark

    rescore = add_score(store, original.id, model.id, 0.8)
    changes = store.list_slides_changed_since(mark)

    assert _ids(changes) == [original.id, duplicate.id]
    assert all(summary.score.id == rescore.id for summary in changes.summaries)


def test_a_mark_never_loses_a_row_committed_after_it(store: Store) -> None:
    model = register_model(store)
    marks = [store.list_slides_changed_since(None).mark]
    seen: dict[int, tuple] = {}
    for n in range(6):
        slide = record(store, f"/incoming/{n}.png", f"sha{n}").slide
        add_score(store, slide.id, model.id, 0.1 * n)
        if n % 2:
            store.add_review(slide.id, "ana", ReviewDecision.NORMAL)
        changes = store.list_slides_changed_since(marks[-1])
        seen.update({summary.slide.id: _key(summary) for summary in changes.summaries})
        marks.append(changes.mark)
    assert seen == {summary.slide.id: _key(summary) for summary in store.list_slides()}


def test_a_score_committed_after_a_higher_id_was_read_is_not_missed(store: Store) -> None:
    """PostgreSQL hands out ids at INSERT: a slower station's transaction can commit a lower id after
    a higher one was read. The mark keeps such an id as a hole and looks for it again."""
    model = register_model(store)
    slow, fast = (record(store, f"/incoming/{name}.png", f"sha-{name}").slide for name in ("slow", "fast"))
    fast_score = add_score(store, fast.id, model.id, score=0.9)
    read = store.list_slides_changed_since(None)
    assert read.mark.score_holes == frozenset() and read.mark.score_id == fast_score.id
    in_flight = replace(read.mark, score_id=fast_score.id + 1, score_holes=frozenset({fast_score.id + 1}))

    late = add_score(store, slow.id, model.id, score=0.2)  # commits the id the reader saw as in flight
    changes = store.list_slides_changed_since(in_flight)

    assert late.id == fast_score.id + 1
    assert [summary.slide.id for summary in changes.summaries] == [slow.id]
    assert changes.summaries[0].score.id == late.id and changes.mark.score_holes == frozenset()


def test_a_rejected_file_replaced_at_its_path_says_so_and_comes_again(store: Store) -> None:
    truncated = record(store, "/incoming/scan.png", "old").slide
    store.mark_rejected(truncated.id, "truncated")
    elsewhere = record(store, "/incoming/other.png", "other").slide
    store.mark_rejected(elsewhere.id, "blank")
    mark = store.list_slides_changed_since(store.list_slides_changed_since(None).mark).mark  # settled
    assert [s.replaced_by_id for s in store.list_slides()] == [None, None]

    rescanned = record(store, "/incoming/scan.png", "new").slide
    changes = store.list_slides_changed_since(mark)

    assert _ids(changes) == [truncated.id, rescanned.id]  # the other slide did not change
    by_id = {s.slide.id: s for s in changes.summaries}
    assert by_id[truncated.id].replaced_by_id == rescanned.id
    assert by_id[rescanned.id].replaced_by_id is None
    assert {s.slide.id: s.replaced_by_id for s in store.list_slides()} == {
        truncated.id: rescanned.id, elsewhere.id: None, rescanned.id: None}
