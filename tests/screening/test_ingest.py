from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ganad_clinic.screening.events import Outcome
from ganad_clinic.screening.ingest import Ingestor, Step
from ganad_clinic.store import ModelVersion, SlideStatus, Store

from tests.screening.helpers import bomb_png_bytes, png_bytes, write_png


def test_a_new_image_is_recorded_pending_and_decoded(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = write_png(inbox / "a.png", 1, 30, 50)
    arrival = Ingestor(store).receive(path, inbox, model.id)
    assert arrival.step is Step.SCORE and arrival.outcome is Outcome.SCORED
    assert arrival.image.shape == (30, 50, 3)
    assert arrival.slide.status is SlideStatus.PENDING
    assert (arrival.slide.width, arrival.slide.height) == (50, 30)
    assert arrival.score_slide_id == arrival.slide.id
    assert Path(arrival.slide.source_folder) == inbox


def test_receiving_again_is_idempotent(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = write_png(inbox / "a.png", 1)
    ingestor = Ingestor(store)
    first = ingestor.receive(path, inbox, model.id)
    again = ingestor.receive(path, inbox, model.id)  # not scored yet (e.g. killed): still pending, same slide
    assert again.slide.id == first.slide.id and again.step is Step.SCORE
    store.add_score(first.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    known = ingestor.receive(path, inbox, model.id)
    assert known.step is Step.FINISHED and known.outcome is Outcome.KNOWN
    assert known.slide.id == first.slide.id
    assert len(store.list_slides()) == 1


def test_a_copy_of_scored_content_is_linked_not_scored(store: Store, model: ModelVersion, inbox: Path) -> None:
    ingestor = Ingestor(store)
    original = ingestor.receive(write_png(inbox / "a.png", 1), inbox, model.id)
    store.add_score(original.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    copy = shutil.copy(inbox / "a.png", inbox / "copy of a.png")
    arrival = ingestor.receive(Path(copy), inbox, model.id)
    assert arrival.step is Step.FINISHED and arrival.outcome is Outcome.DUPLICATE
    assert arrival.slide.duplicate_of_id == original.slide.id
    assert arrival.score_slide_id == original.slide.id


def test_a_pending_copy_is_linked_once_the_original_is_scored(store: Store, model: ModelVersion, inbox: Path) -> None:
    ingestor = Ingestor(store)
    first = ingestor.receive(write_png(inbox / "a.png", 1), inbox, model.id)
    second = ingestor.receive(Path(shutil.copy(inbox / "a.png", inbox / "b.png")), inbox, model.id)
    assert second.step is Step.SCORE and second.slide.id != first.slide.id  # both pending for now
    store.add_score(first.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    resumed = ingestor.resume(second, model.id, known=False)
    assert resumed.step is Step.FINISHED and resumed.outcome is Outcome.DUPLICATE
    assert resumed.slide.duplicate_of_id == first.slide.id


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (png_bytes(3)[:120], "truncated or corrupt"),
    (bomb_png_bytes(), "too many pixels"),
])
def test_bad_files_are_rejected_with_their_reason(store: Store, model: ModelVersion, inbox: Path,
                                                  content: bytes, reason: str) -> None:
    path = inbox / "bad.png"
    path.write_bytes(content)
    arrival = Ingestor(store).receive(path, inbox, model.id)
    assert arrival.step is Step.FINISHED and arrival.rejected
    assert reason in arrival.slide.reason
    assert store.get_slide(arrival.slide.id).status is SlideStatus.REJECTED
    assert path.read_bytes() == content  # originals are never modified


def test_unsupported_types_are_rejected(store: Store, model: ModelVersion, inbox: Path) -> None:
    path = inbox / "notes.txt"
    path.write_text("hello")
    arrival = Ingestor(store).receive(path, inbox, model.id)
    assert arrival.rejected and "unsupported file type" in arrival.slide.reason


def test_a_vanished_file_leaves_no_trace(store: Store, model: ModelVersion, inbox: Path) -> None:
    arrival = Ingestor(store).receive(inbox / "gone.png", inbox, model.id)
    assert arrival.step is Step.GONE and arrival.slide is None
    assert store.list_slides() == []


def test_rescore_only_when_asked_and_the_model_changed(store: Store, model: ModelVersion, inbox: Path,
                                                       tiny_bundle: Path) -> None:
    path = write_png(inbox / "a.png", 1)
    first = Ingestor(store).receive(path, inbox, model.id)
    store.add_score(first.slide.id, model.id, score=1.0, l_d=0, l_r=0, l_l=0, threshold=2.0, flagged=False,
                    duration_seconds=0.1)
    other = store.register_model_version("2.0.0", tiny_bundle, "other-sha", actor="tester")

    assert Ingestor(store, rescore=True).receive(path, inbox, model.id).step is Step.FINISHED  # same model
    assert Ingestor(store).receive(path, inbox, other.id).step is Step.FINISHED  # not asked
    rescore = Ingestor(store, rescore=True).receive(path, inbox, other.id)
    assert rescore.step is Step.SCORE and rescore.outcome is Outcome.RESCORED
    assert rescore.score_slide_id == first.slide.id
